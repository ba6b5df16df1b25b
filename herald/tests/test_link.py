"""The auditor's herald link (`HeraldLink`) against a stand-in for alpha's endpoint.

Goal: show the link's side of the herald protocol: it answers alpha's challenge with this
node's key and its current cursor; it hands each quanta frame to its own engine undecoded (a
`quanta.batch` event with the link's reply channel) and sends what the engine answers on that
channel back to alpha signed with its key (results batches; a resend request as a quanta cursor
request), under its constellation's id, or under NO_CONSTELLATION while it holds no genesis
settings (a fresh auditor); a rising alpha's catchup request is answered from the persisted
quanta; when alpha drops the connection it connects and handshakes again; a handshake that is
not signed by the alpha key it expects, or does not verify under the constellation id it
expects, gets no answer: the link closes that connection.
Method: a `websockets` server on 127.0.0.1 (port 0) plays alpha's endpoint and hands each
connection to the test; the link runs as a task on Channels' in-memory layer; the test plays
the engine (reads the engine channel, answers on the reply channel). Persisted quanta come
from a real engine (`chronicler.tests.builders.Chain`) in the real test database.
"""

from __future__ import annotations

import asyncio
import logging
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
from quanta.core.signatures import NO_CONSTELLATION, constellation_id_of
from quanta.core.testing import default_settings
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
from quanta.node.persistence import quanta_persist, settings_record_persist

pytestmark = pytest.mark.django_db(transaction=True)

CURSOR = 7
"""The apex the auditor's node stands at (what its link reports)."""
GENESIS = default_settings([ALPHA, AUDITOR])
CONSTELLATION_ID = constellation_id_of(GENESIS)
"""The id of the auditor's constellation, once its genesis settings are persisted."""


class FakeAlpha:
    """Alpha's herald endpoint, as far as the link can tell: hands each connection over."""

    def __init__(self) -> None:
        self.connections: asyncio.Queue[ServerConnection] = asyncio.Queue()
        self.cursor = CURSOR
        """The cursor the auditor's node reports."""
        self.constellation_id = CONSTELLATION_ID
        """The id alpha signs under and expects the auditor's frames to be signed under."""

    async def handler(self, connection: ServerConnection) -> None:
        await self.connections.put(connection)
        await connection.wait_closed()

    async def accept(self) -> ServerConnection:
        """Returns the next connection of the link, once it answered a fresh challenge."""
        async with asyncio.timeout(TIMEOUT_S):
            connection = await self.connections.get()
        challenge = secrets.token_bytes(32)
        await connection.send(self.signed(HandshakeRequest(0, challenge)))
        answer = await self.from_auditor(connection)
        assert isinstance(answer, AuditorHandshakeResponse)
        assert bytes(answer.handshake_data) == challenge
        assert (answer.quanta_cursor, answer.result_cursor) == (self.cursor, self.cursor)
        return connection

    def signed(self, message: Message) -> bytes:
        """Returns a frame of `message` signed by alpha for the constellation."""
        return envelope_bytes(encode(message, MESSAGE), ALPHA, self.constellation_id)

    def expected(self) -> AlphaExpected:
        """What the auditor's link expects of alpha (as `run_herald_link` gives it): alpha's
        key, and the id alpha signs under unless the auditor cannot know it yet (fresh)."""
        known = None if self.constellation_id == NO_CONSTELLATION else self.constellation_id
        return AlphaExpected(ALPHA.public_key, known)

    async def from_auditor(self, connection: ServerConnection) -> Message:
        """Returns the message of the link's next frame, checking the auditor signed it under
        `constellation_id`."""
        async with asyncio.timeout(TIMEOUT_S):
            data = await connection.recv()
        assert isinstance(data, bytes)
        envelope = decode(MessageEnvelope, data)
        assert envelope.signature.signer == AUDITOR.public_key
        assert signature_valid(data, envelope, self.constellation_id)
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
        link = HeraldLink(url, AUDITOR, layer, lambda: fake.cursor, fake.expected)
        task = asyncio.create_task(link.run_forever())
        yield fake
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task


@pytest.fixture
def genesis() -> None:
    """The auditor's node holds its constellation's genesis settings."""
    settings_record_persist(apex=1, settings=GENESIS)


async def test_the_link_relays_batches_to_its_engine_and_answers_back_to_alpha(
    genesis: None, alpha: FakeAlpha, layer: Any
) -> None:
    connection = await alpha.accept()
    frame = alpha.signed(QuantaBatch(0, (), 9))
    await connection.send(frame)
    event = await engine_event(layer)
    assert event["type"] == "quanta.batch" and event["batch"] == frame  # Undecoded.
    results = ResultsBatch(0, (AuditorResult(8, NodeSignature(1, bytes(64)), None),))
    await layer.send(event["reply"], events.herald_results(encode(results, MESSAGE)))
    assert await alpha.from_auditor(connection) == results
    await layer.send(event["reply"], events.herald_resend(5))
    assert await alpha.from_auditor(connection) == QuantaCursorRequest(0, 5, 5)


async def test_a_fresh_link_signs_under_no_constellation_until_it_holds_the_genesis(
    alpha: FakeAlpha, layer: Any
) -> None:
    # A fresh auditor (no quantum, no settings) cannot know the id yet: NO_CONSTELLATION.
    alpha.cursor, alpha.constellation_id = 0, NO_CONSTELLATION
    connection = await alpha.accept()
    await connection.send(alpha.signed(QuantaBatch(0, (), 1)))
    event = await engine_event(layer)
    results = ResultsBatch(0, (AuditorResult(1, NodeSignature(1, bytes(64)), None),))
    await layer.send(event["reply"], events.herald_results(encode(results, MESSAGE)))
    assert await alpha.from_auditor(connection) == results
    # Its engine persisted the genesis quantum's settings: from now on, the constellation's id.
    await database_sync_to_async(settings_record_persist)(apex=1, settings=GENESIS)
    alpha.constellation_id = CONSTELLATION_ID
    await layer.send(event["reply"], events.herald_results(encode(results, MESSAGE)))
    assert await alpha.from_auditor(connection) == results


async def test_the_link_handshakes_again_after_alpha_dropped_it(
    genesis: None, alpha: FakeAlpha, layer: Any
) -> None:
    first = await alpha.accept()
    await first.close()
    down = await engine_event(layer)  # The engine hears at once that alpha is lost.
    assert down["type"] == "quanta.link_down" and "herald link" in down["reason"], down
    second = await alpha.accept()  # Asserts the new handshake (after the link's backoff).
    frame = alpha.signed(QuantaBatch(0, (), 3))
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
    await database_sync_to_async(settings_record_persist)(apex=1, settings=chain.settings)
    alpha.constellation_id = chain.constellation_id
    connection = await alpha.accept()
    await connection.send(alpha.signed(CatchupQuantaBatchRequest(0, 2)))
    # First its engine persists what it signed (its signatures left before its rows did).
    ask = await engine_event(layer)
    assert ask["type"] == "quanta.flush_ask", ask
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.3):  # A bounded look: nothing is answered before.
            await connection.recv()
    await layer.send(ask["reply"], events.herald_flushed())
    answer = await alpha.from_auditor(connection)
    assert isinstance(answer, CatchupQuantaBatch) and not answer.has_more
    assert [q.quantum.apex for q in answer.quanta] == [3, 4]
    assert [encode(q.quantum) for q in answer.quanta] == [r.data for r in rows[2:]]


async def _handshake_gets_no_answer(connection: ServerConnection, frame: bytes) -> None:
    await connection.send(frame)
    with pytest.raises(ConnectionClosed):
        async with asyncio.timeout(TIMEOUT_S):
            await connection.recv()


async def test_a_handshake_not_signed_by_alpha_gets_no_answer(
    genesis: None, alpha: FakeAlpha
) -> None:
    """Goal: someone standing in for alpha's address (a `ws://` wire) is not answered: not
    with another key, not with alpha's key and another's signature, not under another id."""
    challenge = encode(HandshakeRequest(0, secrets.token_bytes(32)), MESSAGE)
    impostor = envelope_bytes(challenge, STRANGER, CONSTELLATION_ID)
    forged = impostor[:-96] + ALPHA.public_key + impostor[-64:]
    other_id = envelope_bytes(challenge, ALPHA, NO_CONSTELLATION)
    for frame in (impostor, forged, other_id):
        async with asyncio.timeout(TIMEOUT_S):
            connection = await alpha.connections.get()
        await _handshake_gets_no_answer(connection, frame)
    await alpha.accept()  # The real alpha is still answered.


@pytest.mark.parametrize(
    ("expected", "signer", "valid"),
    [
        (AlphaExpected(ALPHA.public_key, None), STRANGER, True),  # CONSTELLATION_ALPHA_KEY
        (AlphaExpected(None, CONSTELLATION_ID), ALPHA, False),  # CONSTELLATION_GENESIS_ID
    ],
)
async def test_before_settings_the_pins_are_checked(
    layer: Any, expected: AlphaExpected, signer: KeyPair, valid: bool
) -> None:
    """Goal: before settings, CONSTELLATION_ALPHA_KEY alone refuses another signer, and
    CONSTELLATION_GENESIS_ID alone a signature that does not verify under it."""
    fake = FakeAlpha()
    frame = envelope_bytes(
        encode(HandshakeRequest(0, bytes(32)), MESSAGE), signer, CONSTELLATION_ID
    )
    frame = frame if valid else frame[:-64] + bytes(64)
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
            async with asyncio.timeout(TIMEOUT_S):
                connection = await fake.connections.get()
            hello = HandshakeRequest(0, bytes(32))
            await connection.send(envelope_bytes(encode(hello, MESSAGE), ALPHA, CONSTELLATION_ID))
            fake.constellation_id = NO_CONSTELLATION  # what a fresh auditor signs under
            answer = await fake.from_auditor(connection)  # alpha, validly signing: answered
            assert isinstance(answer, AuditorHandshakeResponse)
        finally:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task


NOT_INITIALIZED = 4450
"""The close code of an alpha that holds no settings yet (`NOT_INITIALIZED_CLOSE_CODE`)."""


async def _gaps_between_refused_sessions(alpha: FakeAlpha, sessions: int) -> list[float]:
    """Accepts `sessions` handshakes, each closed at once with 4450 as an uninitialized
    alpha does; returns the seconds between one close and the next connection."""
    gaps, closed_at = [], None
    for _ in range(sessions):
        connection = await alpha.accept()
        if closed_at is not None:
            gaps.append(asyncio.get_running_loop().time() - closed_at)
        await connection.close(code=NOT_INITIALIZED, reason="not initialized")
        closed_at = asyncio.get_running_loop().time()
    return gaps


@pytest.fixture
def fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """The link's backoff from 0.05 s, up to 2 s after refused sessions (requested before
    `alpha`, so the link starts with it)."""
    monkeypatch.setattr("herald.link.BACKOFF_S_MIN", 0.05)
    monkeypatch.setattr("herald.link.REFUSED_BACKOFF_S_MAX", 2.0)


async def test_a_link_refused_at_the_handshake_keeps_backing_off(
    genesis: None,
    fast_backoff: None,
    alpha: FakeAlpha,
    layer: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Goal: an alpha closing every session at the handshake (4450: not initialized yet) is
    retried after 0.05, 0.1, 0.2 ... s, not every 0.05 s: the backoff was reset as soon as
    the WebSocket opened, so an auditor reconnected five times a second until alpha was
    initialized. Once alpha takes a session (sends a frame after the handshake), the next
    retry is quick again. Each refusal is told in words, at INFO (every auditor meets it while
    the constellation starts): it was logged as "received 4450 (private use); then sent 4450
    (private use)", a warning."""
    caplog.set_level(logging.INFO, logger="herald.link")
    gaps = await _gaps_between_refused_sessions(alpha, 5)
    # Sleeps of 0.05, 0.1, 0.2, 0.4 s at least (only lower bounds: a loaded machine adds to
    # them).
    assert gaps[2] >= 0.2 and gaps[3] >= 0.4, gaps
    taken = await alpha.accept()  # After 0.8 s; this session alpha takes.
    await taken.send(alpha.signed(QuantaBatch(0, (), 3)))
    event = await engine_event(layer)
    reasons = []
    while event["type"] == "quanta.link_down":  # One per refused session before.
        reasons.append(event["reason"])
        event = await engine_event(layer)
    assert event["type"] == "quanta.batch", event
    not_initialized = "alpha is not initialized yet (it holds no settings), close code 4450"
    assert reasons and set(reasons) == {f"herald link: {not_initialized}"}, reasons
    told = [r for r in caplog.records if not_initialized in r.getMessage()]
    assert len(told) >= len(reasons) and {r.levelno for r in told} == {logging.INFO}
    await taken.close()
    closed_at = asyncio.get_running_loop().time()
    await alpha.accept()
    quick = asyncio.get_running_loop().time() - closed_at
    assert quick < 1.0, f"{quick:.2f} s: the backoff (1.6 s by now) was not reset"
