"""A node's state as one byte string, and the majority-signed state hash that makes it trusted.

A node that joins empty (or whose database was lost) does not replay the chain from apex 1:
it loads a state snapshot from alpha (`snapshot_encode` / `snapshot_decode`), replays the few
quanta from the snapshot's apex up to the next *attested* apex, and trusts the result only if
its state hash there was signed by a majority of the auditors of the settings in force
(`attestation_digest`, `attested_by_majority`). docs/engine.md "Joining from a snapshot".

The bytes reuse the state commitment's own records (`quanta.core.commitment`): the snapshot is
the `StateHeader` the state hash is taken over and one `AccountState` per account (the leaves
of the accounts' tree), plus what the commitment leaves out but a node needs: the genesis
settings (the constellation id is their hash), the apex the settings in force came in at, and
the provider transaction of each pending withdrawal. Framing (big-endian):

    MAGIC (8) ‖ u32 len ‖ XDR(StateHeader) ‖ u32 len ‖ XDR(genesis ConstellationSettings) ‖
    u64 settings apex ‖ u32 n ‖ n × (u32 len ‖ XDR(AccountState)) ‖
    u32 m ‖ m × (u64 withdrawal id ‖ u32 len ‖ transaction)

A decoded snapshot is checked against itself (its state, rebuilt, hashes to its header's
hash): that catches a damaged file, not a lie. Trust comes only from the attestation check.

Attestations: every node, after executing a quantum whose apex is a multiple of the
attestation interval (`Engine.attest_every`), records its state hash there and signs
SHA-256(constellation id ‖ 0x04 ‖ apex uint64 ‖ state hash). The quantum signatures do not
cover the state (they cover the quantum hash and the effects proof), so a snapshot cannot be
judged by them: a balance changed in a snapshot leaves every quantum signature valid.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from exchange.core.accounts import Account
from exchange.core.orderbook import Order, Side
from quanta.core.commitment import account_state, header_hash, state_header
from quanta.core.effects import install_settings
from quanta.core.hashing import sha256
from quanta.core.keys import verify_signature
from quanta.core.signatures import (
    CONSTELLATION_ID_LENGTH,
    Domain,
    constellation_id_of,
    majority,
)
from quanta.core.state import ConstellationState, Withdrawal
from quanta.core.xdr.codec import XdrError, decode, encode
from quanta.core.xdr.schema import AccountState, ConstellationSettings, StateHeader

MAGIC = b"CSNAP\x00\x00\x01"
ACCOUNTS_MAX = 50_000_000
"""The most accounts a snapshot may claim (a bound on what a decoder allocates)."""
RECORD_BYTES_MAX = 16 * 1024 * 1024
"""The largest single record of a snapshot (a header with its settings, one account)."""

STATE_DOMAIN = 4
"""The domain byte of a state attestation's digest (`signatures.bound_digest`'s rule). Not a
member of `signatures.Domain`: that enum is what static/js/domain.js mirrors, and no browser
checks an attestation."""
assert STATE_DOMAIN not in set(Domain), "a domain byte is one kind of signed thing"

_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")


class SnapshotError(ValueError):
    """A snapshot that cannot be decoded, or whose state does not match its own header."""


@dataclass(frozen=True, slots=True)
class StateSnapshot:
    """A decoded snapshot: the state it rebuilds and what a node records beside it."""

    state: ConstellationState
    state_hash: bytes
    genesis: ConstellationSettings
    settings_apex: int


def snapshot_encode(
    state: ConstellationState, genesis: ConstellationSettings, settings_apex: int
) -> bytes:
    """Returns the snapshot bytes of an initialized state."""
    assert state.config is not None, "only an initialized state has a snapshot"
    accounts = sorted(state.accounts, key=lambda account: account.id)
    records = [encode(account_state(state, account)) for account in accounts]
    count, root = state.commitment.accounts_root(state)
    parts = [MAGIC, _framed(encode(state_header(state, count, root))), _framed(encode(genesis))]
    parts.append(_U64.pack(settings_apex))
    parts.append(_U32.pack(len(records)))
    parts += (_framed(record) for record in records)
    withdrawals = sorted(state.withdrawals.values(), key=lambda w: w.withdrawal_id)
    parts.append(_U32.pack(len(withdrawals)))
    for withdrawal in withdrawals:
        parts += (_U64.pack(withdrawal.withdrawal_id), _framed(withdrawal.transaction))
    return b"".join(parts)


def _framed(data: bytes) -> bytes:
    return _U32.pack(len(data)) + data


class _Reader:
    """Reads the framing of a snapshot, refusing anything short or oversized."""

    def __init__(self, data: bytes) -> None:
        self.data = memoryview(data)
        self.offset = 0

    def take(self, size: int) -> bytes:
        end = self.offset + size
        if end > len(self.data):
            raise SnapshotError("snapshot cut short")
        chunk = bytes(self.data[self.offset : end])
        self.offset = end
        return chunk

    def u32(self) -> int:
        return int(_U32.unpack(self.take(4))[0])

    def u64(self) -> int:
        return int(_U64.unpack(self.take(8))[0])

    def record(self) -> bytes:
        size = self.u32()
        if size > RECORD_BYTES_MAX:
            raise SnapshotError(f"snapshot record of {size} bytes refused")
        return self.take(size)


def snapshot_decode(data: bytes) -> StateSnapshot:
    """Rebuilds the state a snapshot holds; raises SnapshotError for bytes that do not decode
    or a state that does not hash to its own header (a damaged snapshot)."""
    reader = _Reader(data)
    if reader.take(len(MAGIC)) != MAGIC:
        raise SnapshotError("not a state snapshot (or another format version)")
    try:
        header = decode(StateHeader, reader.record())
        genesis = decode(ConstellationSettings, reader.record())
        settings_apex = reader.u64()
        count = reader.u32()
        if count > ACCOUNTS_MAX:
            raise SnapshotError(f"snapshot of {count} accounts refused")
        accounts = [decode(AccountState, reader.record()) for _ in range(count)]
        transactions = {}
        for _ in range(reader.u32()):
            withdrawal_id = reader.u64()
            transactions[withdrawal_id] = reader.record()
    except XdrError as error:
        raise SnapshotError(f"snapshot does not decode: {error}") from None
    if reader.offset != len(data):
        raise SnapshotError("snapshot has bytes after its end")
    if header.settings is None:
        raise SnapshotError("snapshot of an uninitialized state")
    if constellation_id_of(genesis) != header.constellation_id:
        raise SnapshotError("the snapshot's genesis settings are not its constellation's")
    state = _state_of(header, accounts, transactions)
    state_hash = state.state_hash()
    if state_hash != header_hash(header):
        raise SnapshotError("the snapshot's state does not match its own state hash")
    return StateSnapshot(state, state_hash, genesis, settings_apex)


def _state_of(
    header: StateHeader, accounts: Sequence[AccountState], transactions: Mapping[int, bytes]
) -> ConstellationState:
    """Builds the state of a header and its accounts (as `quanta.node.snapshot` does from
    rows); anything inconsistent raises SnapshotError."""
    state = ConstellationState()
    assert header.settings is not None
    try:
        install_settings(state, header.settings, header.constellation_id)
    except (ValueError, AssertionError) as error:
        raise SnapshotError(f"the snapshot's settings: {error}") from None
    exchange = state.require_exchange()
    for record in accounts:
        account = Account(record.account_id, record.public_key)
        account.nonce = record.nonce
        account.sequence = record.sequence
        if state.accounts.get_by_id(account.id) is not None:
            raise SnapshotError(f"account {account.id} twice")
        state.accounts.add(account)
        for balance in record.balances:
            created = account.create_balance(balance.asset)
            created.amount = balance.amount
            created.liabilities = balance.liabilities
        for order in record.orders:
            market = exchange.market(order.asset)
            if market is None:
                raise SnapshotError(f"order {order.order_id} in no market ({order.asset})")
            side = Side(order.side)
            market.book(side).add(
                Order(
                    order.order_id,
                    account.id,
                    side,
                    order.asset,
                    order.price,
                    order.amount,
                    order.client_order_id,
                )
            )
            account.open_orders += 1
        pending = record.withdrawal
        if pending is not None:
            state.withdrawals[pending.withdrawal_id] = Withdrawal(
                pending.withdrawal_id,
                account.id,
                pending.provider,
                pending.asset,
                pending.amount,
                pending.fee,
                pending.destination,
                transactions.get(pending.withdrawal_id, b""),
            )
            account.pending_withdrawal = pending.withdrawal_id
    state.cursors = {cursor.provider: cursor.cursor for cursor in header.cursors}
    state.fee_balances = {fee.asset: fee.amount for fee in header.fee_balances}
    state.apex = header.apex
    state.last_hash = header.last_hash
    state.next_account_id = header.next_account_id
    state.constellation_sequence = header.constellation_sequence
    first = header.next_account_id - len(accounts)
    if [record.account_id for record in accounts] != list(range(first, header.next_account_id)):
        raise SnapshotError("the snapshot's account ids are not contiguous")
    return state


# --- attestations ----------------------------------------------------------------------------


def attestation_digest(constellation_id: bytes, apex: int, state_hash: bytes) -> bytes:
    """Returns what a node signs to attest its state hash after the quantum at `apex`."""
    assert len(state_hash) == 32, len(state_hash)
    assert len(constellation_id) == CONSTELLATION_ID_LENGTH
    return sha256(constellation_id + bytes((STATE_DOMAIN,)) + _U64.pack(apex) + state_hash)


def attested_by_majority(
    settings: ConstellationSettings,
    constellation_id: bytes,
    apex: int,
    state_hash: bytes,
    signatures: Iterable[tuple[bytes, bytes]],
) -> tuple[int, int]:
    """Returns (valid signatures of distinct auditors of `settings`, the majority needed) for
    the state hash at `apex`; the hash is trusted when the first reaches the second.
    `signatures` are (public key, signature) pairs; others' keys and invalid ones count 0."""
    keys = {auditor.public_key for auditor in settings.auditors}
    digest = attestation_digest(constellation_id, apex, state_hash)
    valid = {
        key
        for key, signature in signatures
        if key in keys and verify_signature(key, digest, signature)
    }
    return len(valid), majority(len(keys))


def attestation_apex_at_or_above(apex: int, every: int) -> int:
    """Returns the first apex at or above `apex` that nodes attest (a multiple of `every`)."""
    assert every > 0, every
    return -(-apex // every) * every
