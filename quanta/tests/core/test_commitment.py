"""The state commitment (`quanta.core.commitment`): its bytes, its vectors, and its cost.

Goal: every node must compute the same state hash from the same state, by the rule
docs/engine.md states byte for byte, and a snapshot batch must pay for the accounts that
changed, not for all of them.
Method: a fixed small state (genesis, three deposits, a resting order, a pending withdrawal)
whose leaf bytes are rebuilt here with `struct` from the documented layout, not with the
codec, and whose hashes are pinned as golden vectors; engines driven by the determinism
module's seeded sessions compare the incremental hash with one computed from scratch; a count
of the leaves hashed shows the cost.
"""

from __future__ import annotations

import dataclasses
import hashlib
import struct
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exchange.core.accounts import Account
from exchange.core.market import Exchange
from exchange.core.matching import TimeInForce, order_id_of
from exchange.core.orderbook import Order, Side
from quanta.core.commitment import (
    StateCommitment,
    account_leaf,
    account_state,
    state_hash_rebuilt,
)
from quanta.core.engine import Engine
from quanta.core.merkle import leaf_hash
from quanta.core.signatures import constellation_id_of
from quanta.core.state import ConstellationState, Withdrawal
from quanta.core.testing import (
    PROVIDER_ID,
    QUOTE,
    default_settings,
    deposit_quantum,
    keypair,
    request_quantum,
    settings_quantum,
    withdrawal_quantum,
)
from quanta.core.xdr.codec import encode
from quanta.core.xdr.schema import OrderRequest, PaymentRequest, WithdrawalRequest
from quanta.tests.core.test_determinism import SEEDS, record_session

UNIT = 10_000_000
START_MS = 1_700_000_000_000
AUDITORS = [keypair(200), keypair(201), keypair(202)]
GENESIS = default_settings(AUDITORS)
CID = constellation_id_of(GENESIS)
FIRST, SECOND = keypair(1), keypair(2)

# Golden vectors of `fixed_engine()`'s state (docs/engine.md, "State commitment").
GOLDEN_LEAF_1 = "24848ccc5b031df8fd83bea07506171fc2990e1fc482fcc2c733b920ea4aa05e"
GOLDEN_LEAF_2 = "2cbbbdc9697513ba1380e6c9b5dbf27ec4595afb3bb85b9769a5b11fcc391c8c"
GOLDEN_ACCOUNTS_ROOT = "0643cd50d6ff9dac2a0e95d611de58e9eb476cae93d346db3622a2632e1b3444"
GOLDEN_STATE_HASH = "ff8243b472ab33a8aeec2ad681b3810d0a7e219b5f8f645f12e6b09765e0895c"


def fixed_engine() -> Engine:
    """Returns the engine of the golden vectors: two accounts, an order, a withdrawal."""
    engine = Engine()
    engine.execute(settings_quantum(GENESIS, AUDITORS[:2]), START_MS)
    items = [(FIRST, QUOTE, 100 * UNIT), (FIRST, "XLM", 50 * UNIT), (SECOND, QUOTE, 70 * UNIT)]
    engine.execute(deposit_quantum(1, items), START_MS + 1)
    order = OrderRequest(
        1, FIRST.public_key, 1, "XLM", Side.SELL, 10 * UNIT, 1.5, TimeInForce.GOOD_TILL_EXPIRE, 42
    )
    engine.execute(request_quantum(order, FIRST, CID), START_MS + 2)
    withdrawal = WithdrawalRequest(1, SECOND.public_key, 1, PROVIDER_ID, QUOTE, 5 * UNIT, "EXT", 7)
    engine.execute(withdrawal_quantum(withdrawal, SECOND, CID), START_MS + 3)
    return engine


def xdr_string(text: str) -> bytes:
    """Returns an XDR string: length, ASCII bytes, zero padding to 4 bytes."""
    data = text.encode()
    return struct.pack(">I", len(data)) + data + bytes(-len(data) % 4)


def test_leaf_bytes_follow_the_documented_layout() -> None:
    state = fixed_engine().state
    first = state.accounts.get_by_key(FIRST.public_key)
    second = state.accounts.get_by_key(SECOND.public_key)
    assert first is not None and second is not None
    expected_first = (
        struct.pack(">Q", first.id)
        + FIRST.public_key
        + struct.pack(">QQ", 1, 2)  # nonce 1 (the order), sequence 2 (deposit, order)
        + struct.pack(">I", 2)  # balances, by asset code
        + xdr_string("USD")
        + struct.pack(">QQ", 100 * UNIT, 0)
        + xdr_string("XLM")
        + struct.pack(">QQ", 50 * UNIT, 10 * UNIT)
        + struct.pack(">I", 1)  # resting orders, by id: id, asset, side, price, amount, client id
        + struct.pack(">Q", order_id_of(3))  # placed at apex 3, first of its quantum
        + xdr_string("XLM")
        + struct.pack(">iQQQ", int(Side.SELL), 15_000_000, 10 * UNIT, 42)
        + struct.pack(">I", 0)  # no pending withdrawal
    )
    expected_second = (
        struct.pack(">Q", second.id)
        + SECOND.public_key
        + struct.pack(">QQ", 1, 2)
        + struct.pack(">I", 1)
        + xdr_string("USD")
        + struct.pack(">QQ", 70 * UNIT, 5 * UNIT + 7)
        + struct.pack(">I", 0)  # no orders
        + struct.pack(">I", 1)  # a pending withdrawal: id, provider, asset, amount, fee, to
        + struct.pack(">Q", 4)
        + xdr_string(PROVIDER_ID)
        + xdr_string("USD")
        + struct.pack(">QQ", 5 * UNIT, 7)
        + xdr_string("EXT")
    )
    assert encode(account_state(state, first)) == expected_first
    assert encode(account_state(state, second)) == expected_second


def test_state_hash_follows_the_documented_rule() -> None:
    state = fixed_engine().state
    leaves = [
        hashlib.sha256(b"\x00" + encode(account_state(state, account))).digest()
        for account in (_first(state), state.accounts.get_by_id(2))
        if account is not None
    ]
    root = hashlib.sha256(b"\x01" + leaves[0] + leaves[1]).digest()
    config = state.require_config()
    header = (
        struct.pack(">Q", state.apex)
        + state.last_hash
        + config.constellation_id
        + struct.pack(">I", 1)  # settings present
        + encode(config.settings)
        + struct.pack(">I", 1)  # cursors, by provider id
        + xdr_string(PROVIDER_ID)
        + xdr_string("1")
        + struct.pack(">QQQ", state.next_account_id, state.constellation_sequence, 2)
        + root
        + struct.pack(">I", 0)  # fee account, by asset code: none paid yet
    )
    assert state.state_hash() == hashlib.sha256(b"\x02" + header).digest()


def test_golden_vectors() -> None:
    state = fixed_engine().state
    first, second = state.accounts.get_by_id(1), state.accounts.get_by_id(2)
    assert first is not None and second is not None
    assert leaf_hash(encode(account_state(state, first))).hex() == GOLDEN_LEAF_1
    assert leaf_hash(encode(account_state(state, second))).hex() == GOLDEN_LEAF_2
    assert StateCommitment().accounts_root(state) == (2, bytes.fromhex(GOLDEN_ACCOUNTS_ROOT))
    assert state.state_hash().hex() == GOLDEN_STATE_HASH


@pytest.mark.parametrize("seed", SEEDS)
def test_incremental_hash_equals_one_from_scratch_after_every_quantum(seed: int) -> None:
    engine = Engine()
    hashed_at_some_steps = 0
    for step in record_session(seed):
        try:
            engine.execute(step.body, step.now_ms)
        except Exception:  # noqa: BLE001, S112 (a rejected request changes nothing)
            continue
        if step.now_ms % 3 == 0:  # the incremental tree skips some quanta, as batches do
            continue
        hashed_at_some_steps += 1
        assert engine.state.state_hash() == state_hash_rebuilt(engine.state)
    assert hashed_at_some_steps > 20


def test_a_payment_rehashes_the_two_accounts_it_moved_and_no_other() -> None:
    engine = fixed_engine()
    state = engine.state
    for i in range(3, 200):
        engine.execute(deposit_quantum(i, [(keypair(i), QUOTE, 10 * UNIT)]), START_MS + i)
    state.state_hash()
    hashed = state.commitment.leaves_hashed
    payment = PaymentRequest(1, FIRST.public_key, 2, QUOTE, UNIT, SECOND.public_key)
    engine.execute(request_quantum(payment, FIRST, CID), START_MS + 500)
    state.state_hash()
    assert len(state.accounts) == 199
    assert state.commitment.leaves_hashed - hashed == 2


def _credit_the_fee_account(state: ConstellationState) -> None:
    state.fee_balances[QUOTE] = state.fee_balances.get(QUOTE, 0) + 1


def _bump_nonce(state: ConstellationState) -> None:
    _first(state).nonce += 1


def _bump_sequence(state: ConstellationState) -> None:
    _first(state).sequence += 1


def _bump_amount(state: ConstellationState) -> None:
    _first(state).balances[QUOTE].change_amount(1)


def _bump_liabilities(state: ConstellationState) -> None:
    _first(state).balances[QUOTE].change_liabilities(1)


def _bump_order_amount(state: ConstellationState) -> None:
    order = state.require_exchange().get_order(order_id_of(3))
    assert order is not None
    order.amount += 1


def _relabel_order(state: ConstellationState) -> None:
    order = state.require_exchange().get_order(order_id_of(3))
    assert order is not None
    order.client_order_id += 1


def _bump_withdrawal_fee(state: ConstellationState) -> None:
    state.withdrawals[4] = dataclasses.replace(state.withdrawals[4], fee=8)


def _move_cursor(state: ConstellationState) -> None:
    state.cursors[PROVIDER_ID] = "2"


def _bump_apex(state: ConstellationState) -> None:
    state.apex += 1


def _bump_constellation_sequence(state: ConstellationState) -> None:
    state.constellation_sequence += 1


def _first(state: ConstellationState) -> Account:
    account = state.accounts.get_by_id(1)
    assert account is not None
    return account


@pytest.mark.parametrize(
    "change",
    [
        _bump_nonce,
        _bump_sequence,
        _bump_amount,
        _bump_liabilities,
        _bump_order_amount,
        _relabel_order,
        _bump_withdrawal_fee,
        _move_cursor,
        _bump_apex,
        _bump_constellation_sequence,
    ],
)
def test_every_committed_field_moves_the_hash(change: Callable[[ConstellationState], None]) -> None:
    state = fixed_engine().state
    original = state_hash_rebuilt(state)
    change(state)
    assert state_hash_rebuilt(state) != original


def test_a_change_that_bypassed_the_effects_fails_the_invariants() -> None:
    state = fixed_engine().state
    state.state_hash()
    first = state.accounts.get_by_id(1)
    assert first is not None
    first.balances["USD"].change_amount(1)
    with pytest.raises(AssertionError, match="stale state commitment"):
        state.check_invariants()


def test_ids_far_from_one_are_leaves_in_id_order_and_reverts_shrink_the_tree() -> None:
    engine = Engine()
    engine.execute(settings_quantum(GENESIS, AUDITORS[:2]), START_MS)
    engine.state.next_account_id = 2**64 - 10
    engine.execute(deposit_quantum(1, [(FIRST, QUOTE, 10 * UNIT)]), START_MS + 1)
    before = engine.state.state_hash()
    executed = engine.execute(deposit_quantum(2, [(SECOND, QUOTE, 10 * UNIT)]), START_MS + 2)
    assert engine.state.state_hash() == state_hash_rebuilt(engine.state)
    assert len(engine.state.commitment.tree) == 2
    engine.revert_last(executed)
    assert engine.state.state_hash() == before
    assert len(engine.state.commitment.tree) == 1


ASSET_CODES = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=1, max_size=12)
U64S = st.integers(min_value=0, max_value=2**64 - 1)


@st.composite
def any_account(draw: st.DrawFn) -> tuple[ConstellationState, Account]:
    """Draws a state holding one account with any balances, resting orders and withdrawal."""
    state = ConstellationState()
    state.exchange = Exchange(QUOTE)
    account = Account(draw(st.integers(1, 2**64 - 1)), draw(st.binary(min_size=32, max_size=32)))
    account.nonce, account.sequence = draw(U64S), draw(U64S)
    for asset in draw(st.lists(ASSET_CODES, max_size=6, unique=True)):
        balance = account.create_balance(asset)
        balance.amount, balance.liabilities = draw(U64S), draw(U64S)
    state.accounts.add(account)
    order_ids = draw(st.lists(st.integers(1, 2**64 - 1), max_size=5, unique=True))
    for order_id in order_ids:
        asset = draw(ASSET_CODES.filter(lambda code: code != QUOTE))
        market = state.exchange.market(asset) or state.exchange.add_market(asset)
        side = draw(st.sampled_from(Side))
        price = draw(st.integers(1, 2**40)) * market.tick
        amount = draw(st.integers(1, 2**64 - 1))
        label = draw(st.integers(0, 2**64 - 1))
        market.book(side).add(Order(order_id, account.id, side, asset, price, amount, label))
    if draw(st.booleans()):
        account.pending_withdrawal = draw(U64S)
        state.withdrawals[account.pending_withdrawal] = Withdrawal(
            account.pending_withdrawal,
            account.id,
            draw(st.text(max_size=20)),
            draw(ASSET_CODES),
            draw(U64S),
            draw(U64S),
            draw(st.text(max_size=60)),
            b"tx",
        )
    return state, account


@given(any_account())
@settings(max_examples=300, deadline=None)
def test_the_packed_leaf_is_the_schema_encoding(drawn: tuple[ConstellationState, Account]) -> None:
    state, account = drawn
    assert account_leaf(state, account) == encode(account_state(state, account))
