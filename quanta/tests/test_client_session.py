"""The shared session closes a connection that never answers the handshake challenge.

Goal: an unauthenticated peer cannot hold a connection (and its place under the per-address
cap) for as long as it likes; one that answers in time is not affected. Before the deadline,
such a connection stayed open until the peer left. Method: a minimal consumer on the real
`ClientSessionMixin`, driven by Channels' WebsocketCommunicator, with the deadline shortened.
"""

from __future__ import annotations

from typing import Any

import pytest
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.testing import WebsocketCommunicator

from quanta.consumers import client_session
from quanta.consumers.client_session import HANDSHAKE_TIMEOUT_CLOSE_CODE, ClientSessionMixin
from quanta.core.envelopes import envelope_bytes
from quanta.core.testing import keypair
from quanta.core.xdr.codec import decode, encode
from quanta.core.xdr.schema import (
    MESSAGE,
    HandshakeRequest,
    HandshakeResponse,
    MessageEnvelope,
)

NODE, CLIENT = keypair(240), keypair(241)


class Session(ClientSessionMixin, AsyncWebsocketConsumer):  # type: ignore[misc]
    async def connect(self) -> None:
        await self.open_session()

    async def handshake(self, data: bytes) -> None:
        self.public_key = CLIENT.public_key  # any answer binds, for this test

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        await self.receive_signed(bytes_data)


@pytest.fixture
def short_deadline(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    settings.NODE_SECRET_SEED = NODE.secret
    monkeypatch.setattr(client_session, "HANDSHAKE_DEADLINE_S", 0.3)


async def challenged() -> tuple[WebsocketCommunicator, bytes]:
    communicator = WebsocketCommunicator(Session.as_asgi(), "/ws/")
    connected, _ = await communicator.connect(timeout=5)
    assert connected
    request = decode(MessageEnvelope, await communicator.receive_from(timeout=5)).message
    assert isinstance(request, HandshakeRequest)
    return communicator, bytes(request.handshake_data)


async def test_a_silent_connection_is_closed_at_the_deadline(short_deadline: None) -> None:
    communicator, _ = await challenged()
    closed = await communicator.receive_output(timeout=5)
    assert closed == {"type": "websocket.close", "code": HANDSHAKE_TIMEOUT_CLOSE_CODE}


async def test_an_answered_challenge_keeps_the_connection(short_deadline: None) -> None:
    communicator, challenge = await challenged()
    answer = encode(HandshakeResponse(1, challenge), MESSAGE)
    await communicator.send_to(bytes_data=envelope_bytes(answer, CLIENT))
    assert await communicator.receive_nothing(timeout=0.6)  # twice the deadline: still open
    await communicator.disconnect()
