"""The chronicler's WebSocket against the real PostgreSQL and Redis: history and market data.

Goal: show the protocol of docs/chronicler.md works and fails cleanly: history pages walk an
account's quanta both ways without gaps or duplicates and carry verifiable signatures; bad
queries get clear statuses; market-data feeds match the trades that happened; a rebuild from
the persisted trades gives the same feeds. Method: a real engine (`Chain`) produces the final
quanta, the real services persist them, the real publisher sends updates through the Redis
channel layer, and `WebsocketCommunicator` drives `ChroniclerConsumer`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator

from chronicler.consumers import NO_MARKET_FEEDS_TEXT, ChroniclerConsumer
from chronicler.core.market_data import PERIODS_MS, trade_json
from chronicler.models import TradeRecord
from chronicler.publisher import MarketPublisher
from chronicler.selectors import NOT_PRIME_TEXT, trades_recent
from chronicler.tests.builders import NODE, UNIT, Chain
from exchange.core.orderbook import Side
from exchange.models import AccountRecord
from quanta.core.keys import KeyPair
from quanta.core.signatures import constellation_id_of, payload_hash
from quanta.core.status import StatusCode
from quanta.core.testing import default_settings, keypair, sign_message
from quanta.core.xdr.codec import decode, encode
from quanta.core.xdr.schema import (
    ClientConnectionSuccess,
    HandshakeRequest,
    HandshakeResponse,
    Message,
    MessageEnvelope,
    PaymentRequest,
    QuantumInfoRequest,
    QuantumInfoResponse,
    QueryOrder,
    ResultMessage,
)
from quanta.node.persistence import quanta_persist, settings_record_persist

pytestmark = pytest.mark.django_db(transaction=True)

ALICE, BOB, CAROL = keypair(1), keypair(2), keypair(3)
TIMEOUT_S = 5
CONSTELLATION_ID = constellation_id_of(default_settings([NODE]))
"""The id of every `Chain`'s constellation (its genesis settings are these)."""


def persist(chain: Chain) -> None:
    """Persists the chain's rows as alpha does, and its accounts as a snapshot would."""
    quanta_persist(rows=chain.take_rows())
    for account in chain.engine.state.accounts:
        AccountRecord.objects.update_or_create(
            id=account.id, defaults={"public_key": account.public_key, "nonce": account.nonce}
        )


@pytest.fixture
def chain(node_settings: Any) -> Iterator[Chain]:
    """A persisted constellation where alice paid bob 130 times and nobody traded yet."""
    # These tests walk the history in many pages at once: its pace is tested on its own.
    node_settings.HISTORY_ITEMS_PER_S = node_settings.HISTORY_ITEMS_BURST = 1_000_000
    chain = Chain()
    settings_record_persist(apex=1, settings=chain.settings)
    chain.fund(ALICE, ("USD", 1000 * UNIT), ("XLM", 1000 * UNIT))
    chain.fund(BOB, ("USD", 1000 * UNIT), ("XLM", 1000 * UNIT))
    for _ in range(130):
        chain.pay(ALICE, BOB, UNIT)
    persist(chain)
    yield chain


async def connect() -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(ChroniclerConsumer.as_asgi(), "/ws/chronicler/")
    connected, _ = await communicator.connect(timeout=TIMEOUT_S)
    assert connected
    return communicator


async def receive_message(communicator: WebsocketCommunicator) -> Message:
    data = await communicator.receive_from(timeout=TIMEOUT_S)
    assert isinstance(data, bytes)
    envelope = decode(MessageEnvelope, data)
    assert envelope.signature.signer == NODE.public_key
    return envelope.message


async def handshake(who: KeyPair) -> WebsocketCommunicator:
    communicator = await connect()
    request = await receive_message(communicator)
    assert isinstance(request, HandshakeRequest)
    response = HandshakeResponse(7, request.handshake_data)
    await communicator.send_to(bytes_data=encode(sign_message(response, who, CONSTELLATION_ID)))
    success = await receive_message(communicator)
    assert isinstance(success, ClientConnectionSuccess)
    return communicator


async def ask(communicator: WebsocketCommunicator, who: KeyPair, message: Message) -> Message:
    await communicator.send_to(bytes_data=encode(sign_message(message, who, CONSTELLATION_ID)))
    return await receive_message(communicator)


async def page(
    communicator: WebsocketCommunicator, cursor: int, order: QueryOrder, limit: int
) -> QuantumInfoResponse:
    answer = await ask(
        communicator, ALICE, QuantumInfoRequest(1, ALICE.public_key, cursor, order, limit)
    )
    assert isinstance(answer, QuantumInfoResponse), answer
    return answer


async def walk(communicator: WebsocketCommunicator, order: QueryOrder, limit: int) -> list[int]:
    """Returns every apex met by following next cursors from the start."""
    apexes: list[int] = []
    cursor: int | None = 0
    for _ in range(1000):
        answer = await page(communicator, cursor or 0, order, limit)
        apexes += [item.apex for item in answer.items]
        cursor = answer.next_cursor
        if cursor is None:
            return apexes
    raise AssertionError("paging did not end")


def alice_apexes() -> list[int]:
    account = AccountRecord.objects.get(public_key=ALICE.public_key)
    from quanta.models import EffectsGroupRecord

    rows = EffectsGroupRecord.objects.filter(account=account.id).order_by("apex")
    return list(rows.values_list("apex", flat=True))


async def test_history_pages_both_ways_without_gaps_or_duplicates(chain: Chain) -> None:
    expected = await database_sync_to_async(alice_apexes)()
    assert len(expected) == 131
    communicator = await handshake(ALICE)
    assert await walk(communicator, QueryOrder.ASC, 17) == expected
    assert await walk(communicator, QueryOrder.DESC, 17) == expected[::-1]
    assert await walk(communicator, QueryOrder.ASC, 1000) == expected
    await communicator.disconnect()


async def test_prev_cursor_turns_back_to_the_previous_items(chain: Chain) -> None:
    expected = await database_sync_to_async(alice_apexes)()
    communicator = await handshake(ALICE)
    first = await page(communicator, 0, QueryOrder.ASC, 10)
    assert first.prev_cursor is None
    assert first.next_cursor == expected[9]
    assert first.next_cursor is not None
    second = await page(communicator, first.next_cursor, QueryOrder.ASC, 10)
    assert [i.apex for i in second.items] == expected[10:20]
    assert second.prev_cursor == expected[10]
    assert second.prev_cursor is not None
    back = await page(communicator, second.prev_cursor, QueryOrder.DESC, 10)
    assert [i.apex for i in back.items] == expected[9::-1]
    assert back.next_cursor is None
    await communicator.disconnect()


async def test_history_items_carry_verifiable_signatures(chain: Chain) -> None:
    communicator = await handshake(ALICE)
    answer = await page(communicator, 0, QueryOrder.DESC, 5)
    assert len(answer.items) == 5
    for item in answer.items:
        digest = payload_hash(CONSTELLATION_ID, item.apex, item.quantum_hash, item.effects_hash)
        assert [s.auditor_index for s in item.signatures] == [0]
        assert NODE.verify(digest, item.signatures[0].signature)
        assert item.effects.account == 1  # alice, the first registered account
        assert item.timestamp > 1_700_000_000_000
    await communicator.disconnect()


@pytest.mark.parametrize(
    ("cursor", "order", "limit", "status", "text"),
    [
        (0, QueryOrder.ASC, 0, StatusCode.BAD_REQUEST, "limit must be between 1 and 1000, got 0"),
        (0, QueryOrder.DESC, 1001, StatusCode.BAD_REQUEST, "limit must be between 1 and 1000"),
        (10_000, QueryOrder.ASC, 10, StatusCode.BAD_REQUEST, "bad cursor 10000"),
        (2**64 - 1, QueryOrder.DESC, 10, StatusCode.BAD_REQUEST, "bad cursor"),
    ],
)
async def test_bad_history_queries_get_clear_errors(
    chain: Chain, cursor: int, order: QueryOrder, limit: int, status: StatusCode, text: str
) -> None:
    communicator = await handshake(ALICE)
    request = QuantumInfoRequest(3, ALICE.public_key, cursor, order, limit)
    answer = await ask(communicator, ALICE, request)
    assert isinstance(answer, ResultMessage)
    assert (answer.message_id, answer.status) == (3, status)
    assert text in answer.description
    # The connection stays usable.
    assert (await page(communicator, 0, QueryOrder.ASC, 1)).items
    await communicator.disconnect()


async def test_history_pages_beyond_the_connection_s_pace_are_refused(
    chain: Chain, node_settings: Any
) -> None:
    node_settings.HISTORY_ITEMS_PER_S, node_settings.HISTORY_ITEMS_BURST = 100, 300
    communicator = await handshake(ALICE)
    for _ in range(3):
        assert (await page(communicator, 0, QueryOrder.ASC, 1)).items
    request = QuantumInfoRequest(8, ALICE.public_key, 0, QueryOrder.ASC, 1)
    answer = await ask(communicator, ALICE, request)
    assert isinstance(answer, ResultMessage)
    assert (answer.message_id, answer.status) == (8, StatusCode.TOO_MANY_REQUESTS)
    assert answer.description == "history: at most 100 items a second, retry later"
    await communicator.disconnect()


async def test_unregistered_account_and_other_requests_are_refused(chain: Chain) -> None:
    communicator = await handshake(CAROL)
    request = QuantumInfoRequest(4, CAROL.public_key, 0, QueryOrder.ASC, 10)
    answer = await ask(communicator, CAROL, request)
    assert isinstance(answer, ResultMessage)
    assert (answer.status, answer.description) == (
        StatusCode.UNAUTHORIZED,
        "account is not registered",
    )
    payment = PaymentRequest(5, CAROL.public_key, 1, "USD", 1, ALICE.public_key)
    answer = await ask(communicator, CAROL, payment)
    assert isinstance(answer, ResultMessage)
    assert answer.status == StatusCode.UNEXPECTED_MESSAGE
    await communicator.disconnect()


async def test_auditor_participation_refuses_history(chain: Chain, node_settings: Any) -> None:
    node_settings.NODE_PARTICIPATION = "auditor"
    communicator = await handshake(ALICE)
    request = QuantumInfoRequest(6, ALICE.public_key, 0, QueryOrder.ASC, 10)
    answer = await ask(communicator, ALICE, request)
    assert isinstance(answer, ResultMessage)
    assert (answer.status, answer.description) == (StatusCode.FORBIDDEN, NOT_PRIME_TEXT)
    await communicator.disconnect()


def test_auditor_participation_keeps_quanta_but_no_history(node_settings: Any) -> None:
    """An auditor-level node writes the final quanta (recovery needs them) but no effects
    groups or trades: it answers no history query that would read them."""
    from quanta.models import EffectsGroupRecord, QuantumRecord

    node_settings.NODE_PARTICIPATION = "auditor"
    chain = Chain()
    chain.fund(ALICE, ("USD", 1000 * UNIT), ("XLM", 1000 * UNIT))
    chain.fund(BOB, ("USD", 1000 * UNIT), ("XLM", 1000 * UNIT))
    chain.order(ALICE, Side.SELL, 10 * UNIT, 1.5)
    chain.order(BOB, Side.BUY, 10 * UNIT, 1.5)
    rows = chain.take_rows()
    quanta_persist(rows=rows)
    assert list(QuantumRecord.objects.order_by("apex").values_list("apex", flat=True)) == [
        row.apex for row in rows
    ]
    assert not EffectsGroupRecord.objects.exists()
    assert not TradeRecord.objects.exists()
    node_settings.NODE_PARTICIPATION = "prime"
    quanta_persist(rows=rows)  # The same rows on a prime node: the history is written.
    assert EffectsGroupRecord.objects.filter(apex=rows[-1].apex).count() == 2
    assert TradeRecord.objects.count() == 1


# --- market data ---------------------------------------------------------------------------


async def send_json(communicator: WebsocketCommunicator, payload: Any) -> dict[str, Any]:
    text = payload if isinstance(payload, str) else json.dumps(payload)
    await communicator.send_to(text_data=text)
    return await receive_json(communicator)


async def receive_json(communicator: WebsocketCommunicator) -> dict[str, Any]:
    data = await communicator.receive_from(timeout=TIMEOUT_S)
    assert isinstance(data, str), data
    answer: dict[str, Any] = json.loads(data)
    return answer


async def market_connection() -> WebsocketCommunicator:
    """Connects without a handshake (market data is public)."""
    communicator = await connect()
    assert isinstance(await receive_message(communicator), HandshakeRequest)
    return communicator


async def test_a_market_data_reader_outlives_the_handshake_deadline(
    chain: Chain, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Public feeds need no key: the handshake deadline (which closed them after 10 s, 4408)
    # is lifted by a market-data request; a silent connection is still closed.
    from quanta.consumers import client_session

    monkeypatch.setattr(client_session, "HANDSHAKE_DEADLINE_S", 0.3)
    reader = await market_connection()
    assert (await send_json(reader, {"op": "markets"}))["op"] == "markets"
    silent = await market_connection()
    closed = await silent.receive_output(timeout=TIMEOUT_S)
    assert closed == {
        "type": "websocket.close",
        "code": client_session.HANDSHAKE_TIMEOUT_CLOSE_CODE,
    }
    assert await reader.receive_nothing(timeout=0.3)
    assert (await send_json(reader, {"op": "markets"}))["op"] == "markets"
    await reader.disconnect()


async def test_markets_are_listed_without_a_handshake(chain: Chain) -> None:
    communicator = await market_connection()
    answer = await send_json(communicator, {"op": "markets"})
    assert answer == {"op": "markets", "markets": ["XLM", "BTC"], "quote": "USD"}
    await communicator.disconnect()


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        ({"op": "subscribe", "feed": "depth", "market": "FOO"}, "unknown market 'FOO'"),
        ({"op": "subscribe", "feed": "candles", "market": "XLM"}, "unknown feed 'candles'"),
        ({"op": "subscribe", "feed": "frames", "market": "XLM"}, "unknown period None"),
        ({"op": "subscribe", "feed": "frames", "market": "XLM", "period": "2m"}, "unknown period"),
        ({"op": "subscribe", "feed": "ticker", "market": "XLM", "period": "1m"}, "takes no period"),
        ({"op": "unsubscribe", "feed": "ticker", "market": "XLM"}, "not subscribed"),
        ({"op": "dance"}, "unknown op 'dance'"),
        ("not json", "frames must be JSON objects"),
        ("[1, 2]", "frames must be JSON objects"),
        # A 100 000-deep array raised RecursionError in the parser: a traceback and close 1011.
        ("[" * 100_000, "frames must be JSON objects"),
        ("{" * 3_000, "frames must be JSON objects"),
    ],
)
async def test_bad_market_data_requests_get_clear_errors(
    chain: Chain, request_: Any, message: str
) -> None:
    communicator = await market_connection()
    answer = await send_json(communicator, request_)
    assert answer["op"] == "error"
    assert answer["status"] == 400
    assert message in answer["message"]
    assert (await send_json(communicator, {"op": "markets"}))["op"] == "markets"
    await communicator.disconnect()


async def test_auditor_participation_refuses_market_feeds(chain: Chain, node_settings: Any) -> None:
    node_settings.NODE_PARTICIPATION = "auditor"
    communicator = await market_connection()
    answer = await send_json(communicator, {"op": "subscribe", "feed": "depth", "market": "XLM"})
    assert answer == {"op": "error", "status": 403, "message": NO_MARKET_FEEDS_TEXT}
    assert (await send_json(communicator, {"op": "markets"}))["op"] == "markets"
    await communicator.disconnect()


SUBSCRIPTIONS = [
    {"feed": "depth", "market": "XLM"},
    {"feed": "trades", "market": "XLM"},
    {"feed": "ticker", "market": "XLM"},
    *({"feed": "frames", "market": "XLM", "period": p} for p in PERIODS_MS),
]


async def subscribe_all(communicator: WebsocketCommunicator) -> dict[str, Any]:
    """Subscribes to every feed of XLM; returns the snapshots by feed (and period)."""
    snapshots: dict[str, Any] = {}
    for subscription in SUBSCRIPTIONS:
        answer = await send_json(communicator, {"op": "subscribe", **subscription})
        assert answer["op"] == "snapshot"
        assert {k: answer[k] for k in subscription} == subscription
        snapshots[subscription.get("period", subscription["feed"])] = answer["data"]
    return snapshots


async def receive_updates(communicator: WebsocketCommunicator, count: int) -> dict[str, Any]:
    updates: dict[str, Any] = {}
    for _ in range(count):
        answer = await receive_json(communicator)
        assert answer["op"] == "update", answer
        updates[answer.get("period", answer["feed"])] = answer["data"]
    return updates


def trade_rows() -> list[dict[str, Any]]:
    return [trade_json(t) for t in reversed(trades_recent())]


async def test_feeds_match_the_trades_that_happened(chain: Chain) -> None:
    publisher = await database_sync_to_async(MarketPublisher.load)(get_channel_layer())
    communicator = await market_connection()
    empty = await subscribe_all(communicator)
    assert empty["depth"] == {"bids": [], "asks": []}
    assert empty["trades"] == []
    assert empty["ticker"]["trades"] == 0
    chain.order(ALICE, Side.SELL, 10 * UNIT, 1.5)
    chain.order(ALICE, Side.SELL, 10 * UNIT, 1.6)
    chain.order(BOB, Side.BUY, 15 * UNIT, 1.7)
    chain.order(BOB, Side.BUY, 1 * UNIT, 1.001)
    rows = list(chain.rows)
    await database_sync_to_async(persist)(chain)
    await publisher.publish_rows(rows, chain.engine.state.exchange)
    updates = await receive_updates(communicator, len(SUBSCRIPTIONS))
    trades = await database_sync_to_async(trade_rows)()
    assert [(t["price"], t["amount"], t["side"]) for t in trades] == [
        ("1.6", 5 * UNIT, "buy"),
        ("1.5", 10 * UNIT, "buy"),
    ]
    assert updates["trades"] == trades
    assert await database_sync_to_async(TradeRecord.objects.count)() == 2
    assert updates["depth"] == {
        "bids": [{"price": "1.001", "amount": UNIT}],
        "asks": [{"price": "1.6", "amount": 5 * UNIT}],
    }
    ticker = updates["ticker"]
    assert (ticker["open"], ticker["high"], ticker["low"], ticker["close"]) == (
        "1.5", "1.6", "1.5", "1.6",
    )  # fmt: skip
    assert (ticker["volume"], ticker["quote_volume"], ticker["trades"]) == (15 * UNIT, 23 * UNIT, 2)
    assert updates["1d"] == [
        {"t": updates["1d"][0]["t"], "open": "1.5", "high": "1.6", "low": "1.5", "close": "1.6",
         "volume": 15 * UNIT}
    ]  # fmt: skip
    # A new subscriber's snapshots are the data the old one was updated to.
    late = await market_connection()
    assert await subscribe_all(late) == updates
    await late.disconnect()
    await communicator.disconnect()


async def test_unsubscribed_feeds_stop_and_known_trades_are_not_resent(chain: Chain) -> None:
    publisher = await database_sync_to_async(MarketPublisher.load)(get_channel_layer())
    communicator = await market_connection()
    subscription = {"feed": "trades", "market": "XLM"}
    await send_json(communicator, {"op": "subscribe", **subscription})
    chain.order(ALICE, Side.SELL, 10 * UNIT, 1.5)
    chain.order(BOB, Side.BUY, 2 * UNIT, 1.5)
    rows = list(chain.rows)
    await database_sync_to_async(persist)(chain)
    await publisher.publish_rows(rows, chain.engine.state.exchange)
    update = await receive_json(communicator)
    assert [t["amount"] for t in update["data"]] == [2 * UNIT]
    # The same trades published again (a repeated flush) reach nobody twice.
    await publisher.publish_rows(rows[-1:], chain.engine.state.exchange)
    assert await communicator.receive_nothing(timeout=0.5)
    answer = await send_json(communicator, {"op": "unsubscribe", **subscription})
    assert answer == {"op": "unsubscribed", **subscription}
    chain.order(BOB, Side.BUY, 3 * UNIT, 1.5)
    rows = list(chain.rows)
    await database_sync_to_async(persist)(chain)
    await publisher.publish_rows(rows, chain.engine.state.exchange)
    assert await communicator.receive_nothing(timeout=0.5)
    await communicator.disconnect()


async def test_a_restart_rebuilds_the_same_feeds(chain: Chain) -> None:
    live = await database_sync_to_async(MarketPublisher.load)(get_channel_layer())
    for price in (1.5, 1.7, 1.4, 1.9):
        chain.order(ALICE, Side.SELL, 2 * UNIT, price)
        chain.order(BOB, Side.BUY, 1 * UNIT, price)
        rows = list(chain.rows)
        await database_sync_to_async(persist)(chain)
        await live.publish_rows(rows, chain.engine.state.exchange)
    rebuilt = await database_sync_to_async(MarketPublisher.load)(get_channel_layer())
    assert rebuilt.data.clock_ms == live.data.clock_ms
    assert rebuilt.data.ticker_json("XLM") == live.data.ticker_json("XLM")
    assert rebuilt.data.ticker_json("XLM")["trades"] == 4
    assert rebuilt.data.trades_json("XLM") == live.data.trades_json("XLM")
    for period in PERIODS_MS:
        assert rebuilt.data.frames_json("XLM", period) == live.data.frames_json("XLM", period)
    # What a new engine publishes at startup is what subscribers saw before.
    communicator = await market_connection()
    before = await subscribe_all(communicator)
    await rebuilt.publish_all(chain.engine.state.exchange)
    late = await market_connection()
    assert await subscribe_all(late) == before
    await late.disconnect()
    await communicator.disconnect()
