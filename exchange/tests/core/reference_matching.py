"""The reference matcher: a mutating twin of `plan_match`, kept as a test oracle.

`match` crosses an incoming order with the opposite book in place (fills and removes makers,
rests a GTC remainder) and returns the events describing every change; `revert_match` (or
`revert_trade` / `revert_placed` per event, newest first) applies the exact inverse book
operations: a fully filled maker is put back at its original FIFO position (levels are kept in
order id order, and ids increase with the apex), a partially filled one gets its amount back,
and a rested remainder is removed. `cancel` / `revert_cancel` do the same for one order.

The engine does not use it: it plans with `exchange.core.matching.plan_match` and lets the
effects change the books. It lives here because its events are easy to check against the
rules, and the stateful property test holds `plan_match` equal to it.
"""

from __future__ import annotations

from dataclasses import dataclass

from exchange.core.amounts import PRICE_SCALE
from exchange.core.market import Market
from exchange.core.matching import OrderIntent, TimeInForce
from exchange.core.orderbook import Order, OrderBook, Side, UnknownOrder


@dataclass(frozen=True, slots=True)
class TradeEvent:
    """Reports one fill between the incoming (taker) order and one resting (maker) order.

    `quote_amount` is floor(asset_amount·price), moved from the buyer to the seller.
    `maker_remaining` is the maker's amount after the fill (0: it left the book) and
    `maker_liability_released` what the maker's account must unlock for it.
    """

    taker_order_id: int
    maker_order_id: int
    maker_account_id: int
    taker_account_id: int
    side_of_taker: Side
    price: int
    asset_amount: int
    quote_amount: int
    maker_remaining: int
    maker_liability_released: int


@dataclass(frozen=True, slots=True)
class PlacedEvent:
    """Reports the unfilled rest of a GTC order resting on the book with its liability."""

    order_id: int
    account_id: int
    side: Side
    price: int
    amount: int
    liability: int


@dataclass(frozen=True, slots=True)
class MatchResult:
    """Collects the outcome of one `match`: trades in execution order, then the placement.

    `filled` is the asset amount traded, `quote_total` the quote moved, and `dropped` the
    rest of an IOC order that neither traded nor rested.
    """

    trades: list[TradeEvent]
    placed: PlacedEvent | None
    filled: int
    quote_total: int
    dropped: int


def match(market: Market, taker: OrderIntent) -> MatchResult:
    """Matches `taker` against the opposite book, rests a GTC remainder, and returns events.

    Mutates the market's books; balances are left to the caller, who applies the events.
    """
    assert taker.amount > 0, taker
    assert taker.price > 0, taker
    assert taker.price % market.tick == 0, taker
    book = market.asks if taker.side == Side.BUY else market.bids
    trades: list[TradeEvent] = []
    remaining, quote_total = _take(book, taker, trades)
    placed: PlacedEvent | None = None
    dropped = 0
    if remaining and taker.time_in_force == TimeInForce.GOOD_TILL_EXPIRE:
        placed = _rest(market, taker, remaining)
    else:
        dropped = remaining
    return MatchResult(trades, placed, taker.amount - remaining, quote_total, dropped)


def _take(book: OrderBook, taker: OrderIntent, trades: list[TradeEvent]) -> tuple[int, int]:
    """Fills `taker` against `book` while it crosses; returns (remaining, quote moved)."""
    remaining = taker.amount
    quote_total = 0
    limit = taker.price
    buying = taker.side == Side.BUY
    while remaining:
        maker = book.best()
        if maker is None:
            break
        price = maker.price
        if (price > limit) if buying else (price < limit):
            break
        fill = maker.amount if maker.amount < remaining else remaining
        released = book.fill_best(fill)
        # quote_amount(fill, price, round_up=False): floor, paid by the buyer.
        quote = fill * price // PRICE_SCALE
        quote_total += quote
        remaining -= fill
        trades.append(
            TradeEvent(
                taker.order_id,
                maker.order_id,
                maker.account_id,
                taker.account_id,
                taker.side,
                price,
                fill,
                quote,
                maker.amount,
                released,
            )
        )
    return remaining, quote_total


def _rest(market: Market, taker: OrderIntent, remaining: int) -> PlacedEvent:
    """Rests the unfilled `remaining` of `taker` under its own id and reports it."""
    order = Order(
        taker.order_id, taker.account_id, taker.side, market.asset, taker.price, remaining
    )
    market.book(taker.side).add(order)
    return PlacedEvent(
        order.order_id, order.account_id, order.side, order.price, order.amount, order.liability
    )


def cancel(market: Market, order_id: int) -> Order:
    """Removes and returns the resting order with this id; raises `UnknownOrder`.

    The returned order keeps its amount and liability, so `revert_cancel` can put it back.
    """
    order = market.bids.get(order_id) or market.asks.get(order_id)
    if order is None:
        raise UnknownOrder(order_id)
    return market.book(order.side).remove(order_id)


def revert_cancel(market: Market, order: Order) -> None:
    """Puts a cancelled order back at its original position (inverse of `cancel`)."""
    market.book(order.side).add(order)


def revert_trade(market: Market, trade: TradeEvent) -> None:
    """Undoes one fill on the maker's book (inverse of one step of `match`)."""
    maker_side = trade.side_of_taker.opposite
    book = market.book(maker_side)
    if trade.maker_remaining == 0:
        # The maker left the book with exactly this fill, so it is rebuilt with that amount;
        # its liability is a function of amount and price, hence identical to the original.
        maker = Order(
            trade.maker_order_id,
            trade.maker_account_id,
            maker_side,
            market.asset,
            trade.price,
            trade.asset_amount,
        )
        book.add(maker)
    else:
        book.change_amount(trade.maker_order_id, trade.asset_amount)


def revert_placed(market: Market, placed: PlacedEvent) -> None:
    """Removes a rested remainder (inverse of the placement at the end of `match`)."""
    market.book(placed.side).remove(placed.order_id)


def revert_match(market: Market, result: MatchResult) -> None:
    """Undoes everything `match` did to the books, newest event first."""
    if result.placed is not None:
        revert_placed(market, result.placed)
    for trade in reversed(result.trades):
        revert_trade(market, trade)
