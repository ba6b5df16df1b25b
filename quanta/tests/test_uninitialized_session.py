"""Frames sent to a node that is not initialized are dropped, not a crash.

Goal: a node with no settings closes every connection at once (4450), but a frame the peer
sent before that close arrives still went through the handshake, which needs the constellation
id the node does not have: an AttributeError and a traceback per connection, from anyone, on a
fresh node (found with real processes: 5 of 5 connections on `/ws/` and `/ws/chronicler/`).
Method: the real `ClientSessionMixin` with its own handshake driven by
Channels' WebsocketCommunicator with no settings in the test database.
"""

from __future__ import annotations

import pytest
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.testing import WebsocketCommunicator

from quanta.consumers.client_session import NOT_INITIALIZED_CLOSE_CODE, ClientSessionMixin
from quanta.tests.test_client_session import node, thread_connections_closed

pytestmark = pytest.mark.django_db(transaction=True)
__all__ = ["node", "thread_connections_closed"]  # fixtures


class Session(ClientSessionMixin, AsyncWebsocketConsumer):  # type: ignore[misc]
    """The session with its own handshake (the gateway's and the chronicler's)."""

    async def connect(self) -> None:
        await self.open_session()

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        await self.receive_signed(bytes_data)


async def test_a_frame_before_the_close_is_dropped(node: None) -> None:
    communicator = WebsocketCommunicator(Session.as_asgi(), "/ws/")
    accepted, _ = await communicator.connect(timeout=5)
    assert accepted
    await communicator.send_to(bytes_data=bytes(200))
    closed = await communicator.receive_output(timeout=5)
    assert closed == {"type": "websocket.close", "code": NOT_INITIALIZED_CLOSE_CODE}
    assert await communicator.receive_nothing(timeout=0.2)
    await communicator.disconnect()
