"""Market data derived from trade effects: trades, frames, tickers, depth, rebuild.

Goal: show the public feeds are exact folds of the trades the engine emitted and that a
rebuild from persisted trades gives the same values. Method: a real `Engine` executes signed
orders (so the trade effects are the ones matching really emits); the rest feeds hand-made
`Trade` values with chosen timestamps. Pure: no database.
"""

from __future__ import annotations

import itertools

from chronicler.core.market_data import (
    FRAMES_MAX,
    MINUTE_MS,
    PERIODS_MS,
    TRADES_MAX,
    MarketData,
    Trade,
    depth_json,
    price_text,
    rebuild_since_ms,
    trades_of_quantum,
)
from exchange.core.orderbook import Side
from quanta.core.engine import Engine, Executed
from quanta.core.keys import KeyPair
from quanta.core.signatures import constellation_id_of
from quanta.core.testing import (
    default_settings,
    deposit_quantum,
    keypair,
    request_quantum,
    settings_quantum,
)
from quanta.core.xdr.schema import OrderRequest, QuantumBody, TimeInForce

UNIT = 10_000_000
DAY_MS = PERIODS_MS["1d"]


class Exchange:
    """An initialized engine with two funded accounts that place orders."""

    def __init__(self) -> None:
        auditors = [keypair(200), keypair(201), keypair(202)]
        self.engine = Engine()
        self.clock = itertools.count(1_700_000_000_000, 1_000)
        self.nonces = itertools.count(1)
        settings = default_settings(auditors)
        self.constellation_id = constellation_id_of(settings)
        self.run(settings_quantum(settings, auditors[:2]))
        self.maker, self.taker = keypair(1), keypair(2)
        cursor = itertools.count(1)
        for who in (self.maker, self.taker):
            for asset in ("USD", "XLM"):
                self.run(deposit_quantum(next(cursor), [(who, asset, 1000 * UNIT)]))

    def run(self, body: QuantumBody) -> Executed:
        return self.engine.execute(body, next(self.clock))

    def order(self, who: KeyPair, side: Side, amount: int, price: float) -> Executed:
        request = OrderRequest(
            1, who.public_key, next(self.nonces), "XLM", side, amount, price,
            TimeInForce.GOOD_TILL_EXPIRE,
        )  # fmt: skip
        executed = self.run(request_quantum(request, who, self.constellation_id))
        assert not isinstance(executed, Exception)
        return executed


def trade(apex: int, price: int, amount: int, timestamp_ms: int, market: str = "XLM") -> Trade:
    return Trade(market, apex, 0, price, amount, amount * price // UNIT, 2, timestamp_ms)


def test_trades_are_the_taker_fills_at_the_maker_price() -> None:
    exchange = Exchange()
    exchange.order(exchange.maker, Side.SELL, 10 * UNIT, 1.5)
    exchange.order(exchange.maker, Side.SELL, 10 * UNIT, 1.6)
    executed = exchange.order(exchange.taker, Side.BUY, 15 * UNIT, 1.7)
    trades = trades_of_quantum(executed.apex, executed.quantum.timestamp, executed.groups)
    assert [(t.price, t.amount, t.side, t.index) for t in trades] == [
        (15_000_000, 10 * UNIT, int(Side.BUY), 0),
        (16_000_000, 5 * UNIT, int(Side.BUY), 1),
    ]
    assert [t.quote_amount for t in trades] == [15 * UNIT, 8 * UNIT]
    assert {t.apex for t in trades} == {executed.apex}
    assert trades[0].timestamp_ms == executed.quantum.timestamp


def test_an_order_without_fill_makes_no_trade() -> None:
    exchange = Exchange()
    executed = exchange.order(exchange.maker, Side.SELL, 10 * UNIT, 1.5)
    assert trades_of_quantum(executed.apex, 0, executed.groups) == []


def test_depth_aggregates_levels_best_first() -> None:
    exchange = Exchange()
    exchange.order(exchange.maker, Side.SELL, 10 * UNIT, 1.6)
    exchange.order(exchange.maker, Side.SELL, 10 * UNIT, 1.5)
    exchange.order(exchange.maker, Side.SELL, 5 * UNIT, 1.5)
    exchange.order(exchange.taker, Side.BUY, 3 * UNIT, 1.001)
    market = exchange.engine.state.require_exchange().market("XLM")
    assert market is not None
    assert depth_json(market) == {
        "bids": [{"price": "1.001", "amount": 3 * UNIT}],
        "asks": [
            {"price": "1.5", "amount": 15 * UNIT},
            {"price": "1.6", "amount": 10 * UNIT},
        ],
    }


def test_price_text_is_a_plain_decimal() -> None:
    assert price_text(10_010_000) == "1.001"
    assert price_text(10_000_000) == "1.0"
    assert price_text(100_000_000) == "10.0"
    assert price_text(10_000) == "0.001"


def test_frames_fold_trades_per_period() -> None:
    data = MarketData()
    base = 10 * DAY_MS
    feed = [
        trade(1, 10_000_000, UNIT, base + 1_000),
        trade(2, 12_000_000, 2 * UNIT, base + 30_000),
        trade(3, 9_000_000, UNIT, base + 59_999),
        trade(4, 11_000_000, 5 * UNIT, base + MINUTE_MS + 5),
    ]
    data.add_trades(feed)
    data.advance(base + MINUTE_MS + 5)
    assert data.frames_json("XLM", "1m") == [
        {"t": base, "open": "1.0", "high": "1.2", "low": "0.9", "close": "0.9", "volume": 4 * UNIT},
        {"t": base + MINUTE_MS, "open": "1.1", "high": "1.1", "low": "1.1", "close": "1.1",
         "volume": 5 * UNIT},
    ]  # fmt: skip
    assert data.frames_json("XLM", "1h") == [
        {"t": base, "open": "1.0", "high": "1.2", "low": "0.9", "close": "1.1", "volume": 9 * UNIT}
    ]


def test_ticker_covers_the_last_24_hours_of_the_quanta_clock() -> None:
    data = MarketData()
    base = 10 * DAY_MS
    data.add_trades([trade(1, 10_000_000, UNIT, base), trade(2, 20_000_000, UNIT, base + 1)])
    data.advance(base + 1)
    ticker = data.ticker_json("XLM")
    assert ticker == {
        "open": "1.0", "high": "2.0", "low": "1.0", "close": "2.0",
        "volume": 2 * UNIT, "quote_volume": 3 * UNIT, "trades": 2,
    }  # fmt: skip
    assert data.advance(base + DAY_MS - 1) is True
    assert data.ticker_json("XLM")["trades"] == 2
    data.advance(base + DAY_MS + MINUTE_MS)
    assert data.ticker_json("XLM") == {
        "open": None, "high": None, "low": None, "close": None,
        "volume": 0, "quote_volume": 0, "trades": 0,
    }  # fmt: skip
    assert data.ticker_json("BTC")["trades"] == 0


def test_clock_never_goes_back() -> None:
    data = MarketData(5 * MINUTE_MS)
    assert data.advance(5 * MINUTE_MS + 10) is False
    assert data.advance(MINUTE_MS) is False
    assert data.clock_ms == 5 * MINUTE_MS + 10
    assert data.advance(6 * MINUTE_MS) is True


def test_trades_keep_the_newest_first() -> None:
    data = MarketData()
    data.add_trades(trade(apex, 10_000_000, UNIT, apex) for apex in range(1, TRADES_MAX + 11))
    trades = data.trades_json("XLM")
    assert len(trades) == TRADES_MAX
    assert [t["apex"] for t in trades] == list(range(TRADES_MAX + 10, 10, -1))
    assert trades[0]["side"] == "buy"


def test_frames_keep_the_last_periods_only() -> None:
    data = MarketData()
    data.add_trades(trade(i + 1, 10_000_000, UNIT, i * MINUTE_MS) for i in range(FRAMES_MAX + 30))
    data.advance((FRAMES_MAX + 29) * MINUTE_MS)
    frames = data.frames_json("XLM", "1m")
    assert len(frames) == FRAMES_MAX
    assert frames[0]["t"] == 30 * MINUTE_MS
    assert frames[-1]["t"] == (FRAMES_MAX + 29) * MINUTE_MS


def test_rebuild_from_persisted_trades_gives_the_same_feeds() -> None:
    # Sparse trades over 300 days: some fall out of every window, some only out of some.
    feed = [
        trade(apex, 10_000_000 + (apex * 7919) % 5_000_000, UNIT * (1 + apex % 3), apex * 3_600_000)
        for apex in range(1, 300 * 24, 5)
    ]
    live = MarketData()
    for item in feed:
        live.add_trades([item])
        live.advance(item.timestamp_ms)
    since = rebuild_since_ms(live.clock_ms)
    window = [t for t in feed if t.timestamp_ms >= since]
    assert len(window) < len(feed)
    rebuilt = MarketData.rebuilt(live.clock_ms, window, feed[-TRADES_MAX:])
    assert rebuilt.ticker_json("XLM") == live.ticker_json("XLM")
    assert rebuilt.trades_json("XLM") == live.trades_json("XLM")
    for period in PERIODS_MS:
        assert rebuilt.frames_json("XLM", period) == live.frames_json("XLM", period)
    assert live.ticker_json("XLM")["trades"] > 0
