"""Stateful properties of the engine: conservation, invariants, uncrossed books, exact replay.

Goal: show that no sequence of quanta, valid or not, can create or destroy money, break the
liability bookkeeping, leave a market crossed, or make a replica compute a different history.

Method: a Hypothesis `RuleBasedStateMachine` drives one initialized `Engine` (3 auditors,
quote asset USD, markets XLM/USD and BTC/USD) with random deposits (any asset, to registered
and unregistered keys, some below the minimum balance), payments, orders (both sides, every
order type: GTC, IOC, fill-or-kill, post-only; prices a few ticks around 1.0 so they cross
often, amounts that may exceed the free balance), order batches (orders with client ids,
cancels, cancel-all, in one signed request), cancellations (own, others' and unknown ids,
and by client order id), withdrawals and their settlement
(success or failure) through a deposit quantum, and requests that are invalid by
construction. The machine keeps its own model of the money that entered (credited deposits)
and left (completed withdrawals, amount + fee) and of who is registered, derived only from the
quanta it sent. After every step it checks:

(a) per asset, the sum of all balances == credited − paid out;
(b) `ConstellationState.check_invariants()` (liabilities == what orders and withdrawals lock);
(c) no market is crossed (best bid < best ask);
and after each executed order its type's rule: no self-trade ever (self-trade prevention
cancels the resting order), a post-only order never trades, a fill-or-kill order fills entirely
or not at all, an IOC or fill-or-kill order never rests. Client order ids are drawn mostly
from a few labels, so they collide: the model keeps which label each order it sent carries
and which of its account's labels rest (the book tells it whether that order still rests), so
it predicts the refusal of an order reusing a resting label and of a cancel naming a label
nothing of the account rests with; every order effect (placed, trade, removed) must carry the
label the model gave that order. Every rejected request raises
`ConstellationError` and leaves the state hash and apex untouched. A rule reverts the last
quantum and replays it (the hash must go back and forth), and at teardown a fresh engine
replays every executed quantum and must reproduce each quantum hash, payload hash and the final
state hash.
"""

from __future__ import annotations

import math

from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from exchange.core.matching import TimeInForce, order_id_of
from exchange.core.orderbook import Side
from quanta.core.engine import Engine, Executed
from quanta.core.keys import KeyPair
from quanta.core.signatures import constellation_id_of
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
from quanta.core.xdr.schema import (
    BatchCancel,
    BatchCancelAll,
    BatchOrder,
    DepositQuantum,
    OrderBatchRequest,
    OrderCancellationRequest,
    OrderPlacedEffect,
    OrderRemovedEffect,
    OrderRequest,
    PaymentRequest,
    QuantumBody,
    RequestQuantum,
    TradeEffect,
    WithdrawalRequest,
)

UNIT = 10_000_000
MIN_BALANCE = UNIT
ASSETS = (QUOTE, "XLM", "BTC")
MARKETS = ("XLM", "BTC")
CLIENTS = tuple(keypair(i) for i in range(1, 6))
AUDITORS = (keypair(200), keypair(201), keypair(202))
PRICES = (1.0, 0.999, 1.001, 0.998, 1.002, 0.997, 1.003)

clients = st.sampled_from(CLIENTS)
assets = st.sampled_from(ASSETS)
# Whole amounts, odd amounts (rounding of quote at non-round prices) and dust.
amounts = st.one_of(
    st.integers(1, 300).map(lambda n: n * UNIT),
    st.integers(1, 300 * UNIT),
    st.integers(1, UNIT - 1),
)
deposit_items = st.tuples(clients, assets, amounts)
# Client order ids: mostly a few small labels (0 is none), so that they collide, or any u64.
labels = st.one_of(st.integers(0, 3), st.integers(0, 2**64 - 1))
CID = constellation_id_of(default_settings(list(AUDITORS)))
"""The id of the constellation these tests run (its genesis settings' hash)."""


class EngineMachine(RuleBasedStateMachine):
    """One engine, the quanta sent to it, and a model of money in and out."""

    def __init__(self) -> None:
        super().__init__()
        self.engine = Engine()
        self.executed: list[Executed] = []
        self.hashes: list[bytes] = []
        self.clock = 1_000_000
        self.cursor = 0
        self.nonces: dict[bytes, int] = {}
        self.registered: set[bytes] = set()
        self.credited = dict.fromkeys(ASSETS, 0)
        self.paid_out = dict.fromkeys(ASSETS, 0)
        # withdrawal id -> (owner's key, asset, amount + fee): what the model thinks is pending.
        self.pending: dict[int, tuple[bytes, str, int]] = {}
        self.order_ids: list[int] = []
        # The model of client order ids: the label of every order sent (order id -> label, 0
        # absent), and per (account key, label) the last order that rested with it.
        self.label_of: dict[int, int] = {}
        self.rested_with: dict[tuple[bytes, int], int] = {}
        self.rejections = 0
        self._execute(settings_quantum(default_settings(list(AUDITORS)), AUDITORS[:2]))
        # Most clients start funded so most requests get past registration; the last one
        # starts unregistered and only a deposit rule can register it.
        self._deposit([(who, a, 1_000 * UNIT) for who in CLIENTS[:-1] for a in ASSETS], [])

    # --- driving the engine -------------------------------------------------------------------

    def _now(self) -> int:
        self.clock += 7
        return self.clock

    def _execute(self, body: QuantumBody) -> Executed:
        executed = self.engine.execute(body, self._now(), verified=False)
        self.executed.append(executed)
        self.hashes.append(self.engine.state.state_hash())
        return executed

    def _attempt(self, body: QuantumBody, expect: bool | None = None) -> Executed | None:
        """Executes `body`; a rejection must change nothing. `expect` True/False asserts the
        outcome the model predicts (None: the model does not predict it)."""
        state = self.engine.state
        before, apex = state.state_hash(), state.apex
        try:
            executed = self._execute(body)
        except ConstellationError as error:
            assert state.state_hash() == before, error
            assert state.apex == apex, error
            assert expect is not True, f"rejected a request the model accepts: {error}"
            self.rejections += 1
            event(f"rejected {type(error).__name__}")
            return None
        assert expect is not False, f"accepted a request the model rejects: {body}"
        return executed

    def _reject(self, body: QuantumBody, status: StatusCode) -> None:
        state = self.engine.state
        before, apex = state.state_hash(), state.apex
        try:
            self.engine.execute(body, self._now(), verified=False)
        except ConstellationError as error:
            assert error.status == status, (error.status, status, error)
        else:
            raise AssertionError(f"the engine accepted an invalid quantum: {body}")
        assert state.state_hash() == before
        assert state.apex == apex
        self.rejections += 1

    def _nonce(self, who: KeyPair) -> int:
        return self.nonces.get(who.public_key, 0) + 1

    def _request(self, who: KeyPair, request: object, expect: bool | None) -> Executed | None:
        executed = self._attempt(request_quantum(request, who, CID), expect)  # type: ignore[arg-type]
        if executed is not None:
            self.nonces[who.public_key] = self._nonce(who)
        return executed

    def _free(self, who: KeyPair, asset: str) -> int:
        account = self.engine.state.accounts.get_by_key(who.public_key)
        balance = None if account is None else account.balance(asset)
        return 0 if balance is None else balance.free

    def _deposit(
        self, items: list[tuple[KeyPair, str, int]], withdrawals: list[tuple[int, bool]]
    ) -> None:
        self.cursor += 1
        self._execute(deposit_quantum(self.cursor, items, withdrawals))
        for who, asset, amount in items:
            key = who.public_key
            if key not in self.registered:
                if asset != QUOTE or amount < MIN_BALANCE:
                    continue
                self.registered.add(key)
            self.credited[asset] += amount
        for wid, ok in withdrawals:
            _, asset, total = self.pending.pop(wid)
            if ok:
                self.paid_out[asset] += total

    # --- rules --------------------------------------------------------------------------------

    @rule(items=st.lists(deposit_items, min_size=1, max_size=3))
    def deposit(self, items: list[tuple[KeyPair, str, int]]) -> None:
        self._deposit(items, [])

    @rule(who=clients, amount=st.integers(MIN_BALANCE, 1_000 * UNIT))
    def register(self, who: KeyPair, amount: int) -> None:
        self._deposit([(who, QUOTE, amount)], [])
        assert self.engine.state.accounts.get_by_key(who.public_key) is not None

    @rule(who=clients, to=clients, asset=assets, amount=amounts)
    def pay(self, who: KeyPair, to: KeyPair, asset: str, amount: int) -> None:
        request = PaymentRequest(1, who.public_key, self._nonce(who), asset, amount, to.public_key)
        # A payment to a fresh key registers it when it carries the minimum balance in the
        # quote asset (the Centaurus rule); any other payment to a fresh key is refused.
        registers = asset == QUOTE and amount >= MIN_BALANCE
        expect = (
            who.public_key in self.registered
            and (to.public_key in self.registered or registers)
            and who is not to
            and amount <= self._free(who, asset)
        )
        if self._request(who, request, expect) is not None:
            self.registered.add(to.public_key)

    @rule(
        who=clients,
        asset=st.sampled_from(MARKETS),
        side=st.sampled_from(Side),
        amount=amounts,
        price=st.sampled_from(PRICES),
        tif=st.sampled_from(TimeInForce),
    )
    def order(
        self, who: KeyPair, asset: str, side: Side, amount: int, price: float, tif: TimeInForce
    ) -> None:
        self._order(who, asset, side, amount, price, tif)

    # Two clients, two labels, orders that mostly rest: labels collide within a few steps.
    @rule(
        who=st.sampled_from(CLIENTS[:2]),
        side=st.sampled_from(Side),
        amount=st.integers(1, 20).map(lambda n: n * UNIT),
        price=st.sampled_from(PRICES),
        tif=st.sampled_from(TimeInForce),
        label=st.integers(1, 2),
    )
    def labelled_order(
        self, who: KeyPair, side: Side, amount: int, price: float, tif: TimeInForce, label: int
    ) -> None:
        self._order(who, "XLM", side, amount, price, tif, label)

    def _order(
        self,
        who: KeyPair,
        asset: str,
        side: Side,
        amount: int,
        price: float,
        tif: TimeInForce,
        label: int = 0,
    ) -> None:
        request = OrderRequest(
            1, who.public_key, self._nonce(who), asset, side, amount, price, tif, label
        )
        if side is Side.SELL:
            needed, free = amount, self._free(who, asset)
        else:
            needed, free = math.ceil(amount * price), self._free(who, QUOTE)
        # The float estimate of the quote may be one unit off the engine's exact integer one.
        expect = None
        if who.public_key not in self.registered or needed > free + 1:
            expect = False
        if self._label_rests(who, label):
            event("order reusing a resting label")
            expect = False
        executed = self._request(who, request, expect)
        if executed is None:
            return
        self._sent_order(who, order_id_of(executed.apex), label)
        self._check_order_type(executed, order_id_of(executed.apex), amount, tif)

    def _label_rests(self, who: KeyPair, label: int) -> bool:
        """Tells whether, by the model, a resting order of `who` holds `label` (non-zero)."""
        order_id = self.rested_with.get((who.public_key, label)) if label else None
        exchange = self.engine.state.require_exchange()
        return order_id is not None and exchange.get_order(order_id) is not None

    def _sent_order(self, who: KeyPair, order_id: int, label: int) -> None:
        """Notes the label of an executed order, and that it rests with it if it does."""
        if label:
            self.label_of[order_id] = label
            if self.engine.state.require_exchange().get_order(order_id) is not None:
                self.rested_with[(who.public_key, label)] = order_id

    def _check_order_type(
        self, executed: Executed, order_id: int, amount: int, tif: TimeInForce
    ) -> None:
        """Asserts the rules of the order type on what one executed order did."""
        resting = self.engine.state.require_exchange().get_order(order_id)
        own = [
            e
            for _, e in executed.emitted
            if isinstance(e, TradeEffect) and e.is_new_order and e.order_id == order_id
        ]
        filled = sum(e.asset_amount for e in own)
        event(f"{tif.name} {'traded' if own else 'did not trade'}")  # --hypothesis-show-statistics
        if tif in (TimeInForce.IMMEDIATE_OR_CANCEL, TimeInForce.FILL_OR_KILL):
            assert resting is None
        if tif is TimeInForce.FILL_OR_KILL:
            assert filled in (0, amount), (filled, amount)
        if tif is TimeInForce.POST_ONLY:
            assert not own, own
        if resting is not None:
            assert resting.amount == amount - filled, (resting, amount, filled)
            self.order_ids.append(order_id)

    @invariant()
    def no_account_trades_with_itself(self) -> None:
        """Self-trade prevention: the two sides of every fill belong to different accounts."""
        if not self.executed:
            return
        trades = [(a, e) for a, e in self.executed[-1].emitted if isinstance(e, TradeEffect)]
        makers = {e.order_id: a for a, e in trades if not e.is_new_order}
        takers = {a for a, e in trades if e.is_new_order}
        assert not takers & set(makers.values()), trades

    @rule(
        who=clients,
        data=st.data(),
        orders=st.lists(
            st.tuples(
                st.sampled_from(MARKETS),
                st.sampled_from(Side),
                amounts,
                st.sampled_from(PRICES),
                st.sampled_from(TimeInForce),
                labels,
            ),
            max_size=4,
        ),
    )
    def batch(self, who: KeyPair, data: st.DataObject, orders: list[tuple[object, ...]]) -> None:
        """Sends orders, cancels of known ids and a cancel-all in one signed batch (all or
        nothing: a refusal must leave the state as it was, which `_attempt` checks)."""
        items: list[BatchOrder | BatchCancel | BatchCancelAll] = [
            BatchOrder(client_id, asset, side, amount, price, tif)  # type: ignore[arg-type]
            for asset, side, amount, price, tif, client_id in orders
        ]
        if self.order_ids and data.draw(st.booleans(), label="with a cancel"):
            items.insert(0, BatchCancel(data.draw(st.sampled_from(self.order_ids))))
        if data.draw(st.booleans(), label="with a cancel by label"):
            items.insert(0, BatchCancel(0, data.draw(st.integers(1, 3), label="cancelled label")))
        if data.draw(st.booleans(), label="with a cancel-all"):
            items.insert(data.draw(st.integers(0, len(items))), BatchCancelAll("XLM"))
        request = OrderBatchRequest(1, who.public_key, self._nonce(who), tuple(items))
        registered = who.public_key in self.registered
        executed = self._request(who, request, None if items and registered else False)
        if executed is None:
            return
        for position, item in enumerate(items):
            if isinstance(item, BatchOrder):
                order_id = order_id_of(executed.apex, position)
                self._sent_order(who, order_id, item.client_order_id)
                resting = self.engine.state.require_exchange().get_order(order_id)
                if resting is not None:
                    self.order_ids.append(order_id)

    @rule(who=st.sampled_from(CLIENTS[:2]), label=st.integers(1, 2))
    def cancel_by_label(self, who: KeyPair, label: int) -> None:
        """Cancels by client order id: accepted exactly when an order of `who` rests with it."""
        request = OrderCancellationRequest(1, who.public_key, self._nonce(who), 0, label)
        expect = who.public_key in self.registered and self._label_rests(who, label)
        held = self.rested_with.get((who.public_key, label))
        event(f"cancel by label {'of a resting order' if expect else 'refused'}")
        executed = self._request(who, request, expect)
        if executed is not None:
            assert held is not None
            assert self.engine.state.require_exchange().get_order(held) is None

    @invariant()
    def order_effects_carry_their_labels(self) -> None:
        """Every effect of an order repeats the label the model gave that order."""
        if not self.executed:
            return
        kinds = (OrderPlacedEffect, OrderRemovedEffect, TradeEffect)
        for _, effect in self.executed[-1].emitted:
            if isinstance(effect, kinds):
                label = self.label_of.get(effect.order_id, 0)
                assert effect.client_order_id == label, (effect, label)

    @rule(
        maker=clients,
        taker=clients,
        asset=st.sampled_from(MARKETS),
        side=st.sampled_from(Side),
        ticks=st.integers(-2, 2),
        through=st.integers(0, 3),
        amounts=st.tuples(amounts, amounts),
        tif=st.sampled_from(TimeInForce),
    )
    def cross(
        self,
        maker: KeyPair,
        taker: KeyPair,
        asset: str,
        side: Side,
        ticks: int,
        through: int,
        amounts: tuple[int, int],
        tif: TimeInForce,
    ) -> None:
        """Rests an order, then sends one of the opposite side priced to cross it (the same
        account on both sides cancels the resting order: self-trade prevention)."""
        price = round(1.0 + ticks / 1_000, 3)
        self._order(maker, asset, side, amounts[0], price, TimeInForce.GOOD_TILL_EXPIRE)
        taker_price = round(price + (through if side is Side.SELL else -through) / 1_000, 3)
        self._order(taker, asset, side.opposite, amounts[1], taker_price, tif)

    @precondition(lambda self: self.order_ids)
    @rule(data=st.data(), who=clients)
    def cancel(self, data: st.DataObject, who: KeyPair) -> None:
        order_id = data.draw(st.sampled_from(self.order_ids))
        order = self.engine.state.require_exchange().get_order(order_id)
        if order is not None and data.draw(st.booleans(), label="cancelled by its owner"):
            owner = self.engine.state.accounts.get_by_id(order.account_id)
            assert owner is not None
            who = next(c for c in CLIENTS if c.public_key == owner.public_key)
        request = OrderCancellationRequest(1, who.public_key, self._nonce(who), order_id)
        account = self.engine.state.accounts.get_by_key(who.public_key)
        owns = order is not None and account is not None and order.account_id == account.id
        executed = self._request(who, request, owns)
        if executed is not None:
            assert self.engine.state.require_exchange().get_order(order_id) is None

    @rule(who=clients, order_id=st.integers(10**9, 2**63))
    def cancel_unknown(self, who: KeyPair, order_id: int) -> None:
        request = OrderCancellationRequest(1, who.public_key, self._nonce(who), order_id)
        self._request(who, request, False)

    @rule(who=clients, asset=assets, amount=amounts, fee=st.integers(0, UNIT))
    def withdraw(self, who: KeyPair, asset: str, amount: int, fee: int) -> None:
        request = WithdrawalRequest(
            1, who.public_key, self._nonce(who), PROVIDER_ID, asset, amount, "EXTERNAL", fee
        )
        key = who.public_key
        has_pending = any(owner == key for owner, _, _ in self.pending.values())
        expect = key in self.registered and not has_pending
        expect = expect and amount + fee <= self._free(who, asset)
        executed = self._attempt(withdrawal_quantum(request, who, CID), expect)
        if executed is None:
            return
        self.nonces[key] = self._nonce(who)
        account = self.engine.state.accounts.get_by_key(key)
        assert account is not None
        assert account.pending_withdrawal == executed.apex
        self.pending[executed.apex] = (key, asset, amount + fee)

    @precondition(lambda self: self.pending)
    @rule(data=st.data(), items=st.lists(deposit_items, max_size=2))
    def settle(self, data: st.DataObject, items: list[tuple[KeyPair, str, int]]) -> None:
        ids = data.draw(st.lists(st.sampled_from(sorted(self.pending)), min_size=1, unique=True))
        outcomes = [(wid, data.draw(st.booleans(), label=f"success of {wid}")) for wid in ids]
        self._deposit(items, outcomes)
        for wid in ids:
            assert wid not in self.engine.state.withdrawals

    @rule(who=clients, to=clients, kind=st.integers(0, 9), data=st.data())
    def invalid(self, who: KeyPair, to: KeyPair, kind: int, data: st.DataObject) -> None:
        """Sends a quantum that is invalid by construction; it must be refused."""
        key, nonce = who.public_key, self._nonce(who)
        registered = key in self.registered
        unregistered = StatusCode.UNAUTHORIZED
        bad = StatusCode.BAD_REQUEST if registered else unregistered
        if kind == 0:  # signed by someone else
            other = CLIENTS[(CLIENTS.index(who) + 1) % len(CLIENTS)]
            request = PaymentRequest(1, key, nonce, QUOTE, 1, to.public_key)
            self._reject(request_quantum(request, other, CID), StatusCode.UNAUTHORIZED)
        elif kind == 1:  # stale nonce
            stale = self.nonces.get(key, 0)
            request = PaymentRequest(1, key, stale, QUOTE, 1, to.public_key)
            self._reject(request_quantum(request, who, CID), bad)
        elif kind == 2:  # unknown asset
            request = PaymentRequest(1, key, nonce, "DOGE", UNIT, to.public_key)
            self._reject(request_quantum(request, who, CID), bad)
        elif kind == 3:  # zero amount
            request = PaymentRequest(1, key, nonce, QUOTE, 0, to.public_key)
            self._reject(request_quantum(request, who, CID), bad)
        elif kind == 4:  # more than the free balance
            amount = self._free(who, QUOTE) + 1
            request = PaymentRequest(1, key, nonce, QUOTE, amount, to.public_key)
            self._reject(request_quantum(request, who, CID), bad)
        elif kind == 5:  # a price that is no price
            price = data.draw(st.sampled_from([math.nan, math.inf, -1.0, 0.0, 1e-9]))
            order = OrderRequest(
                1, key, nonce, "XLM", Side.BUY, UNIT, price, TimeInForce.GOOD_TILL_EXPIRE
            )
            self._reject(request_quantum(order, who, CID), bad)
        elif kind == 6:  # a market that does not exist
            order = OrderRequest(
                1, key, nonce, QUOTE, Side.SELL, UNIT, 1.0, TimeInForce.GOOD_TILL_EXPIRE
            )
            self._reject(request_quantum(order, who, CID), bad)
        elif kind == 7:  # a withdrawal outside a withdrawal quantum
            misplaced = WithdrawalRequest(1, key, nonce, PROVIDER_ID, QUOTE, 1, "EXTERNAL", 0)
            envelope = request_quantum(misplaced, who, CID).request
            self._reject(RequestQuantum(envelope), StatusCode.BAD_REQUEST)
        elif kind == 8:  # a deposit from an unknown provider, or settling nothing pending
            self._reject(DepositQuantum("nope", "1", (), ()), StatusCode.BAD_REQUEST)
            unknown = deposit_quantum(self.cursor + 1, withdrawals=[(10**12, True)])
            self._reject(unknown, StatusCode.BAD_REQUEST)
        else:  # settings signed by one auditor of three
            update = default_settings(list(AUDITORS), version=2)
            self._reject(
                settings_quantum(update, AUDITORS[:1], constellation_id=CID),
                StatusCode.UNAUTHORIZED,
            )

    @rule()
    def revert_and_replay_last(self) -> None:
        last = self.executed[-1]
        if len(self.executed) > 1:
            self.engine.revert_last(last)
            self.engine.state.check_invariants()
            assert self.engine.state.state_hash() == self.hashes[-2]
            again = self.engine.replay(last.quantum)
            assert again.quantum_hash == last.quantum_hash
            assert again.payload_hash == last.payload_hash
        assert self.engine.state.state_hash() == self.hashes[-1]

    # --- invariants ---------------------------------------------------------------------------

    @invariant()
    def money_is_conserved(self) -> None:
        totals = dict.fromkeys(ASSETS, 0)
        for account in self.engine.state.accounts:
            for asset, balance in account.balances.items():
                totals[asset] += balance.amount
        expected = {a: self.credited[a] - self.paid_out[a] for a in ASSETS}
        assert totals == expected, (totals, expected)

    @invariant()
    def state_invariants_hold(self) -> None:
        state = self.engine.state
        state.check_invariants()
        assert sorted(state.withdrawals) == sorted(self.pending)
        registered = {account.public_key for account in state.accounts}
        assert registered == self.registered

    @invariant()
    def no_market_is_crossed(self) -> None:
        for market in self.engine.state.require_exchange().markets():
            bid, ask = market.bids.best_price(), market.asks.best_price()
            assert bid is None or ask is None or bid < ask, (market.asset, bid, ask)

    def teardown(self) -> None:
        replica = Engine()
        for executed in self.executed:
            again = replica.replay(executed.quantum, verified=False)
            assert again.quantum_hash == executed.quantum_hash
            assert again.payload_hash == executed.payload_hash
        assert replica.state.state_hash() == self.engine.state.state_hash()


EngineMachine.TestCase.settings = settings(
    max_examples=60,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestEngineProperties = EngineMachine.TestCase
