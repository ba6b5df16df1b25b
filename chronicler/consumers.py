"""The chronicler's WebSocket (`/ws/chronicler/`): account history and public market data.

- Binary frames speak the gateway's XDR protocol: the server sends a signed HandshakeRequest,
  the client signs it back, then sends signed `QuantumInfoRequest`s and gets a
  `QuantumInfoResponse` or a `ResultMessage` (status + description) for each.
- Text frames are JSON market data and need no handshake: `markets`, `subscribe`,
  `unsubscribe`; the engine pushes updates to the subscribed groups (chronicler.publisher).
The protocol is documented in docs/chronicler.md.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from chronicler.core.market_data import PERIODS_MS
from chronicler.groups import FEEDS, market_group
from chronicler.publisher import snapshot_read
from chronicler.selectors import markets_list, quantum_info_page
from quanta.consumers.client_session import ClientSessionMixin
from quanta.core.envelopes import GatewayError
from quanta.core.gateway import check_request
from quanta.core.status import StatusCode
from quanta.core.xdr.schema import (
    QuantumInfoRequest,
)
from quanta.dispatch import DirectDispatchMixin
from quanta.node_identity import history_kept

SUBSCRIPTIONS_MAX = 64
"""Market-data subscriptions one connection may hold (each is a channel group)."""
NO_MARKET_FEEDS_TEXT = (
    "this node publishes no market feeds (auditor participation): ask a prime node"
)
"""Why an auditor-level node refuses feed subscriptions (403): it publishes none."""
EMPTY_DATA: dict[str, Any] = {
    "depth": {"bids": [], "asks": []},
    "trades": [],
    "ticker": {"open": None, "high": None, "low": None, "close": None,
               "volume": 0, "quote_volume": 0, "trades": 0},
    "frames": [],
}  # fmt: skip


class MarketDataError(Exception):
    """A refused market-data request, answered with `{"op": "error", ...}`."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


Key = tuple[str, str, str | None]
"""(feed, market, period) of one subscription."""


class ChroniclerConsumer(ClientSessionMixin, DirectDispatchMixin, AsyncWebsocketConsumer):
    """One chronicler connection: XDR history queries and JSON market-data subscriptions."""

    async def connect(self) -> None:
        # Subscription -> newest trade apex already sent (trades) or 0.
        self.subscriptions: dict[Key, int] = {}
        await self.open_session()

    async def disconnect(self, code: int) -> None:
        for key in list(self.subscriptions):
            await self.channel_layer.group_discard(market_group(*key), self.channel_name)
        self.subscriptions.clear()

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if text_data is not None:
            await self._market_data(text_data)
            return
        await self.receive_signed(bytes_data)

    async def signed_frame(self, data: bytes) -> None:
        assert self.public_key is not None
        message = check_request(data, self.public_key, self.constellation_id).message
        if not isinstance(message, QuantumInfoRequest):
            raise GatewayError(
                StatusCode.UNEXPECTED_MESSAGE,
                "the chronicler answers QuantumInfoRequest only",
                int(message.message_id),
            )
        self.pace_history(int(message.message_id), int(message.limit))
        await self._send_message(await database_sync_to_async(quantum_info_page)(message))

    async def _market_data(self, text: str) -> None:
        try:
            request = _parse(text)
            op = request.get("op")
            # A market-data reader needs no key: its requests keep it, not a handshake.
            if op in ("markets", "subscribe"):
                self.handshake_not_needed()
            if op == "markets":
                markets, quote = await database_sync_to_async(markets_list)()
                await self._send_json({"op": "markets", "markets": markets, "quote": quote})
            elif op == "subscribe":
                await self._subscribe(await self._key(request))
            elif op == "unsubscribe":
                await self._unsubscribe(await self._key(request))
            else:
                raise MarketDataError(f"unknown op {op!r}")
        except MarketDataError as error:
            await self._send_json({"op": "error", "status": error.status, "message": error.message})

    async def _key(self, request: dict[str, Any]) -> Key:
        feed, market, period = request.get("feed"), request.get("market"), request.get("period")
        if feed not in FEEDS:
            raise MarketDataError(f"unknown feed {feed!r}: one of {', '.join(FEEDS)}")
        markets, _ = await database_sync_to_async(markets_list)()
        if not isinstance(market, str) or market not in markets:
            raise MarketDataError(f"unknown market {market!r}")
        if feed != "frames":
            if period is not None:
                raise MarketDataError(f"feed {feed!r} takes no period")
            return feed, market, None
        if period not in PERIODS_MS:
            raise MarketDataError(f"unknown period {period!r}: one of {', '.join(PERIODS_MS)}")
        return feed, market, period

    async def _subscribe(self, key: Key) -> None:
        if not history_kept():
            raise MarketDataError(NO_MARKET_FEEDS_TEXT, 403)
        if key not in self.subscriptions and len(self.subscriptions) >= SUBSCRIPTIONS_MAX:
            raise MarketDataError(f"at most {SUBSCRIPTIONS_MAX} subscriptions per connection")
        # Join first, then read: an update racing the read is then received, not lost.
        await self.channel_layer.group_add(market_group(*key), self.channel_name)
        data = await asyncio.to_thread(snapshot_read, market_group(*key))
        if data is None:
            data = EMPTY_DATA[key[0]]
        newest = max((t["apex"] for t in data), default=0) if key[0] == "trades" else 0
        self.subscriptions[key] = newest
        await self._send_json(_frame("snapshot", key, data))

    async def _unsubscribe(self, key: Key) -> None:
        if self.subscriptions.pop(key, None) is None:
            raise MarketDataError("not subscribed")
        await self.channel_layer.group_discard(market_group(*key), self.channel_name)
        await self._send_json(_frame("unsubscribed", key, None))

    async def chronicler_update(self, event: dict[str, Any]) -> None:
        """Relays a market-data update the engine published to a subscribed group."""
        key: Key = (event["feed"], event["market"], event["period"])
        newest = self.subscriptions.get(key)
        if newest is None:
            return
        data = event["data"]
        if key[0] == "trades":
            # Trades already in the snapshot must not come twice.
            data = [t for t in data if t["apex"] > newest]
            if not data:
                return
            self.subscriptions[key] = max(t["apex"] for t in data)
        await self._send_json(_frame("update", key, data))

    async def _send_json(self, payload: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps(payload))


def _parse(text: str) -> dict[str, Any]:
    # A request is one flat object: nesting beyond that is refused as malformed (a 100 000-deep
    # array made the parser raise RecursionError, which escaped as a traceback and close 1011).
    try:
        request = json.loads(text)
    except (ValueError, RecursionError):
        raise MarketDataError("frames must be JSON objects") from None
    if not isinstance(request, dict):
        raise MarketDataError("frames must be JSON objects")
    return request


def _frame(op: str, key: Key, data: Any) -> dict[str, Any]:
    feed, market, period = key
    frame: dict[str, Any] = {"op": op, "feed": feed, "market": market}
    if period is not None:
        frame["period"] = period
    if data is not None:
        frame["data"] = data
    return frame
