"""The shared session: its signed challenge, its deadline, and nodes not yet initialized.

Goal: an unauthenticated peer cannot hold a connection (and its place under the per-address
cap) for as long as it likes; one that answers in time is not affected. Before the deadline,
such a connection stayed open until the peer left. The challenge is signed by the node for its
constellation (the id of its genesis settings); a node with no settings has no id to sign
under, so it closes every connection at once (NOT_INITIALIZED_CLOSE_CODE) without a challenge.
Method: a minimal consumer on the real `ClientSessionMixin`, driven by Channels'
WebsocketCommunicator, with the deadline shortened and the settings in the real test database.
"""

from __future__ import annotations

from typing import Any

import pytest
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.testing import WebsocketCommunicator

from quanta.consumers import client_session
from quanta.consumers.client_session import (
    HANDSHAKE_TIMEOUT_CLOSE_CODE,
    NOT_INITIALIZED_CLOSE_CODE,
    ClientSessionMixin,
)
from quanta.core.envelopes import envelope_bytes, signature_valid
from quanta.core.signatures import constellation_id_of
from quanta.core.testing import default_settings, keypair
from quanta.core.xdr.codec import decode, encode
from quanta.core.xdr.schema import (
    MESSAGE,
    HandshakeRequest,
    HandshakeResponse,
    MessageEnvelope,
)
from quanta.node.persistence import settings_record_persist
from quanta.tests.db_threads import thread_connections_closed  # noqa: F401 (autouse)

pytestmark = pytest.mark.django_db(transaction=True)

NODE, CLIENT = keypair(240), keypair(241)
GENESIS = default_settings([NODE])
CONSTELLATION_ID = constellation_id_of(GENESIS)


class Session(ClientSessionMixin, AsyncWebsocketConsumer):  # type: ignore[misc]
    async def connect(self) -> None:
        await self.open_session()

    async def handshake(self, data: bytes) -> None:
        self.public_key = CLIENT.public_key  # any answer binds, for this test

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        await self.receive_signed(bytes_data)


@pytest.fixture
def node(settings: Any) -> None:
    """The node's key; no settings persisted (not initialized)."""
    settings.NODE_SECRET_SEED = NODE.secret


@pytest.fixture
def short_deadline(node: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """An initialized node whose handshake deadline is short."""
    settings_record_persist(apex=1, settings=GENESIS)
    monkeypatch.setattr(client_session, "HANDSHAKE_DEADLINE_S", 0.3)


async def connected() -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(Session.as_asgi(), "/ws/")
    accepted, _ = await communicator.connect(timeout=5)
    assert accepted
    return communicator


async def challenged() -> tuple[WebsocketCommunicator, bytes]:
    communicator = await connected()
    data = await communicator.receive_from(timeout=5)
    envelope = decode(MessageEnvelope, data)
    assert envelope.signature.signer == NODE.public_key
    assert signature_valid(data, envelope, CONSTELLATION_ID)
    assert isinstance(envelope.message, HandshakeRequest)
    return communicator, bytes(envelope.message.handshake_data)


async def test_a_silent_connection_is_closed_at_the_deadline(short_deadline: None) -> None:
    communicator, _ = await challenged()
    closed = await communicator.receive_output(timeout=5)
    assert closed == {"type": "websocket.close", "code": HANDSHAKE_TIMEOUT_CLOSE_CODE}


async def test_an_answered_challenge_keeps_the_connection(short_deadline: None) -> None:
    communicator, challenge = await challenged()
    answer = encode(HandshakeResponse(1, challenge), MESSAGE)
    await communicator.send_to(bytes_data=envelope_bytes(answer, CLIENT, CONSTELLATION_ID))
    assert await communicator.receive_nothing(timeout=0.6)  # twice the deadline: still open
    await communicator.disconnect()


async def test_a_node_without_settings_closes_at_once_without_a_challenge(node: None) -> None:
    communicator = await connected()
    closed = await communicator.receive_output(timeout=5)
    assert closed == {"type": "websocket.close", "code": NOT_INITIALIZED_CLOSE_CODE}
