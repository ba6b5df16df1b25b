"""WebSocket handshakes obey ALLOWED_HOSTS as HTTP requests do.

Goal: a page of another site cannot open a node's WebSocket routes in a visitor's browser
(browsers send its Origin), nor can a foreign Host name reach them; programs that send no
Origin (the Python client, the herald link) still connect. Method: the guard in front of a
consumer that accepts every connection, driven by Channels' WebsocketCommunicator with the
test settings' ALLOWED_HOSTS (127.0.0.1, localhost); a refusal is a close before accept, which
daphne answers with HTTP 403.
"""

from __future__ import annotations

import pytest
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.testing import WebsocketCommunicator

from constellation_site.websocket_guard import WebsocketHostGuard

APP = WebsocketHostGuard(AsyncWebsocketConsumer.as_asgi())


async def connects(headers: list[tuple[bytes, bytes]]) -> bool:
    communicator = WebsocketCommunicator(APP, "/ws/", headers=headers)
    connected, _ = await communicator.connect(timeout=5)
    if connected:
        await communicator.disconnect()
    return bool(connected)


@pytest.mark.parametrize(
    "headers",
    [
        [],
        [(b"host", b"127.0.0.1:8000")],
        [(b"host", b"localhost:8000"), (b"origin", b"http://localhost:8000")],
        [(b"host", b"127.0.0.1:8000"), (b"origin", b"https://127.0.0.1")],
    ],
)
async def test_programs_and_pages_of_the_node_connect(headers: list[tuple[bytes, bytes]]) -> None:
    assert await connects(headers)


@pytest.mark.parametrize(
    "headers",
    [
        [(b"host", b"127.0.0.1:8000"), (b"origin", b"http://evil.example")],
        [(b"host", b"127.0.0.1:8000"), (b"origin", b"http://127.0.0.1.evil.example:8000")],
        [(b"host", b"127.0.0.1:8000"), (b"origin", b"null")],
        [(b"host", b"rebound.example:8000")],
    ],
)
async def test_foreign_origins_and_hosts_are_refused(headers: list[tuple[bytes, bytes]]) -> None:
    assert not await connects(headers)
