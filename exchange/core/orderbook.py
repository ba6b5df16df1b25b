"""One side of one market: resting orders by price level, best price first, FIFO within a level.

`OrderBook` keeps price levels in a `SortedDict` keyed so that the best price comes first (asks
by price, bids by negated price) and, inside each level, orders in an `OrderedDict` keyed by
order id. Order ids are apex·1000 + position of the quanta that placed the orders
(`matching.order_id_of`), hence increasing, so arrival order within a level is id order; `add`
relies on that to put an order removed by a reverted effect back exactly where it was. Every
mutator has an exact inverse (`add`/`remove`, `change_amount(+x)`/`change_amount(-x)`,
`fill_best` undone by `add` or `change_amount`), which is what lets the effects layer revert a
quantum bit for bit.

Each order carries its `liability`: the amount of the asset it offers that its account keeps
locked for it. An ask locks its remaining asset amount; a bid locks
ceil(remaining·price) of the quote asset (see `amounts.quote_amount`). An account's liabilities
in an asset are therefore the sum of its open orders' liabilities in that asset (plus a pending
withdrawal), and a fill releases exactly `liability before - liability after`.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Iterator
from enum import IntEnum
from itertools import islice
from typing import Protocol

from sortedcontainers import SortedDict  # type: ignore[import-untyped, unused-ignore]

from exchange.core.amounts import PRICE_SCALE


class Side(IntEnum):
    """Tells whether an order sells or buys the market's asset (values fixed by the protocol)."""

    SELL = 1
    BUY = 2

    @property
    def opposite(self) -> Side:
        """Returns the side an order of this side trades against."""
        return Side.BUY if self == Side.SELL else Side.SELL


SIDES: dict[int, Side] = {int(side): side for side in Side}
"""Side by protocol value (the wire's `OrderSide`): a dict lookup costs less than calling the
enum, on every order and every order effect."""


class UnknownOrder(LookupError):  # noqa: N818 (reads as the condition it reports)
    """Signals an order id that is not resting in the book that was asked."""


def order_liability(side: Side, amount: int, price: int) -> int:
    """Returns what an order of `amount` at `price` locks: asset for asks, ceil quote for bids."""
    if side == Side.SELL:
        return amount
    # Inlined `quote_amount(amount, price, round_up=True)`: this runs on every fill of a bid.
    return -(-amount * price // PRICE_SCALE)


class Order:
    """Represents one resting order; `amount` is what remains to be filled and
    `client_order_id` the owner's own label (0: none; the engine keeps it unique among the
    account's resting orders, the book does not look at it)."""

    __slots__ = (
        "account_id",
        "amount",
        "asset",
        "client_order_id",
        "liability",
        "order_id",
        "price",
        "side",
    )

    def __init__(
        self,
        order_id: int,
        account_id: int,
        side: Side,
        asset: str,
        price: int,
        amount: int,
        client_order_id: int = 0,
    ) -> None:
        """Creates an order and computes its liability from side, amount and price."""
        self.order_id = order_id
        self.account_id = account_id
        self.side = side
        self.asset = asset
        self.price = price
        self.amount = amount
        self.client_order_id = client_order_id
        self.liability = order_liability(side, amount, price)

    def __repr__(self) -> str:
        """Shows the order's identity, side, price and remaining amount for debugging."""
        return (
            f"Order({self.order_id}, account={self.account_id}, {self.side.name}, "
            f"{self.asset!r}, price={self.price}, amount={self.amount}, "
            f"client_order_id={self.client_order_id})"
        )


class PriceLevel:
    """Holds the orders resting at one price in arrival (= order id) order and their total."""

    __slots__ = ("orders", "price", "total")

    def __init__(self, price: int) -> None:
        """Creates an empty level at `price`."""
        self.price = price
        self.orders: OrderedDict[int, Order] = OrderedDict()
        self.total = 0


class _SortedLevels(Protocol):
    """Describes the part of `SortedDict[int, PriceLevel]` the book uses (it ships no types)."""

    def __len__(self) -> int: ...
    def __getitem__(self, key: int, /) -> PriceLevel: ...
    def __iter__(self) -> Iterator[int]: ...
    def __setitem__(self, key: int, value: PriceLevel, /) -> None: ...
    def __delitem__(self, key: int, /) -> None: ...
    def get(self, key: int, /) -> PriceLevel | None: ...
    def peekitem(self, index: int = -1, /) -> tuple[int, PriceLevel]: ...
    def values(self) -> Iterable[PriceLevel]: ...


class OrderBook:
    """Holds the resting orders of one side of one market, best price first.

    `index` maps order ids to orders and `by_account` account ids to their orders; both may
    be shared by all books of an exchange, so an order can be found by id alone and an
    account's orders without walking every book; the book adds and removes its own orders
    in both.
    """

    __slots__ = (
        "_best",
        "_by_account",
        "_count",
        "_index",
        "_levels",
        "_sign",
        "asset",
        "side",
        "total_amount",
    )

    def __init__(
        self,
        asset: str,
        side: Side,
        index: dict[int, Order] | None = None,
        by_account: dict[int, dict[int, Order]] | None = None,
    ) -> None:
        """Creates an empty book of `side` orders on `asset`."""
        self.asset = asset
        self.side = side
        # Asks sort by price ascending and bids descending; negating bid prices lets both use
        # the SortedDict's natural order, which is faster than a key function.
        self._sign = 1 if side == Side.SELL else -1
        self._levels: _SortedLevels = SortedDict()
        self._best: PriceLevel | None = None
        self._index: dict[int, Order] = {} if index is None else index
        self._by_account: dict[int, dict[int, Order]] = {} if by_account is None else by_account
        self._count = 0
        self.total_amount = 0

    def __len__(self) -> int:
        """Returns the number of resting orders."""
        return self._count

    def __iter__(self) -> Iterator[Order]:
        """Yields the orders in priority order: best price first, then by order id."""
        for level in self.levels():
            yield from level.orders.values()

    def levels(self) -> Iterator[PriceLevel]:
        """Yields the price levels, best first."""
        # The keys iterate in C; the SortedDict's values view would iterate in Python.
        levels = self._levels
        return map(levels.__getitem__, levels)

    def get(self, order_id: int) -> Order | None:
        """Returns the resting order with this id if it belongs to this book, else None."""
        order = self._index.get(order_id)
        if order is None or order.side != self.side or order.asset != self.asset:
            return None
        return order

    def best(self) -> Order | None:
        """Returns the order that would trade first, or None if the book is empty."""
        level = self._best
        if level is None:
            return None
        return next(iter(level.orders.values()))

    def best_price(self) -> int | None:
        """Returns the best price of the book, or None if it is empty."""
        level = self._best
        return None if level is None else level.price

    def add(self, order: Order) -> None:
        """Rests `order` at its price, behind every order of that level with a smaller id.

        New orders have the largest id so far and are simply appended; an order with a smaller
        id (one put back by a revert, or loaded from a snapshot) regains its FIFO position.
        """
        assert order.side == self.side, order
        assert order.asset == self.asset, order
        assert order.amount > 0, order
        assert order.order_id not in self._index, order
        key = order.price * self._sign
        level = self._levels.get(key)
        if level is None:
            level = PriceLevel(order.price)
            self._levels[key] = level
            best = self._best
            if best is None or key < best.price * self._sign:
                self._best = level
        orders = level.orders
        if orders and order.order_id < next(reversed(orders)):
            _insert_in_id_order(orders, order)
        else:
            orders[order.order_id] = order
        level.total += order.amount
        self.total_amount += order.amount
        self._index[order.order_id] = order
        self._by_account.setdefault(order.account_id, {})[order.order_id] = order
        self._count += 1

    def _unindex(self, order: Order) -> None:
        del self._index[order.order_id]
        own = self._by_account[order.account_id]
        del own[order.order_id]
        if not own:
            del self._by_account[order.account_id]

    def remove(self, order_id: int) -> Order:
        """Removes and returns the resting order with this id; raises `UnknownOrder`."""
        order = self.get(order_id)
        if order is None:
            raise UnknownOrder(order_id)
        level = self._levels[order.price * self._sign]
        del level.orders[order_id]
        level.total -= order.amount
        self.total_amount -= order.amount
        self._unindex(order)
        self._count -= 1
        if not level.orders:
            self._drop_level(level)
        return order

    def change_amount(self, order_id: int, delta: int) -> int:
        """Adds `delta` to a resting order's amount; returns the change of its liability.

        The amount must stay positive: an order that reaches zero is removed, not changed.
        """
        order = self.get(order_id)
        if order is None:
            raise UnknownOrder(order_id)
        amount = order.amount + delta
        assert amount > 0, (order, delta)
        level = self._levels[order.price * self._sign]
        level.total += delta
        self.total_amount += delta
        order.amount = amount
        liability_before = order.liability
        order.liability = order_liability(self.side, amount, order.price)
        return order.liability - liability_before

    def fill_best(self, amount: int) -> int:
        """Fills `amount` of the best order, removing it if exhausted; returns liability released.

        A removed order keeps its other fields and is left with amount and liability 0.
        """
        level = self._best
        assert level is not None
        orders = level.orders
        order = next(iter(orders.values()))
        remaining = order.amount - amount
        assert amount > 0, amount
        assert remaining >= 0, (order, amount)
        level.total -= amount
        self.total_amount -= amount
        liability_before = order.liability
        order.amount = remaining
        if remaining == 0:
            orders.popitem(last=False)
            self._unindex(order)
            self._count -= 1
            order.liability = 0
            if not orders:
                self._drop_level(level)
            return liability_before
        order.liability = order_liability(self.side, remaining, order.price)
        return liability_before - order.liability

    def _drop_level(self, level: PriceLevel) -> None:
        """Deletes an emptied level and moves the best level on if it was the best."""
        del self._levels[level.price * self._sign]
        if level is self._best:
            self._best = self._levels.peekitem(0)[1] if len(self._levels) else None

    def depth(self, levels_max: int) -> list[tuple[int, int]]:
        """Returns up to `levels_max` (price, total amount) pairs, best price first (L2)."""
        assert levels_max >= 0, levels_max
        return [(level.price, level.total) for level in islice(self._levels.values(), levels_max)]

    def state_digest_items(self) -> list[tuple[int, int, int, int]]:
        """Returns (order_id, account_id, price, amount) of every order in priority order.

        The sequence depends only on the book's contents, not on how it is stored, so it can be
        hashed into the node's state hash and compared across implementations.
        """
        return [(o.order_id, o.account_id, o.price, o.amount) for o in self]

    def check_invariants(self) -> None:
        """Asserts the book's internal consistency (levels, totals, order fields, index)."""
        count = 0
        total = 0
        previous_key: int | None = None
        for level in self._levels.values():
            key = level.price * self._sign
            assert self._levels[key] is level, level.price
            assert previous_key is None or previous_key < key, level.price
            previous_key = key
            assert level.orders, level.price
            assert level.total == sum(o.amount for o in level.orders.values()), level.price
            ids = list(level.orders)
            assert ids == sorted(ids), level.price
            for order_id, order in level.orders.items():
                self._check_order(order_id, order, level.price)
            count += len(level.orders)
            total += level.total
        assert count == self._count, (count, self._count)
        assert total == self.total_amount, (total, self.total_amount)
        assert self._best is (self._levels.peekitem(0)[1] if len(self._levels) else None)

    def _check_order(self, order_id: int, order: Order, price: int) -> None:
        """Asserts that one resting order agrees with its level and the index."""
        assert order.order_id == order_id, order
        assert order.side == self.side, order
        assert order.asset == self.asset, order
        assert order.price == price, order
        assert order.amount > 0, order
        assert order.liability == order_liability(self.side, order.amount, price), order
        assert self._index.get(order_id) is order, order
        assert self._by_account[order.account_id].get(order_id) is order, order


def _insert_in_id_order(orders: OrderedDict[int, Order], order: Order) -> None:
    """Inserts `order` into a level so that its orders stay sorted by id.

    Only reverts and snapshot loads get here, so the O(level size) rebuild does not touch the
    hot path; putting an order back at the front (the usual revert of a fill) is O(1).
    """
    if order.order_id < next(iter(orders)):
        orders[order.order_id] = order
        orders.move_to_end(order.order_id, last=False)
        return
    items = sorted([*orders.items(), (order.order_id, order)], key=lambda item: item[0])
    orders.clear()
    orders.update(items)
