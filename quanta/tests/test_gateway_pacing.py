"""The gateway paces what one connection may ask of it beyond alpha's per-account limits.

Goal: history pages (a database read of up to 1 000 items each) and requests from a key with
no account yet (which alpha can only refuse, and whose per-account limits cannot count) are
answered 429 beyond their pace, while the connection stays open; a key that a deposit has
registered since its handshake is no longer paced. Before, both went through unpaced (the
abuse review: "unregistered keys skip rate limits", "history pages are unlimited").
Method: the real `GatewayConsumer` on Channels' in-memory layer, driven by
WebsocketCommunicator, with the settings in the real test database; the history reader is a
stand-in that counts its calls (the chronicler's real one is tested with the chronicler).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from channels.testing import WebsocketCommunicator

from exchange.models import AccountRecord
from quanta import engine_client
from quanta.consumers import client_session
from quanta.consumers import gateway as gateway_module
from quanta.consumers.gateway import UNREGISTERED_TEXT, GatewayConsumer
from quanta.consumers.hub import GatewayHub
from quanta.core.envelopes import envelope_bytes
from quanta.core.results import result_message
from quanta.core.signatures import constellation_id_of
from quanta.core.status import StatusCode
from quanta.core.testing import default_settings, keypair
from quanta.core.xdr.codec import decode, encode
from quanta.core.xdr.schema import (
    MESSAGE,
    ClientConnectionSuccess,
    HandshakeRequest,
    HandshakeResponse,
    Message,
    MessageEnvelope,
    PayloadProof,
    PaymentRequest,
    QuantumInfoRequest,
    QuantumInfoResponse,
    QuantumResultMessage,
    QueryOrder,
    ResultMessage,
)
from quanta.node.persistence import settings_record_persist
from quanta.tests.db_threads import thread_connections_closed  # noqa: F401 (autouse)

pytestmark = pytest.mark.django_db(transaction=True)

NODE, CLIENT, PAYEE = keypair(290), keypair(291), keypair(292)
GENESIS = default_settings([NODE])
CID = constellation_id_of(GENESIS)
TIMEOUT_S = 5.0
pages_read: list[QuantumInfoRequest] = []


def history_page(request: QuantumInfoRequest) -> bytes:
    pages_read.append(request)
    response = QuantumInfoResponse(request.message_id, StatusCode.SUCCESS, "", (), None, None)
    return encode(response, MESSAGE)


class Clock:
    """The gateway's monotonic clock, moved by the test (the pace is what is under test)."""

    now = 1_000.0

    @classmethod
    def monotonic(cls) -> float:
        return cls.now


async def _account_of_no_engine(public_key: bytes) -> int | None:
    """The real ask to the engine, with a bound of 0.05 s instead of 2 s."""
    return await engine_client.engine_account_of(public_key, timeout_s=0.05)


@pytest.fixture
def gateway(settings: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(client_session, "time", Clock)
    monkeypatch.setattr(gateway_module, "time", Clock)
    # No engine runs here: each handshake's ask for the key's account goes unanswered, and
    # waiting out the real 2 s bound (three times) was most of these tests' time.
    monkeypatch.setattr(gateway_module, "engine_account_of", _account_of_no_engine)
    settings.NODE_SECRET_SEED = NODE.secret
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    settings.HISTORY_ITEMS_PER_S, settings.HISTORY_ITEMS_BURST = 100, 300
    settings.UNREGISTERED_REQUESTS_PER_S, settings.UNREGISTERED_REQUESTS_BURST = 1, 2
    settings_record_persist(apex=1, settings=GENESIS)
    pages_read.clear()
    yield
    GatewayHub._instances.clear()  # each test's event loop has its own hub


async def _received(communicator: WebsocketCommunicator) -> Message:
    data = await communicator.receive_from(timeout=TIMEOUT_S)
    return decode(MessageEnvelope, data).message


async def _connected() -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(GatewayConsumer.as_asgi(history_page=history_page), "/ws/")
    accepted, _ = await communicator.connect(timeout=TIMEOUT_S)
    assert accepted
    request = await _received(communicator)
    assert isinstance(request, HandshakeRequest)
    answer = encode(HandshakeResponse(1, request.handshake_data), MESSAGE)
    await communicator.send_to(bytes_data=envelope_bytes(answer, CLIENT, CID))
    assert isinstance(await _received(communicator), ClientConnectionSuccess)
    return communicator


def _signed(message: Message) -> bytes:
    return envelope_bytes(encode(message, MESSAGE), CLIENT, CID)


async def test_history_pages_beyond_the_pace_are_429(gateway: None) -> None:
    communicator = await _connected()
    for message_id in range(1, 6):
        request = QuantumInfoRequest(message_id, CLIENT.public_key, 0, QueryOrder.ASC, 10)
        await communicator.send_to(bytes_data=_signed(request))
    answers = [await _received(communicator) for _ in range(5)]
    assert [type(a).__name__ for a in answers[:3]] == ["QuantumInfoResponse"] * 3
    for answer in answers[3:]:
        assert isinstance(answer, ResultMessage)
        assert answer.status == StatusCode.TOO_MANY_REQUESTS
        assert "history: at most 100 items a second" in answer.description
    assert len(pages_read) == 3, "refused pages cost no database read"
    Clock.now += 3.0  # the bucket is full again: 300 items
    small = QuantumInfoRequest(9, CLIENT.public_key, 0, QueryOrder.ASC, 10)
    big = QuantumInfoRequest(10, CLIENT.public_key, 0, QueryOrder.ASC, 1_000)
    for request in (small, big):
        await communicator.send_to(bytes_data=_signed(request))
    assert isinstance(await _received(communicator), QuantumInfoResponse)
    answer = await _received(communicator)
    assert isinstance(answer, ResultMessage), "a big page costs more than the 200 items left"
    await communicator.disconnect()


async def test_an_unregistered_key_is_paced_until_a_deposit_registers_it(gateway: None) -> None:
    communicator = await _connected()
    for nonce in range(1, 5):
        payment = PaymentRequest(nonce, CLIENT.public_key, nonce, "USD", 1, PAYEE.public_key)
        await communicator.send_to(bytes_data=_signed(payment))
    refused = [await _received(communicator) for _ in range(2)]
    assert [(r.message_id, r.status) for r in refused] == [  # type: ignore[union-attr]
        (3, StatusCode.TOO_MANY_REQUESTS),
        (4, StatusCode.TOO_MANY_REQUESTS),
    ]
    assert refused[0].description == UNREGISTERED_TEXT  # type: ignore[union-attr]
    await _registered()
    Clock.now += 1.0  # one token back: the next request looks again, and finds the account
    for nonce in range(10, 14):
        payment = PaymentRequest(nonce, CLIENT.public_key, nonce, "USD", 1, PAYEE.public_key)
        await communicator.send_to(bytes_data=_signed(payment))
    assert await communicator.receive_nothing(timeout=0.3), "no refusal once registered"
    await communicator.disconnect()


async def _registered() -> None:
    from asgiref.sync import sync_to_async

    await sync_to_async(AccountRecord.objects.create)(id=1, public_key=CLIENT.public_key, nonce=0)


async def test_a_quantum_result_lifts_the_pace_before_the_database_shows_the_account() -> None:
    """The database shows an account only from the next snapshot on: a client told its
    deposit is final that then sends its first requests would be paced (seen in the cluster
    tests: 429 "this key has no account yet" right after a funded deposit)."""
    consumer = GatewayConsumer(history_page=history_page)
    sent: list[bytes] = []

    async def send(bytes_data: bytes) -> None:
        sent.append(bytes_data)

    consumer.send = send  # type: ignore[method-assign]
    await consumer.deliver(result_message(5, StatusCode.BAD_REQUEST, "no account"), signed=False)
    assert not consumer.account_seen, "a rejection says nothing of an account"
    notification = QuantumResultMessage(
        0, StatusCode.SUCCESS, "", 7, bytes(32), PayloadProof(bytes(32), ()), (), None
    )
    await consumer.deliver(encode(notification, MESSAGE), signed=False)
    assert consumer.account_seen and len(sent) == 2
