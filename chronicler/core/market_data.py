"""Public market data derived from the effects of final quanta: trades, frames, tickers, depth.

Every trade is read from the taker's `TradeEffect` (`is_new_order`): one per fill, at the
maker's price, with the taker's side. Frames (open/high/low/close/volume per period) and the
24 h ticker are pure folds over the trades in apex order, so feeding the same trades again
(after a restart, from the persisted trade rows) rebuilds exactly the same values.

Time is the quanta's own: the clock is the newest quantum timestamp seen, never the wall
clock. The ticker covers the 1440 one-minute frames ending with the clock's minute (a rolling
24 h window at minute granularity), which keeps it rebuildable from frames alone. Frames are
sparse: a period without trades has no frame.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from exchange.core.amounts import PRICE_SCALE
from exchange.core.market import Market
from quanta.core.records import record
from quanta.core.xdr.schema import EffectsGroup, TradeEffect

PERIODS_MS: dict[str, int] = {
    "1m": 60_000,
    "15m": 900_000,
    "1h": 3_600_000,
    "1d": 86_400_000,
}
"""Frame periods a client may subscribe to, by name."""

MINUTE_MS = PERIODS_MS["1m"]
TICKER_WINDOW_MS = 86_400_000
TICKER_MINUTES = TICKER_WINDOW_MS // MINUTE_MS
FRAMES_MAX = 200
"""Frames per period kept and sent (the newest)."""
TRADES_MAX = 50
"""Trades per market kept and sent in a snapshot (the newest)."""
DEPTH_LEVELS_MAX = 20
"""Price levels per side in a depth snapshot."""
SIDE_NAMES = {1: "sell", 2: "buy"}
_PRICE_DIGITS = len(str(PRICE_SCALE)) - 1
assert 10**_PRICE_DIGITS == PRICE_SCALE

Json = dict[str, Any]


@record
class Trade:
    """One fill as the public sees it: the taker's side, the maker's price."""

    market: str
    apex: int
    index: int
    price: int
    amount: int
    quote_amount: int
    side: int
    timestamp_ms: int


def trades_of_quantum(apex: int, timestamp_ms: int, groups: Iterable[EffectsGroup]) -> list[Trade]:
    """Returns the trades of one quantum in fill order (the taker's trade effects)."""
    effects = [e for g in groups for e in g.effects if isinstance(e, TradeEffect)]
    takers = [e for e in effects if e.is_new_order]
    return [
        Trade(
            e.asset,
            apex,
            index,
            int(e.price),
            int(e.asset_amount),
            int(e.quote_amount),
            int(e.side),
            timestamp_ms,
        )
        for index, e in enumerate(takers)
    ]


def price_text(units: int) -> str:
    """Returns a price in price units as a decimal string of the quote asset ("1.001", "2.0")."""
    text = format(Decimal(units).scaleb(-_PRICE_DIGITS).normalize(), "f")
    return text if "." in text else f"{text}.0"


def trade_json(trade: Trade) -> Json:
    """Returns the public JSON of one trade."""
    return {
        "apex": trade.apex,
        "price": price_text(trade.price),
        "amount": trade.amount,
        "quote_amount": trade.quote_amount,
        "side": SIDE_NAMES[trade.side],
        "timestamp": trade.timestamp_ms,
    }


@dataclass(slots=True)
class Frame:
    """The trades of one period: first, highest, lowest and last price, summed volumes."""

    start_ms: int
    open: int
    high: int
    low: int
    close: int
    volume: int
    quote_volume: int
    trades: int

    def add(self, trade: Trade) -> None:
        """Folds one later trade of the same period into the frame."""
        self.high = max(self.high, trade.price)
        self.low = min(self.low, trade.price)
        self.close = trade.price
        self.volume += trade.amount
        self.quote_volume += trade.quote_amount
        self.trades += 1

    def to_json(self) -> Json:
        """Returns the public JSON of the frame."""
        return {
            "t": self.start_ms,
            "open": price_text(self.open),
            "high": price_text(self.high),
            "low": price_text(self.low),
            "close": price_text(self.close),
            "volume": self.volume,
        }


class FrameSeries:
    """The newest frames of one period of one market, oldest first."""

    def __init__(self, period_ms: int, frames_max: int) -> None:
        """Creates an empty series keeping at most `frames_max` frames."""
        assert period_ms > 0 and frames_max > 0
        self.period_ms = period_ms
        self.frames: deque[Frame] = deque(maxlen=frames_max)

    def add(self, trade: Trade) -> None:
        """Folds a trade into its period's frame; trades must come in apex order."""
        start = trade.timestamp_ms - trade.timestamp_ms % self.period_ms
        last = self.frames[-1] if self.frames else None
        if last is not None and start <= last.start_ms:
            # Quantum timestamps may step back by a millisecond across alpha restarts; such a
            # trade still belongs to the newest frame, so the fold stays order-only.
            last.add(trade)
            return
        price = trade.price
        self.frames.append(
            Frame(start, price, price, price, price, trade.amount, trade.quote_amount, 1)
        )

    def to_json(self, clock_ms: int) -> list[Json]:
        """Returns the frames of the last `FRAMES_MAX` periods up to `clock_ms`, oldest first.

        A window of periods (not a count of frames) is what a rebuild from the trades of that
        window reproduces exactly, however sparse the frames are.
        """
        start = clock_ms - clock_ms % self.period_ms - (FRAMES_MAX - 1) * self.period_ms
        return [frame.to_json() for frame in self.frames if frame.start_ms >= start]


def _ticker_of(frames: Sequence[Frame]) -> Json:
    if not frames:
        return {
            "open": None,
            "high": None,
            "low": None,
            "close": None,
            "volume": 0,
            "quote_volume": 0,
            "trades": 0,
        }
    return {
        "open": price_text(frames[0].open),
        "high": price_text(max(f.high for f in frames)),
        "low": price_text(min(f.low for f in frames)),
        "close": price_text(frames[-1].close),
        "volume": sum(f.volume for f in frames),
        "quote_volume": sum(f.quote_volume for f in frames),
        "trades": sum(f.trades for f in frames),
    }


class MarketHistory:
    """The recent trades and the frames of every period of one market."""

    def __init__(self, market: str) -> None:
        """Creates an empty history of `market`."""
        self.market = market
        self.trades: deque[Trade] = deque(maxlen=TRADES_MAX)
        self.series = {
            name: FrameSeries(period, FRAMES_MAX if name != "1m" else TICKER_MINUTES)
            for name, period in PERIODS_MS.items()
        }

    def add(self, trade: Trade) -> None:
        """Folds one trade (in apex order) into the recent trades and every series."""
        self.trades.append(trade)
        self.add_to_frames(trade)

    def add_to_frames(self, trade: Trade) -> None:
        """Folds one trade (in apex order) into every series only."""
        assert trade.market == self.market, trade
        for series in self.series.values():
            series.add(trade)

    def trades_json(self) -> list[Json]:
        """Returns the newest trades, newest first."""
        return [trade_json(t) for t in reversed(self.trades)]

    def frames_json(self, period: str, clock_ms: int) -> list[Json]:
        """Returns the frames of `period` of the last `FRAMES_MAX` periods, oldest first."""
        return self.series[period].to_json(clock_ms)

    def ticker_json(self, clock_ms: int) -> Json:
        """Returns the ticker over the one-minute frames of the 24 h ending at `clock_ms`."""
        window_start = clock_ms - clock_ms % MINUTE_MS - TICKER_WINDOW_MS
        frames = [f for f in self.series["1m"].frames if f.start_ms > window_start]
        return _ticker_of(frames)


def depth_json(market: Market, levels_max: int = DEPTH_LEVELS_MAX) -> Json:
    """Returns the aggregated price levels of a market's books, best first."""
    return {
        "bids": [{"price": price_text(p), "amount": a} for p, a in market.bids.depth(levels_max)],
        "asks": [{"price": price_text(p), "amount": a} for p, a in market.asks.depth(levels_max)],
    }


class MarketData:
    """The market histories of every market and the quanta clock."""

    def __init__(self, clock_ms: int = 0) -> None:
        """Creates empty histories; `clock_ms` is the newest quantum timestamp known."""
        self.clock_ms = clock_ms
        self.markets: dict[str, MarketHistory] = {}

    def history(self, market: str) -> MarketHistory:
        """Returns the history of `market`, empty if it never traded."""
        history = self.markets.get(market)
        if history is None:
            history = self.markets[market] = MarketHistory(market)
        return history

    def add_trades(self, trades: Iterable[Trade]) -> None:
        """Folds trades (in apex order) into their markets' histories."""
        for trade in trades:
            self.history(trade.market).add(trade)

    def advance(self, timestamp_ms: int) -> bool:
        """Moves the clock forward; tells whether it entered a new minute (tickers moved)."""
        if timestamp_ms <= self.clock_ms:
            return False
        moved = timestamp_ms // MINUTE_MS != self.clock_ms // MINUTE_MS
        self.clock_ms = timestamp_ms
        return moved

    def ticker_json(self, market: str) -> Json:
        """Returns the 24 h ticker of `market` at the current clock."""
        return self.history(market).ticker_json(self.clock_ms)

    def frames_json(self, market: str, period: str) -> list[Json]:
        """Returns the frames of `market` and `period` at the current clock."""
        return self.history(market).frames_json(period, self.clock_ms)

    def trades_json(self, market: str) -> list[Json]:
        """Returns the newest trades of `market`, newest first."""
        return self.history(market).trades_json()

    @classmethod
    def rebuilt(
        cls, clock_ms: int, window_trades: Iterable[Trade], recent_trades: Iterable[Trade]
    ) -> MarketData:
        """Returns market data rebuilt from persisted trades.

        `window_trades` are every trade since `rebuild_since_ms(clock_ms)` in apex order (they
        make the frames and tickers); `recent_trades` are the newest `TRADES_MAX` trades of
        each market in apex order, however old (they make the trade lists).
        """
        data = cls(clock_ms)
        for trade in window_trades:
            data.history(trade.market).add_to_frames(trade)
        for trade in recent_trades:
            data.history(trade.market).trades.append(trade)
        return data


def rebuild_since_ms(clock_ms: int) -> int:
    """Returns the oldest trade timestamp a rebuild at `clock_ms` needs (every kept frame)."""
    needed = max(
        max(PERIODS_MS[name] * FRAMES_MAX for name in PERIODS_MS if name != "1m"),
        TICKER_WINDOW_MS,
    )
    return max(0, clock_ms - clock_ms % PERIODS_MS["1d"] - needed)
