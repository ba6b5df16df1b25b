"""Contract tests of `exchange.core.orderbook.OrderBook` in the exchange-core style.

Goal: pin the book's observable behaviour (priority, FIFO, L2 depth, exact inverses) so any
faster implementation can be swapped in. Method: a fixed, commented initial market in a
fixture; after each step the L2 depth of both sides is compared with the expected one and
`check_invariants()` runs; teardown drains the books and asserts they are empty.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from exchange.core.market import Market
from exchange.core.orderbook import Order, OrderBook, Side, UnknownOrder, order_liability

ASSET = "XLM"
QUOTE = "USD"
P = 10_000  # one tick (0.001) in price units
U = 10_000_000  # one whole asset unit


def ask(order_id: int, price_ticks: int, amount: int, account_id: int = 1) -> Order:
    """Builds an ask of `amount` at `price_ticks` ticks."""
    return Order(order_id, account_id, Side.SELL, ASSET, price_ticks * P, amount)


def bid(order_id: int, price_ticks: int, amount: int, account_id: int = 2) -> Order:
    """Builds a bid of `amount` at `price_ticks` ticks."""
    return Order(order_id, account_id, Side.BUY, ASSET, price_ticks * P, amount)


@pytest.fixture
def market() -> Iterator[Market]:
    """Gives a market with this initial book, then drains it and checks it is empty.

    asks: 1.010 [id 1: 5 U, id 2: 3 U], 1.020 [id 3: 10 U], 1.050 [id 4: 1 U]
    bids: 1.000 [id 5: 4 U, id 6: 6 U], 0.990 [id 7: 2 U], 0.950 [id 8: 7 U]
    """
    market = Market(ASSET, QUOTE)
    for order in (ask(1, 1010, 5 * U), ask(2, 1010, 3 * U), ask(3, 1020, 10 * U)):
        market.asks.add(order)
    market.asks.add(ask(4, 1050, 1 * U))
    for order in (bid(5, 1000, 4 * U), bid(6, 1000, 6 * U), bid(7, 990, 2 * U)):
        market.bids.add(order)
    market.bids.add(bid(8, 950, 7 * U))
    market.check_invariants()
    assert market.asks.depth(10) == INITIAL_ASKS
    assert market.bids.depth(10) == INITIAL_BIDS
    yield market
    market.check_invariants()
    for book in (market.bids, market.asks):
        for order_id in [order.order_id for order in book]:
            book.remove(order_id)
        book.check_invariants()
        assert len(book) == 0
        assert book.total_amount == 0
        assert book.best() is None
        assert book.depth(10) == []
    assert market.bids._index == {}


INITIAL_ASKS = [(1010 * P, 8 * U), (1020 * P, 10 * U), (1050 * P, 1 * U)]
INITIAL_BIDS = [(1000 * P, 10 * U), (990 * P, 2 * U), (950 * P, 7 * U)]


def test_initial_book_orders_best_price_first_then_fifo(market: Market) -> None:
    assert [o.order_id for o in market.asks] == [1, 2, 3, 4]
    assert [o.order_id for o in market.bids] == [5, 6, 7, 8]
    assert market.asks.best_price() == 1010 * P
    assert market.bids.best_price() == 1000 * P
    assert len(market.asks) == 4
    assert market.asks.total_amount == 19 * U
    assert not market.is_crossed()


def test_depth_is_limited_to_levels_max(market: Market) -> None:
    assert market.asks.depth(1) == INITIAL_ASKS[:1]
    assert market.bids.depth(2) == INITIAL_BIDS[:2]
    assert market.bids.depth(0) == []


def test_add_appends_to_existing_level_in_fifo_order(market: Market) -> None:
    market.asks.add(ask(9, 1010, 2 * U))
    market.check_invariants()
    assert market.asks.depth(10) == [(1010 * P, 10 * U), *INITIAL_ASKS[1:]]
    assert [o.order_id for o in market.asks][:3] == [1, 2, 9]


def test_add_better_price_becomes_best(market: Market) -> None:
    market.bids.add(bid(9, 1005, 1 * U))
    market.asks.add(ask(10, 1006, 1 * U))
    market.check_invariants()
    assert market.bids.best() is market.bids.get(9)
    assert market.asks.best() is market.asks.get(10)
    assert market.bids.depth(2) == [(1005 * P, 1 * U), (1000 * P, 10 * U)]


def test_remove_by_id_from_middle_of_level(market: Market) -> None:
    removed = market.bids.remove(5)
    market.check_invariants()
    assert removed.order_id == 5
    assert removed.amount == 4 * U
    assert market.bids.depth(10) == [(1000 * P, 6 * U), *INITIAL_BIDS[1:]]
    assert market.bids.get(5) is None


def test_remove_last_order_of_best_level_moves_best(market: Market) -> None:
    market.asks.remove(1)
    market.asks.remove(2)
    market.check_invariants()
    assert market.asks.depth(10) == INITIAL_ASKS[1:]
    best = market.asks.best()
    assert best is not None
    assert best.order_id == 3


def test_remove_unknown_or_other_side_raises(market: Market) -> None:
    with pytest.raises(UnknownOrder):
        market.asks.remove(99)
    with pytest.raises(UnknownOrder):
        market.asks.remove(5)  # a bid, not in the ask book
    market.check_invariants()
    assert market.asks.depth(10) == INITIAL_ASKS


@pytest.mark.parametrize("order_id", [1, 2, 3, 4, 5, 6, 7, 8])
def test_reinsert_restores_original_position(market: Market, order_id: int) -> None:
    """A removed order put back (a reverted cancel or fill) regains its FIFO place by id."""
    book = market.asks if order_id <= 4 else market.bids
    before = book.state_digest_items()
    order = book.remove(order_id)
    book.check_invariants()
    book.add(order)
    book.check_invariants()
    assert book.state_digest_items() == before


def test_reinsert_into_middle_of_level_keeps_id_order(market: Market) -> None:
    market.asks.add(ask(9, 1010, 1 * U))
    market.asks.add(ask(10, 1010, 1 * U))
    order = market.asks.remove(9)
    market.asks.add(order)
    market.check_invariants()
    assert [o.order_id for o in market.asks][:4] == [1, 2, 9, 10]


def test_fill_best_partial_then_full(market: Market) -> None:
    released = market.asks.fill_best(2 * U)
    market.check_invariants()
    assert released == 2 * U
    assert market.asks.depth(1) == [(1010 * P, 6 * U)]
    best = market.asks.best()
    assert best is not None
    assert (best.order_id, best.amount) == (1, 3 * U)
    released = market.asks.fill_best(3 * U)
    market.check_invariants()
    assert released == 3 * U
    assert best.amount == 0
    assert market.asks.get(1) is None
    assert market.asks.depth(10) == [(1010 * P, 3 * U), *INITIAL_ASKS[1:]]


def test_fill_best_on_bid_releases_ceiled_quote_difference(market: Market) -> None:
    market.bids.add(bid(9, 1001, 3))  # 3 units at 1.001: lock ceil(3.003) = 4
    order = market.bids.get(9)
    assert order is not None
    assert order.liability == 4
    released = market.bids.fill_best(1)  # remaining 2 -> lock ceil(2.002) = 3
    assert released == 1
    assert order.liability == 3
    assert market.bids.fill_best(2) == 3
    market.check_invariants()
    assert market.bids.depth(10) == INITIAL_BIDS


def test_change_amount_is_its_own_inverse(market: Market) -> None:
    before = market.bids.state_digest_items()
    delta_liability = market.bids.change_amount(7, -1 * U)
    market.check_invariants()
    assert delta_liability == -order_liability(Side.BUY, 1 * U, 990 * P)
    assert market.bids.depth(10) == [INITIAL_BIDS[0], (990 * P, 1 * U), INITIAL_BIDS[2]]
    market.bids.change_amount(7, 1 * U)
    market.check_invariants()
    assert market.bids.state_digest_items() == before


def test_get_only_finds_orders_of_this_book(market: Market) -> None:
    assert market.asks.get(1) is not None
    assert market.asks.get(5) is None
    assert market.bids.get(5) is not None


def test_state_digest_items_are_in_priority_order(market: Market) -> None:
    assert market.asks.state_digest_items() == [
        (1, 1, 1010 * P, 5 * U),
        (2, 1, 1010 * P, 3 * U),
        (3, 1, 1020 * P, 10 * U),
        (4, 1, 1050 * P, 1 * U),
    ]
    assert [item[0] for item in market.bids.state_digest_items()] == [5, 6, 7, 8]


def test_digest_does_not_depend_on_insertion_order() -> None:
    """Loading the same orders in another order (e.g. from a snapshot) gives the same book."""
    orders = [(1, 1010, 5), (2, 1010, 3), (3, 1020, 10), (4, 1050, 1), (9, 1010, 2)]
    first = OrderBook(ASSET, Side.SELL)
    second = OrderBook(ASSET, Side.SELL)
    for order_id, ticks, amount in orders:
        first.add(ask(order_id, ticks, amount))
    for order_id, ticks, amount in reversed(orders):
        second.add(ask(order_id, ticks, amount))
    first.check_invariants()
    second.check_invariants()
    assert first.state_digest_items() == second.state_digest_items()
    assert first.depth(10) == second.depth(10)


def test_the_exchange_indexes_resting_orders_by_account() -> None:
    # Reading one account's orders (AccountDataRequest) walked every order of the exchange;
    # the books keep an index by account as they add, fill and remove orders.
    from exchange.core.market import Exchange

    exchange = Exchange("USD")
    books = exchange.add_market(ASSET)
    for order in (ask(1, 10, 5, account_id=7), ask(2, 11, 5, account_id=8), bid(3, 9, 4, 7)):
        books.book(order.side).add(order)
    assert {a: sorted(o) for a, o in exchange.orders_by_account.items()} == {7: [1, 3], 8: [2]}
    books.asks.fill_best(5)  # order 1 exhausted
    books.bids.remove(3)
    assert {a: sorted(o) for a, o in exchange.orders_by_account.items()} == {8: [2]}
    exchange.check_invariants()
