"""Tests of the reference matcher (`reference_matching`): crossing rules, events, and their
exact reversal.

Goal: show that `match` fills at the maker's price, in price-then-time priority, reports
every change as an event, rests only GTC remainders, and that `revert_match` / `revert_cancel`
restore the books exactly. Method: a small fixed market per test, asserting on events,
L2 depth and `check_invariants()` after every step.
"""

from __future__ import annotations

import pytest

from exchange.core.amounts import quote_amount
from exchange.core.market import Exchange, Market
from exchange.core.matching import (
    OrderIntent,
    TimeInForce,
    apex_of_order,
    order_id_of,
    plan_match,
    would_cross,
)
from exchange.core.orderbook import Order, Side, UnknownOrder
from exchange.tests.core.reference_matching import (
    MatchResult,
    TradeEvent,
    cancel,
    match,
    revert_cancel,
    revert_match,
)

P = 10_000  # one tick (0.001) in price units
U = 10_000_000  # one whole asset unit
GTC = TimeInForce.GOOD_TILL_EXPIRE
IOC = TimeInForce.IMMEDIATE_OR_CANCEL


def place(
    market: Market,
    order_id: int,
    side: Side,
    ticks: int,
    amount: int,
    account_id: int = 1,
    tif: TimeInForce = GTC,
) -> MatchResult:
    """Matches an order and checks the market's invariants afterwards."""
    result = match(market, OrderIntent(order_id, account_id, side, ticks * P, amount, tif))
    market.check_invariants()
    return result


@pytest.fixture
def market() -> Market:
    """Gives a market with asks 1.010 [1: 5 U, 2: 3 U], 1.020 [3: 10 U] and bid 1.000 [4: 4 U]."""
    exchange = Exchange("USD")
    market = exchange.add_market("XLM")
    place(market, 1, Side.SELL, 1010, 5 * U, account_id=10)
    place(market, 2, Side.SELL, 1010, 3 * U, account_id=11)
    place(market, 3, Side.SELL, 1020, 10 * U, account_id=12)
    place(market, 4, Side.BUY, 1000, 4 * U, account_id=13)
    exchange.check_invariants()
    return market


def test_non_crossing_order_rests_with_taker_id(market: Market) -> None:
    result = place(market, 5, Side.BUY, 1005, 2 * U, account_id=20)
    assert result.trades == []
    assert result.placed is not None
    assert (result.placed.order_id, result.placed.amount) == (5, 2 * U)
    assert result.placed.liability == quote_amount(2 * U, 1005 * P, round_up=True)
    assert market.bids.depth(2) == [(1005 * P, 2 * U), (1000 * P, 4 * U)]


def test_full_fill_of_one_maker(market: Market) -> None:
    result = place(market, 5, Side.BUY, 1010, 5 * U, account_id=20)
    assert result.trades == [
        TradeEvent(5, 1, 10, 20, Side.BUY, 1010 * P, 5 * U, 5_050_000_0, 0, 5 * U)
    ]
    assert result.placed is None
    assert (result.filled, result.quote_total, result.dropped) == (5 * U, 50_500_000, 0)
    assert market.asks.depth(10) == [(1010 * P, 3 * U), (1020 * P, 10 * U)]


def test_partial_fill_of_maker_leaves_it_first(market: Market) -> None:
    result = place(market, 5, Side.BUY, 1010, 2 * U, account_id=20)
    assert [(t.maker_order_id, t.asset_amount, t.maker_remaining) for t in result.trades] == [
        (1, 2 * U, 3 * U)
    ]
    assert [o.order_id for o in market.asks][:2] == [1, 2]


def test_sweeps_levels_in_price_then_time_order_and_rests_remainder(market: Market) -> None:
    result = place(market, 5, Side.BUY, 1020, 20 * U, account_id=20)
    assert [(t.maker_order_id, t.price, t.asset_amount) for t in result.trades] == [
        (1, 1010 * P, 5 * U),
        (2, 1010 * P, 3 * U),
        (3, 1020 * P, 10 * U),
    ]
    assert result.placed is not None
    assert (result.placed.price, result.placed.amount) == (1020 * P, 2 * U)
    assert market.asks.depth(10) == []
    assert market.bids.depth(1) == [(1020 * P, 2 * U)]


def test_fills_at_maker_price_when_taker_offers_better(market: Market) -> None:
    result = place(market, 5, Side.SELL, 900, 1 * U, account_id=20)
    assert len(result.trades) == 1
    trade = result.trades[0]
    assert (trade.price, trade.asset_amount) == (1000 * P, 1 * U)
    assert trade.quote_amount == quote_amount(1 * U, 1000 * P, round_up=False)
    # The maker is a bid: its lock falls from ceil(4 U·1.0) to ceil(3 U·1.0).
    assert trade.maker_liability_released == 1 * U


def test_buy_quote_is_floored_per_trade_and_covered_by_lock(market: Market) -> None:
    result = place(market, 5, Side.BUY, 1010, 3, account_id=20)  # 3 units at 1.010
    assert result.trades[0].quote_amount == 3  # floor(3.03)
    assert result.quote_total <= quote_amount(3, 1010 * P, round_up=True)


def test_ioc_rests_nothing(market: Market) -> None:
    result = place(market, 5, Side.BUY, 1010, 10 * U, account_id=20, tif=IOC)
    assert result.filled == 8 * U
    assert result.dropped == 2 * U
    assert result.placed is None
    assert market.bids.get(5) is None
    assert market.asks.depth(10) == [(1020 * P, 10 * U)]


def test_ioc_without_cross_does_nothing(market: Market) -> None:
    before = market.asks.state_digest_items(), market.bids.state_digest_items()
    result = place(market, 5, Side.SELL, 1001, 1 * U, tif=IOC)
    assert (result.trades, result.placed, result.dropped) == ([], None, 1 * U)
    assert (market.asks.state_digest_items(), market.bids.state_digest_items()) == before


def test_plan_lists_own_resting_orders_instead_of_filling_them(market: Market) -> None:
    """Self-trade prevention: with `own_crossed`, account 10's own ask at 1.010 is listed, not
    filled, and the plan goes on to account 11's ask behind it."""
    own: list[Order] = []
    fills, remaining = plan_match(market, OrderIntent(5, 10, Side.BUY, 1010 * P, 4 * U), own)
    assert [order.order_id for order in own] == [1]
    assert [(fill.maker.order_id, fill.amount) for fill in fills] == [(2, 3 * U)]
    assert remaining == 1 * U


def test_plan_without_own_crossed_is_owner_blind(market: Market) -> None:
    """The reference rule (and Centaurus'): without `own_crossed` an account fills its own."""
    fills, _ = plan_match(market, OrderIntent(5, 10, Side.BUY, 1010 * P, 1 * U))
    assert fills[0].maker.account_id == 10


@pytest.mark.parametrize(
    ("side", "ticks", "crosses"),
    [
        (Side.BUY, 1010, True),
        (Side.BUY, 1009, False),
        (Side.SELL, 1000, True),
        (Side.SELL, 1001, False),
    ],
)
def test_would_cross_tells_whether_an_order_reaches_the_best_opposite(
    market: Market, side: Side, ticks: int, crosses: bool
) -> None:
    assert would_cross(market, side, ticks * P) is crosses


def test_order_ids_keep_arrival_order_and_name_their_apex() -> None:
    ids = [order_id_of(7), order_id_of(7, 1), order_id_of(7, 15), order_id_of(8)]
    assert ids == sorted(ids) == [7000, 7001, 7015, 8000]
    assert {apex_of_order(order_id) for order_id in ids[:3]} == {7}


@pytest.mark.parametrize(
    ("side", "ticks", "amount", "tif"),
    [
        (Side.BUY, 1020, 20 * U, GTC),
        (Side.BUY, 1010, 6 * U, GTC),
        (Side.BUY, 1010, 7, IOC),
        (Side.SELL, 990, 4 * U, GTC),
        (Side.SELL, 1000, 1, GTC),
        (Side.BUY, 900, 1 * U, GTC),
    ],
)
def test_revert_match_restores_books_exactly(
    market: Market, side: Side, ticks: int, amount: int, tif: TimeInForce
) -> None:
    before = market.state_digest_items()
    result = place(market, 5, side, ticks, amount, account_id=20, tif=tif)
    revert_match(market, result)
    market.check_invariants()
    assert market.state_digest_items() == before


def test_cancel_and_revert_cancel(market: Market) -> None:
    before = market.state_digest_items()
    order = cancel(market, 2)
    market.check_invariants()
    assert (order.order_id, order.amount, order.account_id) == (2, 3 * U, 11)
    assert market.asks.depth(1) == [(1010 * P, 5 * U)]
    revert_cancel(market, order)
    market.check_invariants()
    assert market.state_digest_items() == before


def test_cancel_unknown_order_raises(market: Market) -> None:
    with pytest.raises(UnknownOrder):
        cancel(market, 99)


def test_exchange_sums_liabilities(market: Market) -> None:
    exchange = Exchange("USD")
    xlm = exchange.add_market("XLM")
    btc = exchange.add_market("BTC")
    place(xlm, 1, Side.SELL, 1010, 5 * U, account_id=10)
    place(btc, 2, Side.BUY, 1000, 3, account_id=10)
    exchange.check_invariants()
    assert [m.asset for m in exchange.markets()] == ["BTC", "XLM"]
    assert exchange.liabilities_by_account() == {(10, "USD"): 3, (10, "XLM"): 5 * U}
