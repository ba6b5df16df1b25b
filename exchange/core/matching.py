"""Order matching: plans how an incoming order crosses a market's books, without changing them.

`plan_match` returns the fills an order would make against the opposite book and the rest it
would leave; it reads the books and never touches balances, accounts or quanta. The engine
(`quanta.core.processors.order`) turns the plan into Trade / OrderPlaced effects, and the
effects change the books, so every book change of a quantum is one of its effects and can be
reverted exactly with it.

Rules: an incoming order crosses while bid >= ask; it fills at the resting (maker) order's
price, better price first and earlier order first within a price; fills may be partial. Every
trade moves floor(fill·maker price) of the quote asset (see `amounts.quote_amount`).
Self-trade prevention (the engine's rule, unlike Centaurus, which let an account trade with
itself): when the caller passes `own_crossed`, a resting order of the taker's own account that
the taker reaches is not filled but listed there, and matching goes on past it; the engine
cancels those resting orders (the newer, incoming order wins). Without `own_crossed` matching
does not look at owners (the reference matcher of the tests is owner-blind too).

Order types (`TimeInForce`, values fixed by the protocol): good-till-expire rests its rest;
immediate-or-cancel drops it; fill-or-kill executes only if the whole amount fills at once,
else nothing happens; post-only rests like good-till-expire but is refused if it would cross
the book at all (it must only add liquidity). `would_cross` answers the post-only question.

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
    FILL_OR_KILL = 2
    POST_ONLY = 3


RESTING_TIMES_IN_FORCE = frozenset({TimeInForce.GOOD_TILL_EXPIRE, TimeInForce.POST_ONLY})
"""Order types whose unfilled rest rests on the book (and so counts against open orders)."""

ORDER_IDS_PER_QUANTUM = 1000
"""Order ids a quantum can give: the order at position p (0 for a single order, the item's
index in a batch) of the quantum at apex a gets id a·1000 + p. Ids stay increasing in arrival
order, which the books' FIFO relies on, and a reader sees the apex in the id."""


def order_id_of(apex: int, position: int = 0) -> int:
    """Returns the id of the order at `position` of the quantum at `apex`."""
    assert 0 <= position < ORDER_IDS_PER_QUANTUM, position
    return apex * ORDER_IDS_PER_QUANTUM + position


def apex_of_order(order_id: int) -> int:
    """Returns the apex of the quantum that placed the order `order_id`."""
    return order_id // ORDER_IDS_PER_QUANTUM


# Not frozen: a frozen dataclass's __init__ costs about three times a plain one's, paid for
# every order and every fill (see quanta/core/records.py); nothing assigns these fields.
@dataclass(slots=True)
class OrderIntent:
    """Describes a validated incoming order; `order_id` comes from its apex (`order_id_of`)."""

    order_id: int
    account_id: int
    side: Side
    price: int
    amount: int
    time_in_force: TimeInForce = TimeInForce.GOOD_TILL_EXPIRE
    client_order_id: int = 0

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


def would_cross(market: Market, side: Side, price: int) -> bool:
    """Tells whether an order of `side` at `price` reaches the best opposite order."""
    if side is Side.BUY:
        best = market.asks.best_price()
        return best is not None and best <= price
    best = market.bids.best_price()
    return best is not None and best >= price


def plan_match(
    market: Market, taker: OrderIntent, own_crossed: list[Order] | None = None
) -> tuple[list[Fill], int]:
    """Returns the fills `taker` would make against the opposite book, best price and then
    earliest order first, and its unfilled rest, without changing the books.

    With `own_crossed`, the taker's own resting orders it reaches are appended there instead
    of being filled (self-trade prevention). Whether the rest then rests (GTC) or is dropped
    (IOC) is the caller's to decide."""
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
            if own_crossed is not None and maker.account_id == taker.account_id:
                own_crossed.append(maker)
                continue
            amount = maker.amount if maker.amount < remaining else remaining
            fills.append(Fill(maker, amount, amount * price // PRICE_SCALE))
            remaining -= amount
            if not remaining:
                return fills, remaining
    return fills, remaining
