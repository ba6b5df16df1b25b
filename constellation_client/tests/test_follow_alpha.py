"""Goal: a client made by `connect_to_alpha` follows an alpha replacement on its own: after a
connection loss or alpha's signed "replaced" answer (450) it asks its nodes where alpha is,
reconnects to the alpha the newest verified settings name, in bounded rounds, and re-sends
nothing (the request in flight at a loss ends with its outcome unknown; the 450 is returned).

Method: `ConstellationClient` on in-memory sockets (test_client.Socket): the test plays the old
and the new alpha; `alpha_head` (the verified chain heads of the nodes) and the WebSocket
`connect` are replaced by stubs that return the test's heads and sockets.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pytest
from websockets.exceptions import InvalidMessage

from constellation_client import client as client_module
from constellation_client.client import FOLLOW_ATTEMPTS, ConstellationClient
from constellation_client.tests.builders import trusted
from constellation_client.tests.test_client import ACCOUNT, PAIRS, USER, Socket, sent_request
from constellation_client.wire import (
    Constellation,
    ConstellationClientError,
    UnverifiedOutcomeError,
)
from quanta.core.status import StatusCode
from quanta.core.testing import default_settings
from quanta.core.xdr.codec import decode
from quanta.core.xdr.schema import (
    ClientConnectionSuccess,
    HandshakeRequest,
    HandshakeResponse,
    MessageEnvelope,
    ResultMessage,
)

OLD, NEW, OTHER = PAIRS
ADDRESSES = {OLD.public_key: "http://old", NEW.public_key: "http://new", OTHER.public_key: "x"}
REPLACED = "node is Running, not Ready: replaced by the alpha at http://new: restart it"


def head(version: int, alpha_first: list[Any]) -> Constellation:
    addresses = [ADDRESSES[pair.public_key] for pair in alpha_first]
    settings = default_settings(alpha_first, version=version, addresses=addresses)
    return dataclasses.replace(trusted(alpha_first), version=version, settings=settings)


OLD_HEAD = head(1, [OLD, NEW, OTHER])
NEW_HEAD = head(2, [NEW, OLD, OTHER])


class LossySocket(Socket):
    """A socket whose connection can be lost (its reader then fails)."""

    def lose(self) -> None:
        self.incoming.put_nowait(b"")

    async def recv(self) -> bytes:
        data = await self.incoming.get()
        if not data:
            raise InvalidMessage("connection reset")
        return data


class Nodes:
    """Stubs of the nodes: the head they serve and the new alpha's WebSocket."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, served: Constellation | None) -> None:
        self.served = served
        self.asked = 0
        self.connected: list[str] = []
        self.new_alpha = LossySocket()
        monkeypatch.setattr(client_module, "alpha_head", self.alpha_head)
        monkeypatch.setattr(client_module, "connect", self.connect)
        monkeypatch.setattr(client_module, "FOLLOW_BACKOFF_FIRST_S", 0.0)

    async def alpha_head(self, urls: Any, pin: bytes, timeout_s: float) -> Constellation:
        self.asked += 1
        assert tuple(urls) == ("http://old", "http://x")
        if self.served is None:
            raise ConstellationClientError("no node told where alpha is")
        return self.served

    async def connect(self, ws_url: str, **options: Any) -> LossySocket:
        self.connected.append(ws_url)
        self.new_alpha.push(HandshakeRequest(0, bytes(32)), signer=NEW)
        self.new_alpha.push(ClientConnectionSuccess(1, ACCOUNT), signer=NEW)
        return self.new_alpha


def following_client(socket: Socket) -> ConstellationClient:
    """A client of the old alpha as `connect_to_alpha` leaves it."""
    client = ConstellationClient(socket, USER, OLD_HEAD)  # type: ignore[arg-type]
    client.account_id = ACCOUNT
    client.request_timeout_s = 2
    client._follow_urls = ("http://old", "http://x")
    client._reader = asyncio.create_task(client._read_forever())
    return client


async def answered_by_the_new_alpha(client: ConstellationClient, nodes: Nodes) -> int:
    """Pays once more: the request goes to the new alpha (after its handshake answer, nothing
    else was sent to it) and its signed answer counts; returns the request's nonce."""
    paying = asyncio.create_task(client.pay(OTHER.public_key, "USD", 5))
    handshake = decode(MessageEnvelope, await nodes.new_alpha.sent.get()).message
    assert isinstance(handshake, HandshakeResponse)
    request = await sent_request(nodes.new_alpha)
    nodes.new_alpha.push(ResultMessage(request.message_id, StatusCode.FORBIDDEN, "no"), NEW)
    result = await paying
    assert result.status == StatusCode.FORBIDDEN and result.attested_by == "alpha"
    assert nodes.connected == ["ws://new/ws/"] and client.constellation is NEW_HEAD
    return int(request.nonce)


async def test_after_a_connection_loss_the_client_reconnects_to_the_alpha_the_settings_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    nodes = Nodes(monkeypatch, NEW_HEAD)
    old = LossySocket()
    client = following_client(old)
    paying = asyncio.create_task(client.pay(OTHER.public_key, "USD", 5))
    lost = await sent_request(old)
    old.lose()
    with pytest.raises(UnverifiedOutcomeError, match=f"nonce {lost.nonce}"):
        await paying  # in flight at the loss: not re-sent, its outcome unknown
    assert await answered_by_the_new_alpha(client, nodes) != lost.nonce
    assert nodes.new_alpha.sent.empty() and old.sent.empty()
    await client.close()


async def test_a_replaced_answer_is_returned_and_the_client_follows_the_new_alpha(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    nodes = Nodes(monkeypatch, NEW_HEAD)
    old = LossySocket()
    client = following_client(old)
    paying = asyncio.create_task(client.pay(OTHER.public_key, "USD", 5))
    refused = await sent_request(old)
    old.push(ResultMessage(refused.message_id, StatusCode.INVALID_STATE, REPLACED), OLD)
    result = await paying
    assert result.status == StatusCode.INVALID_STATE and "replaced" in result.description
    await answered_by_the_new_alpha(client, nodes)
    assert old.sent.empty()  # nothing more went to the replaced alpha
    await client.close()


async def test_following_is_bounded_and_a_later_request_tries_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    nodes = Nodes(monkeypatch, None)  # no node answers
    old = LossySocket()
    client = following_client(old)
    old.lose()
    assert client._reader is not None
    await client._reader  # it took the loss and started following
    with pytest.raises(ConstellationClientError, match="alpha not reached"):
        await client.pay(OTHER.public_key, "USD", 5)
    assert nodes.asked == FOLLOW_ATTEMPTS
    nodes.served = NEW_HEAD  # the replacement is in force now
    await answered_by_the_new_alpha(client, nodes)
    assert nodes.asked == FOLLOW_ATTEMPTS + 1
    await client.close()


async def test_a_client_of_one_node_does_not_follow(monkeypatch: pytest.MonkeyPatch) -> None:
    nodes = Nodes(monkeypatch, NEW_HEAD)
    old = LossySocket()
    client = ConstellationClient(old, USER, OLD_HEAD)  # type: ignore[arg-type]
    client._reader = asyncio.create_task(client._read_forever())
    old.lose()
    await client._reader
    with pytest.raises(ConstellationClientError, match="connection reset"):
        await client.pay(OTHER.public_key, "USD", 5)
    assert nodes.asked == 0 and nodes.connected == []
    await client.close()
