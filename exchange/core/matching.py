"""Order matching: plans how an incoming order crosses a market's books, without changing them.

`plan_match` returns the fills an order would make against the opposite book and the rest it
would leave; it reads the books and never touches balances, accounts or quanta. The engine
(`quanta.core.processors.order`) turns the plan into Trade / OrderPlaced effects, and the
effects change the books, so every book change of a quantum is one of its effects and can be
reverted exactly with it.

Rules: an incoming order crosses while bid >= ask; it fills at the resting (maker) order's
price, better price first and earlier order first within a price; fills may be partial. Every
trade moves floor(fill·maker price) of the quote asset (see `amounts.quote_amount`).
Self-trades are allowed, as in Centaurus: an account crossing its own order trades with itself,
which moves nothing net but keeps matching independent of who owns the resting orders.

The tests hold `plan_match` equal to a mutating reference matcher
(`exchange/tests/core/reference_matching.py`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from exchange.core.amounts import PRICE_SCALE
from exchange.core.market import Market
from exchange.core.orderbook import Order, Side


class TimeInForce(IntEnum):
    """Tells what happens to the unfilled rest of an order (values fixed by the protocol)."""

    GOOD_TILL_EXPIRE = 0
    IMMEDIATE_OR_CANCEL = 1


# Not frozen: a frozen dataclass's __init__ costs about three times a plain one's, paid for
# every order and every fill (see quanta/core/records.py); nothing assigns these fields.
@dataclass(slots=True)
class OrderIntent:
    """Describes a validated incoming order; `order_id` is the apex of its quantum."""

    order_id: int
    account_id: int
    side: Side
    price: int
    amount: int
    time_in_force: TimeInForce = TimeInForce.GOOD_TILL_EXPIRE

    def __post_init__(self) -> None:
        """Asserts the enums are real enums, since the effects derive the maker side from them."""
        assert type(self.side) is Side, self.side
        assert type(self.time_in_force) is TimeInForce, self.time_in_force


@dataclass(slots=True)
class Fill:
    """One planned fill: `amount` of the resting `maker` for floor(amount·maker price)."""

    maker: Order
    amount: int
    quote: int


def plan_match(market: Market, taker: OrderIntent) -> tuple[list[Fill], int]:
    """Returns the fills `taker` would make against the opposite book, best price and then
    earliest order first, and its unfilled rest, without changing the books.

    Whether the rest then rests (GTC) or is dropped (IOC) is the caller's to decide."""
    assert taker.amount > 0, taker
    book = market.asks if taker.side is Side.BUY else market.bids
    buying = taker.side is Side.BUY
    limit = taker.price
    remaining = taker.amount
    fills: list[Fill] = []
    for level in book.levels():
        price = level.price
        if (price > limit) if buying else (price < limit):
            break
        for maker in level.orders.values():
            amount = maker.amount if maker.amount < remaining else remaining
            fills.append(Fill(maker, amount, amount * price // PRICE_SCALE))
            remaining -= amount
            if not remaining:
                return fills, remaining
    return fills, remaining
