"""The engine end to end on plain objects: initialization, deposits, payments, orders,
cancellations, withdrawals, and every rejection path.

Method: a `Node` fixture holds an Engine with the constellation initialized (3 auditors, quote
asset USD, markets XLM/USD and BTC/USD); each test drives signed requests through it and looks
at the effects, balances and hashes. Every rejection asserts the state hash is unchanged.
"""

from __future__ import annotations

import itertools

import pytest

from exchange.core.matching import order_id_of
from exchange.core.orderbook import Side
from quanta.core.engine import Engine, Executed, QuantumMismatch
from quanta.core.hashing import sha256
from quanta.core.keys import KeyPair
from quanta.core.signatures import constellation_id_of
from quanta.core.state import ConstellationState
from quanta.core.status import ConstellationError, StatusCode
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
from quanta.core.xdr.schema import (
    AccountDataRequest,
    OrderCancellationRequest,
    OrderRequest,
    PaymentRequest,
    QuantumBody,
    TimeInForce,
    TradeEffect,
    WithdrawalRequest,
)

UNIT = 10_000_000


class Node:
    """An initialized engine plus helpers that build and run signed requests."""

    def __init__(self) -> None:
        self.auditors = [keypair(200), keypair(201), keypair(202)]
        self.engine = Engine()
        self.executed: list[Executed] = []
        self.cursor = itertools.count(1)
        self.nonces: dict[bytes, int] = {}
        self.clock = itertools.count(1_000_000)
        genesis = default_settings(self.auditors)
        self.cid = constellation_id_of(genesis)
        self.run(settings_quantum(genesis, self.auditors[:2]))

    def run(self, body: QuantumBody) -> Executed:
        executed = self.engine.execute(body, next(self.clock))
        self.executed.append(executed)
        self.engine.state.check_invariants()
        return executed

    def deposit(self, who: KeyPair, asset: str, amount: int) -> Executed:
        return self.run(deposit_quantum(next(self.cursor), [(who, asset, amount)]))

    def nonce(self, who: KeyPair) -> int:
        self.nonces[who.public_key] = self.nonces.get(who.public_key, 0) + 1
        return self.nonces[who.public_key]

    def pay(self, who: KeyPair, to: KeyPair, asset: str, amount: int) -> Executed:
        request = PaymentRequest(1, who.public_key, self.nonce(who), asset, amount, to.public_key)
        return self.run(request_quantum(request, who, self.cid))

    def order(
        self,
        who: KeyPair,
        side: Side,
        amount: int,
        price: float,
        asset: str = "XLM",
        tif: TimeInForce = TimeInForce.GOOD_TILL_EXPIRE,
    ) -> Executed:
        request = OrderRequest(1, who.public_key, self.nonce(who), asset, side, amount, price, tif)
        return self.run(request_quantum(request, who, self.cid))

    def cancel(self, who: KeyPair, order_id: int) -> Executed:
        request = OrderCancellationRequest(1, who.public_key, self.nonce(who), order_id)
        return self.run(request_quantum(request, who, self.cid))

    def withdraw(self, who: KeyPair, asset: str, amount: int, fee: int = 0) -> Executed:
        request = WithdrawalRequest(
            1, who.public_key, self.nonce(who), PROVIDER_ID, asset, amount, "EXTERNAL", fee
        )
        return self.run(withdrawal_quantum(request, who, self.cid))

    def balance(self, who: KeyPair, asset: str) -> tuple[int, int]:
        account = self.engine.state.accounts.get_by_key(who.public_key)
        assert account is not None
        balance = account.balance(asset)
        return (0, 0) if balance is None else (balance.amount, balance.liabilities)

    def rejected(self, body: QuantumBody, status: StatusCode) -> str:
        before = self.engine.state.state_hash()
        apex = self.engine.state.apex
        with pytest.raises(ConstellationError) as caught:
            self.engine.execute(body, next(self.clock))
        assert caught.value.status == status, caught.value
        assert self.engine.state.state_hash() == before
        assert self.engine.state.apex == apex
        return str(caught.value)


@pytest.fixture
def node() -> Node:
    return Node()


@pytest.fixture
def alice(node: Node) -> KeyPair:
    who = keypair(1)
    node.deposit(who, QUOTE, 1_000 * UNIT)
    node.deposit(who, "XLM", 500 * UNIT)
    return who


@pytest.fixture
def bob(node: Node) -> KeyPair:
    who = keypair(2)
    node.deposit(who, QUOTE, 1_000 * UNIT)
    return who


def test_initialization_puts_settings_in_force(node: Node) -> None:
    state = node.engine.state
    assert state.apex == 1
    assert state.config is not None
    assert state.config.quote_asset == QUOTE
    assert state.exchange is not None
    assert [m.asset for m in state.exchange.markets()] == ["BTC", "XLM"]


def test_deposit_of_quote_asset_registers_account(node: Node, alice: KeyPair) -> None:
    account = node.engine.state.accounts.get_by_key(alice.public_key)
    assert account is not None
    assert account.id == 1
    assert node.balance(alice, QUOTE) == (1_000 * UNIT, 0)
    assert node.engine.state.cursors[PROVIDER_ID] == "2"


def test_deposit_below_minimum_does_not_register(node: Node) -> None:
    poor = keypair(9)
    node.deposit(poor, QUOTE, UNIT - 1)
    node.deposit(poor, "XLM", 100 * UNIT)
    assert node.engine.state.accounts.get_by_key(poor.public_key) is None


def test_payment_moves_funds(node: Node, alice: KeyPair, bob: KeyPair) -> None:
    executed = node.pay(alice, bob, "XLM", 20 * UNIT)
    assert node.balance(alice, "XLM") == (480 * UNIT, 0)
    assert node.balance(bob, "XLM") == (20 * UNIT, 0)
    assert [g.account for g in executed.groups] == [1, 2]


def test_orders_trade_at_maker_price(node: Node, alice: KeyPair, bob: KeyPair) -> None:
    sell = node.order(alice, Side.SELL, 100 * UNIT, 0.5)
    assert node.balance(alice, "XLM") == (500 * UNIT, 100 * UNIT)
    buy = node.order(bob, Side.BUY, 40 * UNIT, 0.6)
    trades = [e for g in buy.groups for e in g.effects if isinstance(e, TradeEffect)]
    assert {(t.side, t.price, t.asset_amount, t.quote_amount) for t in trades} == {
        (Side.SELL, 5_000_000, 40 * UNIT, 20 * UNIT),
        (Side.BUY, 5_000_000, 40 * UNIT, 20 * UNIT),
    }
    assert node.balance(alice, "XLM") == (460 * UNIT, 60 * UNIT)
    assert node.balance(alice, QUOTE) == (1_020 * UNIT, 0)
    assert node.balance(bob, "XLM") == (40 * UNIT, 0)
    assert node.balance(bob, QUOTE) == (980 * UNIT, 0)
    order = node.engine.state.require_exchange().get_order(order_id_of(sell.apex))
    assert order is not None
    assert order.amount == 60 * UNIT


def test_executed_keeps_the_exact_xdr_its_hashes_cover(
    node: Node, alice: KeyPair, bob: KeyPair
) -> None:
    # Persistence writes these bytes instead of encoding again: they must be the hashed ones.
    node.order(alice, Side.SELL, 100 * UNIT, 0.5)
    executed = node.order(bob, Side.BUY, 40 * UNIT, 0.6)
    assert executed.quantum_data == encode(executed.quantum)
    assert sha256(executed.quantum_data) == executed.quantum_hash
    assert executed.group_data == [encode(group) for group in executed.groups]
    assert [sha256(data) for data in executed.group_data] == executed.group_hashes


def test_gtc_remainder_rests_and_ioc_does_not(node: Node, alice: KeyPair, bob: KeyPair) -> None:
    node.order(alice, Side.SELL, 10 * UNIT, 1.0)
    ioc = node.order(bob, Side.BUY, 30 * UNIT, 1.0, tif=TimeInForce.IMMEDIATE_OR_CANCEL)
    gtc = node.order(bob, Side.BUY, 30 * UNIT, 0.9)
    exchange = node.engine.state.require_exchange()
    assert exchange.get_order(order_id_of(ioc.apex)) is None
    resting = exchange.get_order(order_id_of(gtc.apex))
    assert resting is not None
    assert node.balance(bob, QUOTE) == (990 * UNIT, 27 * UNIT)


def test_cancel_unlocks_and_only_owner_may_cancel(node: Node, alice: KeyPair, bob: KeyPair) -> None:
    placed = node.order(alice, Side.SELL, 10 * UNIT, 2.0)
    request = OrderCancellationRequest(1, bob.public_key, node.nonce(bob), order_id_of(placed.apex))
    node.rejected(request_quantum(request, bob, node.cid), StatusCode.FORBIDDEN)
    node.cancel(alice, order_id_of(placed.apex))
    assert node.balance(alice, "XLM") == (500 * UNIT, 0)


def test_withdrawal_locks_then_settles(node: Node, alice: KeyPair) -> None:
    created = node.withdraw(alice, "XLM", 100 * UNIT, fee=UNIT)
    assert node.balance(alice, "XLM") == (500 * UNIT, 101 * UNIT)
    second = WithdrawalRequest(
        1, alice.public_key, node.nonce(alice), PROVIDER_ID, "XLM", UNIT, "EXTERNAL", 0
    )
    assert "pending" in node.rejected(
        withdrawal_quantum(second, alice, node.cid), StatusCode.BAD_REQUEST
    )
    node.run(deposit_quantum(next(node.cursor), withdrawals=[(created.apex, True)]))
    assert node.balance(alice, "XLM") == (399 * UNIT, 0)


def test_failed_withdrawal_unlocks(node: Node, alice: KeyPair) -> None:
    created = node.withdraw(alice, "XLM", 100 * UNIT)
    node.run(deposit_quantum(next(node.cursor), withdrawals=[(created.apex, False)]))
    assert node.balance(alice, "XLM") == (500 * UNIT, 0)


def test_account_data_carries_balances_and_hash(node: Node, alice: KeyPair) -> None:
    request = AccountDataRequest(1, alice.public_key, node.nonce(alice))
    executed = node.run(request_quantum(request, alice, node.cid))
    data = executed.account_data
    assert data is not None
    assert [(b.asset, b.amount) for b in data.balances] == [
        (QUOTE, 1_000 * UNIT),
        ("XLM", 500 * UNIT),
    ]
    assert len(data.state_hash) == 32


@pytest.mark.parametrize(
    ("request_factory", "status", "fragment"),
    [
        (
            lambda a, b, n: PaymentRequest(1, a.public_key, n, "DOGE", UNIT, b.public_key),
            400,
            "unknown asset",
        ),
        (
            lambda a, b, n: PaymentRequest(1, a.public_key, n, "XLM", 10**12 * UNIT, b.public_key),
            400,
            "insufficient",
        ),
        (
            lambda a, b, n: PaymentRequest(1, a.public_key, 0, "XLM", UNIT, b.public_key),
            400,
            "nonce",
        ),
        (
            lambda a, b, n: OrderRequest(
                1, a.public_key, n, "XLM", Side.SELL, 10, 0.5, TimeInForce.GOOD_TILL_EXPIRE
            ),
            400,
            "lot size",
        ),
        (
            lambda a, b, n: OrderRequest(
                1,
                a.public_key,
                n,
                "XLM",
                Side.SELL,
                UNIT,
                float("nan"),
                TimeInForce.GOOD_TILL_EXPIRE,
            ),
            400,
            "price",
        ),
        (
            lambda a, b, n: OrderRequest(
                1, a.public_key, n, "USD", Side.SELL, UNIT, 1.0, TimeInForce.GOOD_TILL_EXPIRE
            ),
            400,
            "no market",
        ),
        (
            lambda a, b, n: OrderCancellationRequest(1, a.public_key, n, 999_999),
            400,
            "unknown order",
        ),
    ],
)
def test_rejections_change_nothing(
    node: Node, alice: KeyPair, bob: KeyPair, request_factory, status: int, fragment: str
) -> None:
    request = request_factory(alice, bob, node.nonce(alice))
    message = node.rejected(request_quantum(request, alice, node.cid), StatusCode(status))
    assert fragment in message


def test_unregistered_account_is_refused(node: Node, alice: KeyPair) -> None:
    stranger = keypair(77)
    request = PaymentRequest(1, stranger.public_key, 1, "XLM", UNIT, alice.public_key)
    node.rejected(request_quantum(request, stranger, node.cid), StatusCode.UNAUTHORIZED)


def test_bad_signature_is_refused(node: Node, alice: KeyPair, bob: KeyPair) -> None:
    request = PaymentRequest(1, alice.public_key, node.nonce(alice), "XLM", UNIT, bob.public_key)
    node.rejected(request_quantum(request, bob, node.cid), StatusCode.UNAUTHORIZED)


def test_replay_rebuilds_identical_state_and_hashes(
    node: Node, alice: KeyPair, bob: KeyPair
) -> None:
    node.order(alice, Side.SELL, 100 * UNIT, 0.5)
    node.order(bob, Side.BUY, 150 * UNIT, 0.5)
    node.pay(bob, alice, QUOTE, UNIT)
    node.withdraw(alice, QUOTE, UNIT)
    replica = Engine(ConstellationState())
    for executed in node.executed:
        again = replica.replay(executed.quantum)
        assert again.quantum_hash == executed.quantum_hash
        assert again.payload_hash == executed.payload_hash
    assert replica.state.state_hash() == node.engine.state.state_hash()


def test_replay_refuses_tampered_effects_proof(node: Node, alice: KeyPair) -> None:
    replica = Engine(ConstellationState())
    for executed in node.executed[:-1]:
        replica.replay(executed.quantum)
    last = node.executed[-1].quantum
    forged = type(last)(last.apex, last.prev_hash, bytes(32), last.timestamp, last.body)
    before = replica.state.state_hash()
    with pytest.raises(QuantumMismatch):
        replica.replay(forged)
    assert replica.state.state_hash() == before


def test_revert_last_restores_previous_state(node: Node, alice: KeyPair, bob: KeyPair) -> None:
    node.order(alice, Side.SELL, 100 * UNIT, 0.5)
    before = node.engine.state.state_hash()
    executed = node.order(bob, Side.BUY, 150 * UNIT, 0.5)
    node.engine.revert_last(executed)
    node.engine.state.check_invariants()
    assert node.engine.state.state_hash() == before
