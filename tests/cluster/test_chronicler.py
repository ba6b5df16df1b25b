"""The chronicler of a real node: live market feeds, history paging, rebuild after a crash.

Goal: show that the feeds a public subscriber sees match the trades real clients made, that an
account's history pages over hundreds of quanta in both directions without gaps or duplicates
(and agree with the gateway's pages), and that a killed engine comes back publishing the same
tickers and frames it had. Method: a single-node constellation (tools/cluster.py, real daphne,
engine, PostgreSQL, Redis), the real Python client for trading and payments, and a raw
WebSocket on `/ws/chronicler/` speaking the documented protocol. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from constellation_client import BUY, SELL, ConstellationClient
from quanta.core.keys import KeyPair
from quanta.core.testing import sign_message
from quanta.core.xdr.codec import decode, encode
from quanta.core.xdr.schema import (
    ClientConnectionSuccess,
    HandshakeRequest,
    HandshakeResponse,
    Message,
    MessageEnvelope,
    QuantumInfoRequest,
    QuantumInfoResponse,
    QueryOrder,
)
from tests.cluster.conftest import run
from tests.cluster.pins import pin
from tools.cluster import Cluster, wait_for_restart

UNIT = 10_000_000
TIMEOUT_S = 15
FEEDS = [
    {"feed": "depth", "market": "XLM"},
    {"feed": "trades", "market": "XLM"},
    {"feed": "ticker", "market": "XLM"},
    {"feed": "frames", "market": "XLM", "period": "1m"},
    {"feed": "frames", "market": "XLM", "period": "1d"},
]


class Chronicler:
    """One raw connection to `/ws/chronicler/`; remembers the newest data of every feed."""

    def __init__(
        self, websocket: ClientConnection, challenge: bytes, constellation_id: bytes
    ) -> None:
        self.websocket = websocket
        self.challenge = challenge
        self.constellation_id = constellation_id
        self.data: dict[str, Any] = {}
        self.trades: list[dict[str, Any]] = []

    @classmethod
    async def open(cls, cluster: Cluster) -> Chronicler:
        url = f"ws://127.0.0.1:{cluster.alpha.http_port}/ws/chronicler/"
        websocket = await connect(url, open_timeout=TIMEOUT_S, max_size=2**22)
        request = decode(MessageEnvelope, await asyncio.wait_for(websocket.recv(), TIMEOUT_S))
        assert isinstance(request.message, HandshakeRequest)
        cid = await asyncio.to_thread(cluster.constellation_id)
        return cls(websocket, request.message.handshake_data, cid)

    async def handshake(self, keypair: KeyPair) -> None:
        await self.websocket.send(
            encode(
                sign_message(HandshakeResponse(1, self.challenge), keypair, self.constellation_id)
            )
        )
        assert isinstance(await self.receive_message(), ClientConnectionSuccess)

    async def receive_message(self) -> Message:
        data = await asyncio.wait_for(self.websocket.recv(), TIMEOUT_S)
        assert isinstance(data, bytes)
        return decode(MessageEnvelope, data).message

    async def page(
        self, keypair: KeyPair, cursor: int, order: QueryOrder, limit: int
    ) -> QuantumInfoResponse:
        request = QuantumInfoRequest(2, keypair.public_key, cursor, order, limit)
        await self.websocket.send(encode(sign_message(request, keypair, self.constellation_id)))
        answer = await self.receive_message()
        assert isinstance(answer, QuantumInfoResponse), answer
        return answer

    async def walk(self, keypair: KeyPair, order: QueryOrder, limit: int) -> list[int]:
        apexes: list[int] = []
        cursor: int | None = 0
        while cursor is not None:
            answer = await self.page(keypair, cursor, order, limit)
            apexes += [item.apex for item in answer.items]
            cursor = answer.next_cursor
            assert len(apexes) < 10_000
        return apexes

    async def subscribe_all(self) -> None:
        for feed in FEEDS:
            await self.websocket.send(json.dumps({"op": "subscribe", **feed}))
            answer = await self.receive_json()
            assert answer["op"] == "snapshot", answer

    async def receive_json(self) -> dict[str, Any]:
        data = await asyncio.wait_for(self.websocket.recv(), TIMEOUT_S)
        assert isinstance(data, str)
        answer: dict[str, Any] = json.loads(data)
        key = answer.get("period", answer.get("feed"))
        if answer["op"] == "snapshot":
            self.data[key] = answer["data"]
            if key == "trades":
                self.trades = list(answer["data"])
        elif answer["op"] == "update":
            if key == "trades":
                self.trades = answer["data"] + self.trades
            else:
                self.data[key] = answer["data"]
        return answer

    async def until(self, condition: Any) -> None:
        """Receives updates until `condition(self)` holds (bounded)."""
        deadline = time.monotonic() + TIMEOUT_S
        while not condition(self):
            assert time.monotonic() < deadline, self.data
            await self.receive_json()

    async def close(self) -> None:
        await self.websocket.close()


async def funded(
    cluster: Cluster, deposits: list[tuple[str, str]], keypair: KeyPair | None = None
) -> ConstellationClient:
    keypair = keypair or KeyPair.random()
    client = await ConstellationClient.connect(
        cluster.alpha.url, keypair, constellation_id=pin(cluster)
    )
    for asset, amount in deposits:
        await asyncio.to_thread(cluster.faucet, keypair.public_key_strkey, asset, amount)
        notification = await client.next_notification(timeout_s=TIMEOUT_S)
        assert notification is not None and notification.finalized
    return client


async def trade(seller: ConstellationClient, buyer: ConstellationClient) -> None:
    """Two fills (30 @ 0.5, 5 @ 0.4), a resting ask (10 @ 0.5) and a resting bid (3 @ 0.45)."""
    orders = [
        (seller, SELL, 40, 0.5),
        (buyer, BUY, 30, 0.6),
        (seller, SELL, 5, 0.4),
        (buyer, BUY, 8, 0.45),
    ]
    for client, side, amount, price in orders:
        result = await client.place_order("XLM", side, amount * UNIT, price)
        assert result.ok, result.description


async def check_feeds(
    cluster: Cluster, watcher: Chronicler
) -> tuple[ConstellationClient, ConstellationClient, KeyPair]:
    """Trades between two real clients; the subscribed feeds must show exactly that."""
    seller = await funded(cluster, [("USD", "10"), ("XLM", "100")])
    buyer_key = KeyPair.random()
    buyer = await funded(cluster, [("USD", "100")], buyer_key)
    await trade(seller, buyer)
    await watcher.until(lambda w: len(w.trades) >= 2)
    assert [(t["price"], t["amount"], t["side"]) for t in watcher.trades] == [
        ("0.4", 5 * UNIT, "buy"),
        ("0.5", 30 * UNIT, "buy"),
    ]
    depth = {
        "bids": [{"price": "0.45", "amount": 3 * UNIT}],
        "asks": [{"price": "0.5", "amount": 10 * UNIT}],
    }
    await watcher.until(lambda w: w.data.get("depth") == depth)
    await watcher.until(lambda w: w.data["ticker"]["trades"] == 2)
    ticker = watcher.data["ticker"]
    assert (ticker["volume"], ticker["quote_volume"]) == (35 * UNIT, 17 * UNIT)
    assert (ticker["open"], ticker["high"], ticker["low"], ticker["close"]) == (
        "0.5", "0.5", "0.4", "0.4",
    )  # fmt: skip
    await watcher.until(lambda w: sum(f["volume"] for f in w.data["1m"]) == 35 * UNIT)
    return seller, buyer, buyer_key


async def check_paging(
    cluster: Cluster, seller: ConstellationClient, buyer: ConstellationClient, key: KeyPair
) -> Chronicler:
    """300 more quanta for the buyer; pages both ways must list each exactly once, in order."""
    last = None
    for _ in range(300):
        last = await buyer.pay(seller.public_key, "USD", UNIT // 10)
        assert last.ok, last.description
    assert last is not None
    pager = await Chronicler.open(cluster)
    await pager.handshake(key)
    deadline = time.monotonic() + TIMEOUT_S
    while (await pager.page(key, 0, QueryOrder.DESC, 1)).items[0].apex != last.apex:
        assert time.monotonic() < deadline, "the last payment was not persisted"
        await asyncio.sleep(0.05)  # Persisting is the engine's own 20 ms flush loop.
    ascending = await pager.walk(key, QueryOrder.ASC, 50)
    assert len(ascending) == 303  # deposit, two orders, 300 payments
    assert ascending == sorted(set(ascending))
    assert await pager.walk(key, QueryOrder.DESC, 50) == ascending[::-1]
    gateway_page = await buyer.history(0, QueryOrder.ASC, 1000)
    assert [item.apex for item in gateway_page.items] == ascending
    return pager


async def check_restart(cluster: Cluster, watcher: Chronicler) -> Chronicler:
    """Kills the engine: the new one must publish the same tickers, frames and depth."""
    before = {key: watcher.data[key] for key in ("ticker", "1m", "1d", "depth")}
    watcher.data.clear()
    await asyncio.to_thread(cluster.kill_process, cluster.alpha, "engine")
    restarted_ms = time.time_ns() // 1_000_000
    await asyncio.to_thread(cluster.start_process, cluster.alpha, "engine")
    await asyncio.to_thread(wait_for_restart, cluster, restarted_ms, "Ready", 30)
    # Only the new engine publishes from now on: these updates are its rebuilt data.
    await watcher.until(lambda w: all(key in w.data for key in before))
    assert {key: watcher.data[key] for key in before} == before
    fresh = await Chronicler.open(cluster)
    await fresh.subscribe_all()
    assert {key: fresh.data[key] for key in before} == before
    return fresh


def test_chronicler_feeds_paging_and_rebuild(single_node: Cluster) -> None:
    async def scenario() -> None:
        watcher = await Chronicler.open(single_node)
        markets = {"op": "markets", "markets": ["XLM", "BTC"], "quote": "USD"}
        await watcher.websocket.send(json.dumps({"op": "markets"}))
        assert await watcher.receive_json() == markets
        await watcher.subscribe_all()
        seller, buyer, buyer_key = await check_feeds(single_node, watcher)
        pager = await check_paging(single_node, seller, buyer, buyer_key)
        fresh = await check_restart(single_node, watcher)
        # And the rebuilt data goes on from there.
        result = await buyer.place_order("XLM", BUY, 1 * UNIT, 0.5)
        assert result.ok, result.description
        await fresh.until(lambda w: w.data["ticker"]["trades"] == 3)
        assert fresh.data["ticker"]["volume"] == 36 * UNIT
        for connection in (watcher, pager, fresh):
            await connection.close()
        await seller.close()
        await buyer.close()

    run(scenario())
