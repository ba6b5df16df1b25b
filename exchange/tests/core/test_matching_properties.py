"""Stateful property test of matching: random orders and cancels against one exchange.

Goal: show that, whatever the sequence, the book is never crossed, every asset unit of an
incoming order is accounted for (filled, rested or dropped), the liabilities reported by the
events always equal the locks held by resting orders, and reverting any step restores the
exact state digest while replaying it reproduces the same events (determinism).
Method: a Hypothesis `RuleBasedStateMachine` keeping a model of book totals and liabilities
fed only from the events, checked against the books after every step.
"""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from exchange.core.amounts import quote_amount
from exchange.core.market import Exchange
from exchange.core.matching import OrderIntent, TimeInForce, plan_match
from exchange.core.orderbook import Side
from exchange.tests.core.reference_matching import (
    MatchResult,
    cancel,
    match,
    revert_cancel,
    revert_match,
)
from exchange.tests.core.strategies import book_amounts, book_prices, sides, times_in_force

QUOTE = "USD"
ASSET = "XLM"


class MatchingMachine(RuleBasedStateMachine):
    """Drives one market with random orders and cancels, modelling totals from events."""

    def __init__(self) -> None:
        super().__init__()
        self.exchange = Exchange(QUOTE)
        self.market = self.exchange.add_market(ASSET)
        self.apex = 0
        self.model_totals = {Side.SELL: 0, Side.BUY: 0}
        self.model_liabilities: dict[tuple[int, str], int] = {}

    @rule(
        side=sides(),
        price=book_prices(),
        amount=book_amounts(),
        account_id=st.integers(1, 4),
        tif=times_in_force(),
    )
    def place(self, side: Side, price: int, amount: int, account_id: int, tif: TimeInForce) -> None:
        self.apex += 1
        taker = OrderIntent(self.apex, account_id, side, price, amount, tif)
        before = self.exchange.state_digest_items()
        fills, plan_remaining = plan_match(self.market, taker)
        assert self.exchange.state_digest_items() == before, "planning changed the book"
        result = match(self.market, taker)
        planned = [(f.maker.order_id, f.amount, f.quote) for f in fills]
        matched = [(t.maker_order_id, t.asset_amount, t.quote_amount) for t in result.trades]
        assert planned == matched, "plan_match and match disagree"
        assert plan_remaining == taker.amount - result.filled
        after = self.exchange.state_digest_items()
        self._check_result(taker, result)
        self._check_revert_and_replay(taker, result, before, after)
        self._update_model(taker, result)

    @precondition(lambda self: len(self.exchange.orders) > 0)
    @rule(data=st.data())
    def cancel_one(self, data: st.DataObject) -> None:
        order_id = data.draw(st.sampled_from(sorted(self.exchange.orders)))
        before = self.exchange.state_digest_items()
        order = cancel(self.market, order_id)
        after = self.exchange.state_digest_items()
        revert_cancel(self.market, order)
        assert self.exchange.state_digest_items() == before
        assert cancel(self.market, order_id) is order
        assert self.exchange.state_digest_items() == after
        self.model_totals[order.side] -= order.amount
        self._add_liability(order.account_id, order.side, -order.liability)

    def _check_result(self, taker: OrderIntent, result: MatchResult) -> None:
        """Checks that the events account for the whole order and use the rounding rule."""
        rested = 0 if result.placed is None else result.placed.amount
        assert result.filled + rested + result.dropped == taker.amount
        assert result.filled == sum(trade.asset_amount for trade in result.trades)
        assert result.quote_total == sum(trade.quote_amount for trade in result.trades)
        for trade in result.trades:
            assert trade.quote_amount == quote_amount(
                trade.asset_amount, trade.price, round_up=False
            )
            if taker.side is Side.BUY:
                assert trade.price <= taker.price
            else:
                assert trade.price >= taker.price
        if taker.side is Side.BUY:
            lock = quote_amount(taker.amount, taker.price, round_up=True)
            rest_lock = 0 if result.placed is None else result.placed.liability
            assert result.quote_total + rest_lock <= lock

    def _check_revert_and_replay(
        self, taker: OrderIntent, result: MatchResult, before: object, after: object
    ) -> None:
        """Reverts the match, compares with the digest before, replays and compares again."""
        revert_match(self.market, result)
        self.exchange.check_invariants()
        assert self.exchange.state_digest_items() == before
        replayed = match(self.market, taker)
        assert replayed == result
        assert self.exchange.state_digest_items() == after

    def _update_model(self, taker: OrderIntent, result: MatchResult) -> None:
        """Feeds the model of book totals and liabilities from the events only."""
        maker_side = taker.side.opposite
        self.model_totals[maker_side] -= result.filled
        for trade in result.trades:
            self._add_liability(trade.maker_account_id, maker_side, -trade.maker_liability_released)
        if result.placed is not None:
            self.model_totals[taker.side] += result.placed.amount
            self._add_liability(taker.account_id, taker.side, result.placed.liability)

    def _add_liability(self, account_id: int, side: Side, delta: int) -> None:
        asset = ASSET if side is Side.SELL else QUOTE
        key = (account_id, asset)
        total = self.model_liabilities.get(key, 0) + delta
        assert total >= 0
        if total:
            self.model_liabilities[key] = total
        else:
            self.model_liabilities.pop(key, None)

    @invariant()
    def book_is_consistent_and_never_crossed(self) -> None:
        self.exchange.check_invariants()
        assert not self.market.is_crossed()

    @invariant()
    def totals_and_liabilities_match_the_events(self) -> None:
        assert self.market.asks.total_amount == self.model_totals[Side.SELL]
        assert self.market.bids.total_amount == self.model_totals[Side.BUY]
        actual = {k: v for k, v in self.exchange.liabilities_by_account().items() if v}
        assert actual == dict(sorted(self.model_liabilities.items()))


MatchingMachine.TestCase.settings = settings(
    max_examples=150, stateful_step_count=40, deadline=None
)
TestMatchingMachine = MatchingMachine.TestCase
