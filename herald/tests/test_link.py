"""The auditor's herald link (`HeraldLink`) against a stand-in for alpha's endpoint.

Goal: show the link's side of the herald protocol: it answers alpha's challenge with this
node's key and its current cursor; it hands each quanta frame to its own engine undecoded (a
`quanta.batch` event with the link's reply channel) and sends what the engine answers on that
channel back to alpha signed with its key (results batches; a resend request as a quanta
cursor request); a rising alpha's catchup request is answered from the persisted quanta; when
alpha drops the connection it connects and handshakes again; a handshake that is not signed
by the alpha key it expects, or does not verify under the constellation id it expects, gets
no answer: the link closes that connection.
Method: a `websockets` server on 127.0.0.1 (port 0) plays alpha's endpoint and hands each
connection to the test; the link runs as a task on Channels' in-memory layer; the test plays
the engine (reads the engine channel, answers on the reply channel). Persisted quanta come
from a real engine (`chronicler.tests.builders.Chain`) in the real test database.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from contextlib import suppress
from typing import Any

import pytest
from channels.db import database_sync_to_async
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from chronicler.tests.builders import Chain
from herald.core.protocol import AlphaExpected
from herald.link import HeraldLink
from herald.tests.conftest import ALPHA, AUDITOR, STRANGER, TIMEOUT_S
from quanta import events
from quanta.core.envelopes import envelope_bytes, signature_valid
from quanta.core.keys import KeyPair
from quanta.core.signatures import NO_CONSTELLATION
from quanta.core.xdr.codec import decode, encode
from quanta.core.xdr.schema import (
    MESSAGE,
    AuditorHandshakeResponse,
    AuditorResult,
    CatchupQuantaBatch,
    CatchupQuantaBatchRequest,
    HandshakeRequest,
    Message,
    MessageEnvelope,
    NodeSignature,
    QuantaBatch,
    QuantaCursorRequest,
    ResultsBatch,
)
from quanta.groups import ENGINE_CHANNEL
from quanta.node.persistence import quanta_persist
from quanta.selectors import constellation_id

CURSOR = 7
"""The apex the auditor's node stands at (what its link reports)."""
CID = bytes(range(32))
"""The constellation id alpha signs under (the link is told to expect it)."""
EXPECTED = AlphaExpected(ALPHA.public_key, CID)

# The link reads the node's constellation id (what it signs under) from the database.
pytestmark = pytest.mark.django_db(transaction=True)


def from_alpha(message: Message, keypair: KeyPair = ALPHA) -> bytes:
    """Returns a frame of `message` signed by `keypair` under the constellation's id."""
    return envelope_bytes(encode(message, MESSAGE), keypair, CID)


class FakeAlpha:
    """Alpha's herald endpoint, as far as the link can tell: hands each connection over."""

    def __init__(self) -> None:
        self.connections: asyncio.Queue[ServerConnection] = asyncio.Queue()

    async def handler(self, connection: ServerConnection) -> None:
        await self.connections.put(connection)
        await connection.wait_closed()

    async def accept(self) -> ServerConnection:
        """Returns the next connection of the link, once it answered a fresh challenge."""
        async with asyncio.timeout(TIMEOUT_S):
            connection = await self.connections.get()
        challenge = secrets.token_bytes(32)
        await connection.send(from_alpha(HandshakeRequest(0, challenge)))
        answer = await from_auditor(connection)
        assert isinstance(answer, AuditorHandshakeResponse)
        assert bytes(answer.handshake_data) == challenge
        assert (answer.quanta_cursor, answer.result_cursor) == (CURSOR, CURSOR)
        return connection


async def from_auditor(connection: ServerConnection) -> Message:
    """Returns the message of the link's next frame, checking the auditor signed it."""
    async with asyncio.timeout(TIMEOUT_S):
        data = await connection.recv()
    assert isinstance(data, bytes)
    envelope = decode(MessageEnvelope, data)
    assert envelope.signature.signer == AUDITOR.public_key
    # A node without settings signs under NO_CONSTELLATION, one with under its id.
    own_id = await database_sync_to_async(constellation_id)() or NO_CONSTELLATION
    assert signature_valid(data, envelope, own_id)
    return envelope.message


async def engine_event(layer: Any) -> Any:
    """Returns the next message on the engine channel (bounded wait)."""
    async with asyncio.timeout(TIMEOUT_S):
        return await layer.receive(ENGINE_CHANNEL)


@pytest.fixture
async def alpha(layer: Any) -> AsyncIterator[FakeAlpha]:
    """Alpha's endpoint on a free port, with the auditor's link connecting to it."""
    fake = FakeAlpha()
    async with serve(fake.handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        url = f"ws://127.0.0.1:{port}/ws/herald/"
        link = HeraldLink(url, AUDITOR, layer, lambda: CURSOR, lambda: EXPECTED)
        task = asyncio.create_task(link.run_forever())
        yield fake
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task


async def test_the_link_relays_batches_to_its_engine_and_answers_back_to_alpha(
    alpha: FakeAlpha, layer: Any
) -> None:
    connection = await alpha.accept()
    frame = from_alpha(QuantaBatch(0, (), 9))
    await connection.send(frame)
    event = await engine_event(layer)
    assert event["type"] == "quanta.batch" and event["batch"] == frame  # Undecoded.
    results = ResultsBatch(0, (AuditorResult(8, NodeSignature(1, bytes(64)), None),))
    await layer.send(event["reply"], events.herald_results(encode(results, MESSAGE)))
    assert await from_auditor(connection) == results
    await layer.send(event["reply"], events.herald_resend(5))
    assert await from_auditor(connection) == QuantaCursorRequest(0, 5, 5)


async def test_the_link_handshakes_again_after_alpha_dropped_it(
    alpha: FakeAlpha, layer: Any
) -> None:
    first = await alpha.accept()
    await first.close()
    down = await engine_event(layer)  # The engine hears at once that alpha is lost.
    assert down["type"] == "quanta.link_down" and "herald link" in down["reason"], down
    second = await alpha.accept()  # Asserts the new handshake (after the link's backoff).
    frame = from_alpha(QuantaBatch(0, (), 3))
    await second.send(frame)
    assert (await engine_event(layer))["batch"] == frame


async def test_a_rising_alpha_s_catchup_request_is_answered_from_the_persisted_quanta(
    alpha: FakeAlpha, layer: Any
) -> None:
    chain = Chain()  # Genesis and three deposits, all final: apex 1 to 4.
    for cursor in range(3):
        chain.fund(AUDITOR, ("USD", 1000 + cursor))
    rows = chain.take_rows()
    await database_sync_to_async(quanta_persist)(rows=rows)
    connection = await alpha.accept()
    await connection.send(from_alpha(CatchupQuantaBatchRequest(0, 2)))
    answer = await from_auditor(connection)
    assert isinstance(answer, CatchupQuantaBatch) and not answer.has_more
    assert [q.quantum.apex for q in answer.quanta] == [3, 4]
    assert [encode(q.quantum) for q in answer.quanta] == [r.data for r in rows[2:]]


async def _handshake_gets_no_answer(connection: ServerConnection, frame: bytes) -> None:
    await connection.send(frame)
    with pytest.raises(ConnectionClosed):
        async with asyncio.timeout(TIMEOUT_S):
            await connection.recv()


async def test_a_handshake_not_signed_by_alpha_gets_no_answer(alpha: FakeAlpha) -> None:
    """Goal: someone standing in for alpha's address (a `ws://` wire) is not answered: not
    with another key, not with alpha's key and another's signature, not under another id."""
    challenge = HandshakeRequest(0, secrets.token_bytes(32))
    impostor = from_alpha(challenge, STRANGER)
    forged = impostor[:-96] + ALPHA.public_key + impostor[-64:]
    other_id = envelope_bytes(encode(challenge, MESSAGE), ALPHA, NO_CONSTELLATION)
    for frame in (impostor, forged, other_id):
        async with asyncio.timeout(TIMEOUT_S):
            connection = await alpha.connections.get()
        await _handshake_gets_no_answer(connection, frame)
    await alpha.accept()  # The real alpha is still answered.


@pytest.mark.parametrize(
    ("expected", "refused"),
    [
        (AlphaExpected(ALPHA.public_key, None), "another key"),
        (AlphaExpected(None, CID), "a bad signature"),
    ],
)
async def test_before_settings_the_pins_are_checked(
    layer: Any, expected: AlphaExpected, refused: str
) -> None:
    """Goal: before settings, CONSTELLATION_ALPHA_KEY alone refuses another signer, and
    CONSTELLATION_GENESIS_ID alone a signature that does not verify under it."""
    fake = FakeAlpha()
    challenge = HandshakeRequest(0, bytes(32))
    frame = from_alpha(challenge, STRANGER) if refused == "another key" else b""
    if refused == "a bad signature":
        frame = from_alpha(challenge)[:-64] + bytes(64)
    async with serve(fake.handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        url = f"ws://127.0.0.1:{port}/ws/herald/"
        task = asyncio.create_task(
            HeraldLink(url, AUDITOR, layer, lambda: CURSOR, lambda: expected).run_forever()
        )
        try:
            async with asyncio.timeout(TIMEOUT_S):
                connection = await fake.connections.get()
            await _handshake_gets_no_answer(connection, frame)
            await fake.accept()
        finally:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task
