"""The state commitment: the one rule for the state hash, kept up to date per changed account.

The state hash (what a snapshot stores, a restarted node checks and /api/constellation/info
shows, so that nodes can be compared) is

    SHA-256(0x02 ‖ XDR(StateHeader))

where the header (`quanta/core/xdr/schema.py`, "state commitment") holds the chain head, the
constellation id, the settings in force, the provider cursors (by provider id), the next
account id, the constellation's effects sequence, and the number and Merkle root of the
accounts. The accounts' tree (`quanta.core.merkle`, RFC 6962) has one leaf per account in
ascending id order, the leaf being XDR(AccountState): the account's id, key, nonce, sequence,
balances (by asset code), resting orders (by order id) and pending withdrawal. Account ids are
contiguous (an account takes `next_account_id`, and only the newest one can be reverted), so
with n accounts leaf i is account `next_account_id - n + i`. Everything else is derived and not
committed: the books follow from the orders (price, then id), the markets from the settings,
an account's open-order count from its orders. docs/engine.md gives the bytes.

Why a tree: the old rule hashed a rendering of the whole state inside the sequential engine
at every snapshot batch (~4 µs per account, 3 s at 1 000 000 accounts). Here the effects'
groups name the accounts a quantum changed (`QuantumContext.finish` and `unfinish` call
`touch`), and the next state hash re-encodes only those leaves and their paths to the root.
A leaf is also what a later per-account proof shows, with `MerkleTree.audit_path`.

The leaves are packed by `account_leaf`, straight from the account's objects, because that is
most of what a batch costs (building the `AccountState` records and encoding them through the
general codec took ~5 µs an account, packing takes under half of it). `account_state` builds the
records the schema declares, and quanta/tests/core/test_commitment.py holds the two to the
same bytes for any account: a field added to `AccountState` is added to both.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from quanta.core.hashing import ZERO_HASH, sha256
from quanta.core.merkle import MerkleTree, leaf_hash
from quanta.core.xdr.codec import XdrError, encode
from quanta.core.xdr.schema import (
    AccountState,
    BalanceState,
    CursorState,
    FeeBalanceState,
    Limits,
    OrderState,
    StateHeader,
    WithdrawalState,
)

if TYPE_CHECKING:
    from exchange.core.accounts import Account
    from quanta.core.state import ConstellationState

HEADER_PREFIX = b"\x02"
"""Prefixes the header's bytes (leaves take 0x00, tree nodes 0x01), so no leaf or node of the
tree can be passed off as a state hash, nor the other way round."""


def account_state(state: ConstellationState, account: Account) -> AccountState:
    """Returns the committed form of one account (its leaf before hashing)."""
    balances = tuple(
        BalanceState(asset, balance.amount, balance.liabilities)
        for asset, balance in sorted(account.balances.items())
    )
    exchange = state.exchange
    own = None if exchange is None else exchange.orders_by_account.get(account.id)
    orders = (
        tuple(
            OrderState(
                order_id,
                order.asset,
                order.side,
                order.price,
                order.amount,
                order.client_order_id,
            )
            for order_id, order in sorted(own.items())
        )
        if own
        else ()
    )
    withdrawal = None
    if account.pending_withdrawal is not None:
        pending = state.withdrawals[account.pending_withdrawal]
        withdrawal = WithdrawalState(
            pending.withdrawal_id,
            pending.provider,
            pending.asset,
            pending.amount,
            pending.fee,
            pending.destination,
        )
    return AccountState(
        account.id,
        account.public_key,
        account.nonce,
        account.sequence,
        balances,
        orders,
        withdrawal,
    )


_HEAD = struct.Struct(">Q32sQQ")  # id, public key, nonce, sequence
_COUNT = struct.Struct(">I")
_PAIR = struct.Struct(">QQ")  # amount and liabilities; amount and fee
_ORDER_ID = struct.Struct(">Q")
_ORDER_TAIL = struct.Struct(">iQQQ")  # side, price, amount, client order id
_ABSENT, _PRESENT = _COUNT.pack(0), _COUNT.pack(1)
_PADDING = (b"", b"\x00\x00\x00", b"\x00\x00", b"\x00")  # by length % 4

_ASSET_CODES: dict[str, bytes] = {}
"""XDR of the asset codes seen (a few dozen: the settings bound them; capped all the same)."""


def _xdr_string(text: str, maximum: int) -> bytes:
    """Returns XDR string<maximum>: length, UTF-8 bytes, zero padding."""
    data = text.encode("utf-8")
    if len(data) > maximum:
        raise XdrError(f"string<{maximum}> too long: {len(data)} bytes")
    return _COUNT.pack(len(data)) + data + _PADDING[len(data) % 4]


def _code(asset: str) -> bytes:
    """Returns the XDR of an asset code, from the cache when seen before."""
    packed = _ASSET_CODES.get(asset)
    if packed is None:
        packed = _xdr_string(asset, Limits.ASSET_CODE_MAX)
        if len(_ASSET_CODES) < 1024:
            _ASSET_CODES[asset] = packed
    return packed


def account_leaf(state: ConstellationState, account: Account) -> bytes:
    """Returns XDR(AccountState) of the account, packed directly (`account_state`'s bytes)."""
    balances = account.balances
    if len(balances) > Limits.ASSETS_MAX:
        raise XdrError(f"{len(balances)} balances")
    parts = [
        _HEAD.pack(account.id, account.public_key, account.nonce, account.sequence),
        _COUNT.pack(len(balances)),
    ]
    for asset in sorted(balances):
        balance = balances[asset]
        parts += (_code(asset), _PAIR.pack(balance.amount, balance.liabilities))
    exchange = state.exchange
    own = None if exchange is None else exchange.orders_by_account.get(account.id)
    if own:
        if len(own) > Limits.ORDERS_PER_ACCOUNT_MAX:
            raise XdrError(f"{len(own)} orders")
        parts.append(_COUNT.pack(len(own)))
        for order_id in sorted(own):
            order = own[order_id]
            parts += (
                _ORDER_ID.pack(order_id),
                _code(order.asset),
                _ORDER_TAIL.pack(order.side, order.price, order.amount, order.client_order_id),
            )
    else:
        parts.append(_ABSENT)
    if account.pending_withdrawal is None:
        parts.append(_ABSENT)
    else:
        pending = state.withdrawals[account.pending_withdrawal]
        parts += (
            _PRESENT,
            _ORDER_ID.pack(pending.withdrawal_id),
            _xdr_string(pending.provider, Limits.NAME_MAX),
            _code(pending.asset),
            _PAIR.pack(pending.amount, pending.fee),
            _xdr_string(pending.destination, Limits.ADDRESS_MAX),
        )
    return b"".join(parts)


def state_header(state: ConstellationState, account_count: int, root: bytes) -> StateHeader:
    """Returns the header the state hash is taken over, given the accounts' tree."""
    config = state.config
    return StateHeader(
        state.apex,
        state.last_hash,
        ZERO_HASH if config is None else config.constellation_id,
        None if config is None else config.settings,
        tuple(CursorState(provider, state.cursors[provider]) for provider in sorted(state.cursors)),
        state.next_account_id,
        state.constellation_sequence,
        account_count,
        root,
        tuple(
            FeeBalanceState(asset, state.fee_balances[asset])
            for asset in sorted(state.fee_balances)
        ),
    )


def header_hash(header: StateHeader) -> bytes:
    """Returns the state hash of a header."""
    return sha256(HEADER_PREFIX + encode(header))


class StateCommitment:
    """The accounts' Merkle tree of one state, and which accounts changed since its root."""

    __slots__ = ("_first_id", "_touched", "leaves_hashed", "tree")

    def __init__(self) -> None:
        """Starts without a tree: the first state hash builds it from every account (a state
        loaded from a snapshot is built without effects)."""
        self.tree = MerkleTree()
        self._touched: set[int] = set()
        # The id of leaf 0 when the tree was last brought up to date (None: never built).
        self._first_id: int | None = None
        # How many leaves were encoded and hashed so far (what a state hash costs).
        self.leaves_hashed = 0

    def touch(self, account_id: int) -> None:
        """Notes that the account changed (or went away) since the last state hash."""
        self._touched.add(account_id)

    def state_hash(self, state: ConstellationState) -> bytes:
        """Returns the state hash, re-hashing only the accounts touched since the last one."""
        count, root = self.accounts_root(state)
        return header_hash(state_header(state, count, root))

    def accounts_root(self, state: ConstellationState) -> tuple[int, bytes]:
        """Returns the number of accounts and the root of their tree, brought up to date."""
        count = len(state.accounts)
        first_id = state.next_account_id - count
        tree = self.tree
        # Accounts that appeared without a touch (a loaded state) are hashed too; a tree
        # whose first id moved (it held nothing, or never was built) is built afresh.
        known = len(tree) if first_id == self._first_id else 0
        positions = set(range(known, count))
        for account_id in self._touched:
            position = account_id - first_id
            if 0 <= position < count:
                positions.add(position)
        self._touched.clear()
        self._first_id = first_id
        tree.resize(count)
        get = state.accounts.get_by_id
        for position in sorted(positions):
            account = get(first_id + position)
            assert account is not None, f"account ids are not contiguous: {first_id + position}"
            tree.set(position, leaf_hash(account_leaf(state, account)))
        self.leaves_hashed += len(positions)
        return count, tree.root()


def state_hash_rebuilt(state: ConstellationState) -> bytes:
    """Returns the state hash computed from scratch (what the incremental one must equal)."""
    return StateCommitment().state_hash(state)
