"""Public market data for the CLI: the chronicler's JSON feeds, in a trader's units.

The chronicler (`/ws/chronicler/`, docs/chronicler.md) answers a `subscribe` with a
`snapshot` of depth, trades or the ticker. These feeds are one node's word (no signatures
cover them), so the CLI labels them "unverified"; amounts arrive in 10^-7 units and are shown
as decimals, prices with the tick's decimals so that columns line up.
"""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal, InvalidOperation
from typing import Any

from websockets.asyncio.client import connect
from websockets.exceptions import WebSocketException

from constellation_client.amounts import format_amount
from constellation_client.wire import ConstellationClientError

CHRONICLER_PATH = "/ws/chronicler/"
PRICE_DECIMALS = 3
"""The default tick is 0.001 (exchange.core.amounts.TICK_SIZE_DEFAULT): prices show 3 decimals."""
DEPTH_LEVELS_MAX = 20
FEED_FRAME_BYTES_MAX = 1 << 20


class VerbRefusedError(ConstellationClientError):
    """The node answered and refused (an unknown market, a faucet 4xx): exit code 1, not a
    transport failure."""


def chronicler_url(ws_url: str) -> str:
    """Returns the chronicler socket beside the gateway socket `ws_url` (…/ws/)."""
    return ws_url.rstrip("/").removesuffix("/ws") + CHRONICLER_PATH


def format_price(text: str | None) -> str:
    """Returns a decimal price text with PRICE_DECIMALS decimals ("0.1" -> "0.100"); "-" for
    none."""
    if text is None:
        return "-"
    try:
        value = Decimal(text)
    except InvalidOperation:
        return str(text)
    return f"{value:.{PRICE_DECIMALS}f}"


async def feed_snapshot(ws_url: str, feed: str, market: str, timeout_s: float) -> Any:
    """Subscribes to one public feed and returns its snapshot data; a refusal (unknown
    market, auditor-level node) raises ConstellationClientError with the node's sentence."""
    request = {"op": "subscribe", "feed": feed, "market": market}
    try:
        async with connect(
            chronicler_url(ws_url), open_timeout=timeout_s, max_size=FEED_FRAME_BYTES_MAX
        ) as socket:
            await socket.send(json.dumps(request))
            while True:
                frame = await _text_frame(socket, timeout_s)
                if frame.get("op") == "error":
                    raise VerbRefusedError(str(frame.get("message")))
                if frame.get("op") == "snapshot" and frame.get("feed") == feed:
                    return frame.get("data")
    except (OSError, TimeoutError, WebSocketException) as error:
        raise ConstellationClientError(f"cannot read the {feed} feed: {error}") from None


async def _text_frame(socket: Any, timeout_s: float) -> dict[str, Any]:
    """Returns the next JSON text frame (binary frames belong to the history protocol)."""
    while True:
        data = await asyncio.wait_for(socket.recv(), timeout_s)
        if isinstance(data, str):
            frame = json.loads(data)
            if isinstance(frame, dict):
                return frame


def depth_rows(levels: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Returns price levels with decimal amounts and the running (cumulative) total."""
    rows, total = [], 0
    for level in levels[:DEPTH_LEVELS_MAX]:
        total += int(level["amount"])
        rows.append(
            {
                "price": format_price(level["price"]),
                "amount": format_amount(int(level["amount"])),
                "cumulative": format_amount(total),
            }
        )
    return rows


def depth_view(market: str, quote: str, data: dict[str, Any]) -> dict[str, Any]:
    """Returns the depth as JSON-ready data in a trader's units, with the spread."""
    bids, asks = depth_rows(data.get("bids", [])), depth_rows(data.get("asks", []))
    return {
        "market": f"{market}/{quote}",
        "bids": bids,
        "asks": asks,
        "spread": _spread(data),
        "verified": False,
    }


def depth_lines(view: dict[str, Any]) -> list[str]:
    """Returns the depth as human lines: asks (highest first), then bids."""
    lines = [f"{view['market']} depth (unverified: one node's word)"]
    lines.append(f"{'side':4} {'price':>14} {'amount':>18} {'cumulative':>18}")
    for row in reversed(view["asks"]):
        lines.append(f"ask  {row['price']:>14} {row['amount']:>18} {row['cumulative']:>18}")
    lines.append(f"spread {view['spread'] or '-'}")
    for row in view["bids"]:
        lines.append(f"bid  {row['price']:>14} {row['amount']:>18} {row['cumulative']:>18}")
    if not view["bids"] and not view["asks"]:
        lines.append("no orders in the book")
    return lines


def _spread(data: dict[str, Any]) -> str | None:
    """Returns best ask minus best bid, or None when a side is empty."""
    bids, asks = data.get("bids") or [], data.get("asks") or []
    if not bids or not asks:
        return None
    return format_price(str(Decimal(asks[0]["price"]) - Decimal(bids[0]["price"])))


def trades_view(market: str, quote: str, trades: list[dict[str, Any]]) -> dict[str, Any]:
    """Returns trades (newest first) in a trader's units."""
    rows = [
        {
            "apex": trade["apex"],
            "time_ms": trade["timestamp"],
            "side": trade["side"],
            "price": format_price(trade["price"]),
            "amount": format_amount(int(trade["amount"])),
            "total": format_amount(int(trade["quote_amount"])),
        }
        for trade in trades
    ]
    return {"market": f"{market}/{quote}", "trades": rows, "verified": False}


def trades_lines(view: dict[str, Any], time_text: Any) -> list[str]:
    """Returns trades as human lines; `time_text` turns milliseconds into a date and time."""
    lines = [f"{view['market']} trades, newest first (unverified: one node's word)"]
    for row in view["trades"]:
        lines.append(
            f"{time_text(row['time_ms'])}  {row['side']:4} {row['amount']} at {row['price']} "
            f"(total {row['total']})"
        )
    if not view["trades"]:
        lines.append("no trades yet")
    return lines


def ticker_view(
    market: str, quote: str, ticker: dict[str, Any], depth: dict[str, Any]
) -> dict[str, Any]:
    """Returns the 24 h ticker with the last price, the spread and the change."""
    bids, asks = depth.get("bids") or [], depth.get("asks") or []
    return {
        "market": f"{market}/{quote}",
        "last": format_price(ticker.get("close")),
        "bid": format_price(bids[0]["price"]) if bids else "-",
        "ask": format_price(asks[0]["price"]) if asks else "-",
        "spread": _spread(depth),
        "change_24h": _change(ticker.get("open"), ticker.get("close")),
        "high_24h": format_price(ticker.get("high")),
        "low_24h": format_price(ticker.get("low")),
        "volume_24h": format_amount(int(ticker.get("volume") or 0)),
        "quote_volume_24h": format_amount(int(ticker.get("quote_volume") or 0)),
        "trades_24h": int(ticker.get("trades") or 0),
        "verified": False,
    }


def _change(open_text: str | None, close_text: str | None) -> str:
    """Returns the change from open to close as a signed percentage ("+2.50%")."""
    if open_text is None or close_text is None or Decimal(open_text) == 0:
        return "-"
    change = (Decimal(close_text) / Decimal(open_text) - 1) * 100
    return f"{change:+.2f}%"


def ticker_lines(view: dict[str, Any]) -> list[str]:
    """Returns the ticker as human lines."""
    base, quote = view["market"].split("/")
    return [
        f"{view['market']} last {view['last']} ({view['change_24h']} in 24 h) "
        "(unverified: one node's word)",
        f"  bid {view['bid']}  ask {view['ask']}  spread {view['spread'] or '-'}",
        f"  24 h high {view['high_24h']}  low {view['low_24h']}",
        f"  24 h volume {view['volume_24h']} {base} ({view['quote_volume_24h']} {quote}), "
        f"{view['trades_24h']} trades",
    ]
