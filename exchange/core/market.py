"""Markets of the exchange core: one `Market` per asset against the quote asset, and `Exchange`.

A market is `{ASSET}/{QUOTE_ASSET}` with prices in the quote asset; it owns a bid book and an
ask book. `Exchange` holds the markets and one order index shared by all their books, so an
order (and with it its market and side) can be found from its id alone, which is all a
cancellation request carries.
"""

from __future__ import annotations

from collections.abc import Iterator

from exchange.core.amounts import TICK_SIZE_DEFAULT
from exchange.core.orderbook import Order, OrderBook, Side


class Market:
    """Holds the two books of `asset` traded against `quote_asset`."""

    __slots__ = ("asks", "asset", "bids", "quote_asset", "tick")

    def __init__(
        self,
        asset: str,
        quote_asset: str,
        tick: int = TICK_SIZE_DEFAULT,
        index: dict[int, Order] | None = None,
        by_account: dict[int, dict[int, Order]] | None = None,
    ) -> None:
        """Creates a market with empty books; `index` and `by_account` are the exchange-wide
        order indexes (by order id, by account id)."""
        assert asset != quote_asset, asset
        assert tick > 0, tick
        shared_index: dict[int, Order] = {} if index is None else index
        shared_by_account: dict[int, dict[int, Order]] = {} if by_account is None else by_account
        self.asset = asset
        self.quote_asset = quote_asset
        self.tick = tick
        self.bids = OrderBook(asset, Side.BUY, shared_index, shared_by_account)
        self.asks = OrderBook(asset, Side.SELL, shared_index, shared_by_account)

    def book(self, side: Side) -> OrderBook:
        """Returns the book holding orders of `side`."""
        return self.bids if side == Side.BUY else self.asks

    def is_crossed(self) -> bool:
        """Tells whether the best bid reaches the best ask (which matching never leaves)."""
        bid = self.bids.best_price()
        ask = self.asks.best_price()
        return bid is not None and ask is not None and bid >= ask

    def check_invariants(self) -> None:
        """Asserts both books' invariants, that prices sit on the tick and nothing is crossed."""
        self.bids.check_invariants()
        self.asks.check_invariants()
        for order in self.bids:
            assert order.price % self.tick == 0, order
        for order in self.asks:
            assert order.price % self.tick == 0, order
        assert not self.is_crossed(), (self.bids.best_price(), self.asks.best_price())

    def state_digest_items(self) -> tuple[object, ...]:
        """Returns the market's identity and both books' digest items (bids first)."""
        return (
            self.asset,
            self.quote_asset,
            self.tick,
            self.bids.state_digest_items(),
            self.asks.state_digest_items(),
        )


class Exchange:
    """Holds every market by asset code and the order index shared by their books."""

    __slots__ = ("_markets", "orders", "orders_by_account", "quote_asset")

    def __init__(self, quote_asset: str) -> None:
        """Creates an exchange without markets; every market trades against `quote_asset`."""
        self.quote_asset = quote_asset
        self._markets: dict[str, Market] = {}
        # One index for all books: order id -> resting order; books keep it up to date.
        self.orders: dict[int, Order] = {}
        # And account id -> its resting orders (by id), so reading one account's orders costs
        # what it has, not what the whole exchange holds.
        self.orders_by_account: dict[int, dict[int, Order]] = {}

    def add_market(self, asset: str, tick: int = TICK_SIZE_DEFAULT) -> Market:
        """Creates, stores and returns the market of `asset`."""
        assert asset not in self._markets, asset
        market = Market(asset, self.quote_asset, tick, self.orders, self.orders_by_account)
        self._markets[asset] = market
        return market

    def remove_market(self, asset: str) -> Market:
        """Removes and returns an empty market (reverting `add_market`)."""
        market = self._markets.pop(asset)
        assert len(market.bids) == 0, asset
        assert len(market.asks) == 0, asset
        return market

    def market(self, asset: str) -> Market | None:
        """Returns the market of `asset`, or None."""
        return self._markets.get(asset)

    def markets(self) -> Iterator[Market]:
        """Yields the markets sorted by asset code."""
        markets = self._markets
        return (markets[asset] for asset in sorted(markets))

    def get_order(self, order_id: int) -> Order | None:
        """Returns the resting order with this id in any market, or None."""
        return self.orders.get(order_id)

    def order_by_client_id(self, account_id: int, client_order_id: int) -> Order | None:
        """Returns the account's resting order labelled `client_order_id` (non-zero), or None.

        A scan of the account's own orders (at most `MAX_OPEN_ORDERS`), only for requests that
        name a client order id: no second index to keep up to date on every fill."""
        assert client_order_id, client_order_id
        for order in self.orders_by_account.get(account_id, {}).values():
            if order.client_order_id == client_order_id:
                return order
        return None

    def liabilities_by_account(self) -> dict[tuple[int, str], int]:
        """Returns, per (account id, asset), the liabilities all resting orders hold.

        The engine compares this with account balances (minus pending withdrawals) to check
        that liabilities are exactly the sum of the open orders' locks.
        """
        totals: dict[tuple[int, str], int] = {}
        for market in self.markets():
            for order in market.asks:
                key = (order.account_id, market.asset)
                totals[key] = totals.get(key, 0) + order.liability
            for order in market.bids:
                key = (order.account_id, market.quote_asset)
                totals[key] = totals.get(key, 0) + order.liability
        return {key: totals[key] for key in sorted(totals)}

    def check_invariants(self) -> None:
        """Asserts every market's invariants and that the index holds exactly their orders."""
        resting = 0
        for asset, market in self._markets.items():
            assert market.asset == asset, asset
            assert market.quote_asset == self.quote_asset, asset
            market.check_invariants()
            resting += len(market.bids) + len(market.asks)
        assert resting == len(self.orders), (resting, len(self.orders))
        indexed = sum(len(orders) for orders in self.orders_by_account.values())
        assert indexed == resting, (indexed, resting)
        for order_id, order in self.orders.items():
            market = self._markets[order.asset]
            assert market.book(order.side).get(order_id) is order, order
        for account_id, own in self.orders_by_account.items():
            labels = [order.client_order_id for order in own.values() if order.client_order_id]
            assert len(labels) == len(set(labels)), (account_id, labels)

    def state_digest_items(self) -> list[tuple[object, ...]]:
        """Returns every market's digest items sorted by asset."""
        return [market.state_digest_items() for market in self.markets()]
