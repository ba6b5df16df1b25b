"""The engine side of the public market data: folds final quanta in and publishes the feeds.

The engine process owns the order books, so it is the one place that knows the depth; it also
keeps the `MarketData` of the trades, rebuilt at startup from the persisted trade rows. After
each flush of final quanta it folds them in; a few times a second it sends an update to the
channel group of every feed that changed since, and stores the full current data of each feed
in one Redis hash, which the chronicler consumers (web process) read as the snapshot a new
subscriber gets first.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterable, Sequence
from typing import Any

from django.conf import settings

from chronicler.core.market_data import (
    PERIODS_MS,
    MarketData,
    Trade,
    depth_json,
    trade_json,
    trades_of_quantum,
)
from chronicler.groups import market_group
from chronicler.selectors import rebuild_inputs
from exchange.core.market import Exchange
from quanta.core.pending import QuantumRow
from quanta.core.xdr.schema import OrderPlacedEffect, OrderRemovedEffect, TradeEffect
from quanta.redis_client import node_redis

logger = logging.getLogger(__name__)

Update = tuple[str, str, str | None, Any]
"""(feed, market, period, data) of one published update."""


def snapshots_key() -> str:
    """Returns the Redis hash holding the current data of every feed, by group name."""
    return f"{settings.REDIS_PREFIX}:chronicler:snapshots"


def snapshots_store(snapshots: dict[str, str]) -> None:
    """Stores the current JSON data of feeds (by group name)."""
    if snapshots:
        node_redis().hset(snapshots_key(), mapping=snapshots)  # type: ignore[arg-type]


def snapshot_read(group: str) -> Any | None:
    """Returns the stored current data of the feed published to `group`, None if none."""
    raw = node_redis().hget(snapshots_key(), group)
    return None if raw is None else json.loads(raw)


def snapshots_clear() -> None:
    """Forgets every stored feed (tests; a fresh engine rewrites them all)."""
    node_redis().delete(snapshots_key())


def markets_touched(rows: Iterable[QuantumRow]) -> set[str]:
    """Returns the markets whose books the quanta changed."""
    kinds = (OrderPlacedEffect, OrderRemovedEffect, TradeEffect)
    return {
        effect.asset
        for row in rows
        for group in row.groups
        for effect in group.effects
        if isinstance(effect, kinds)
    }


class MarketPublisher:
    """Keeps the market data of one engine and publishes what final quanta change."""

    def __init__(self, data: MarketData, channel_layer: Any) -> None:
        """Wraps rebuilt `data`; `channel_layer` carries the updates to the groups."""
        self.data = data
        self.channel_layer = channel_layer
        self._published: dict[str, str] = {}
        # Folded in but not published yet: markets whose depth, whose derived feeds (ticker,
        # frames) and whose trades changed.
        self._depth: set[str] = set()
        self._derived: set[str] = set()
        self._new_trades: dict[str, list[Trade]] = {}

    @classmethod
    def load(cls, channel_layer: Any) -> MarketPublisher:
        """Returns a publisher with the market data rebuilt from the persisted trades."""
        clock_ms, window, recent = rebuild_inputs()
        return cls(MarketData.rebuilt(clock_ms, window, recent), channel_layer)

    async def publish_all(self, exchange: Exchange | None) -> None:
        """Publishes every feed of every market (at startup: the rebuilt data)."""
        markets = [] if exchange is None else [m.asset for m in exchange.markets()]
        await self._publish(exchange, set(markets), set(markets), {}, full=True)

    async def publish_rows(self, rows: Sequence[QuantumRow], exchange: Exchange | None) -> None:
        """Folds final quanta in and publishes the feeds they changed; never raises."""
        self.fold_rows(rows)
        await self.publish_pending(exchange)

    def fold_rows(self, rows: Sequence[QuantumRow]) -> None:
        """Folds final quanta into the market data; their feeds are published later, by
        `publish_pending` (the engine calls it a few times a second, not per flush: one
        update per feed covers many flushes, and each costs Redis round trips)."""
        try:
            for row in rows:
                trades = trades_of_quantum(row.apex, row.timestamp_ms, row.groups)
                self.data.add_trades(trades)
                # A new minute moves every ticker's window, traded or not.
                if self.data.advance(row.timestamp_ms):
                    self._derived.update(self.data.markets)
                for trade in trades:
                    self._new_trades.setdefault(trade.market, []).append(trade)
                    self._derived.add(trade.market)
            self._depth.update(markets_touched(rows))
        except Exception:
            logger.exception("folding final quanta into the market data failed")

    @property
    def has_pending(self) -> bool:
        """Tells whether folded quanta changed feeds that are not published yet."""
        return bool(self._depth or self._derived or self._new_trades)

    async def publish_pending(self, exchange: Exchange | None) -> None:
        """Publishes the feeds the quanta folded in since the last call changed; never raises."""
        if not self.has_pending:
            return
        depth, derived, new_trades = self._depth, self._derived, self._new_trades
        self._depth, self._derived, self._new_trades = set(), set(), {}
        try:
            await self._publish(exchange, depth, derived, new_trades)
        except Exception:
            logger.exception("publishing market data failed")

    async def _publish(
        self,
        exchange: Exchange | None,
        depth_markets: set[str],
        derived_markets: set[str],
        new_trades: dict[str, list[Trade]],
        *,
        full: bool = False,
    ) -> None:
        updates = self._depth_updates(exchange, depth_markets)
        for market in sorted(derived_markets):
            updates.append(("ticker", market, None, self.data.ticker_json(market)))
            for period in PERIODS_MS:
                updates.append(("frames", market, period, self.data.frames_json(market, period)))
        snapshots: dict[str, str] = {}
        sends: list[tuple[str, dict[str, Any]]] = []
        for feed, market, span, data in updates:
            group = market_group(feed, market, span)
            text = json.dumps(data)
            if self._published.get(group) != text:
                self._published[group] = snapshots[group] = text
                sends.append((group, _event(feed, market, span, data)))
        for market in sorted(set(new_trades) | (derived_markets if full else set())):
            group = market_group("trades", market)
            snapshots[group] = json.dumps(self.data.trades_json(market))
            if market in new_trades:
                trades = [trade_json(t) for t in reversed(new_trades[market])]
                sends.append((group, _event("trades", market, None, trades)))
        await asyncio.to_thread(snapshots_store, snapshots)
        for group, event in sends:
            await self.channel_layer.group_send(group, event)

    def _depth_updates(self, exchange: Exchange | None, markets: set[str]) -> list[Update]:
        updates: list[Update] = []
        for market_code in sorted(markets):
            market = None if exchange is None else exchange.market(market_code)
            if market is not None:
                updates.append(("depth", market_code, None, depth_json(market)))
        return updates


def _event(feed: str, market: str, period: str | None, data: Any) -> dict[str, Any]:
    return {"type": "chronicler.update", "feed": feed, "market": market, "period": period,
            "data": data}  # fmt: skip
