"""Alpha's herald endpoint (`HeraldConsumer`): who may connect, and what it relays both ways.

Goal: show the endpoint's handshake and relay: it opens with a challenge signed by alpha; an
auditor of the settings in force that signs it back is accepted and its cursor goes to the
engine as a `herald.catchup` event (with the connection's channel to answer on); a key the
settings do not list as an auditor (a stranger, alpha's own), a wrong signature or a wrong
challenge is answered with its status and closed with the endpoint's refusal code, and asks the
engine for nothing; before initialization every connection is closed with its own code, before
any challenge. Frames are bound to the constellation id: a fresh auditor (cursor 0) may sign
under NO_CONSTELLATION on its own link; a handshake or frame signed for another constellation,
or under NO_CONSTELLATION by an auditor past genesis, is refused. Once connected, a
quanta-cursor request and a results batch reach the engine as their typed events, and quanta
batches from the engine (to the herald group or the connection's channel) reach the auditor in
frames alpha signed.
Method: Channels' `WebsocketCommunicator` drives the real consumer on the in-memory channel
layer, with the settings in the real test database; the test reads the engine channel.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from channels.testing import WebsocketCommunicator

from herald.consumers import REFUSED_CLOSE_CODE, HeraldConsumer
from herald.tests.conftest import ALPHA, AUDITOR, STRANGER, TIMEOUT_S
from quanta import events
from quanta.consumers.client_session import NOT_INITIALIZED_CLOSE_CODE
from quanta.core.envelopes import envelope_bytes, signature_valid
from quanta.core.keys import KeyPair
from quanta.core.signatures import NO_CONSTELLATION, constellation_id_of
from quanta.core.status import StatusCode
from quanta.core.testing import default_settings, keypair
from quanta.core.xdr.codec import decode, encode
from quanta.core.xdr.schema import (
    MESSAGE,
    AuditorHandshakeResponse,
    AuditorResult,
    HandshakeRequest,
    Message,
    MessageEnvelope,
    NodeSignature,
    NodeState,
    QuantaBatch,
    QuantaCursorRequest,
    ResultMessage,
    ResultsBatch,
    StateUpdate,
)
from quanta.groups import ENGINE_CHANNEL, HERALD_GROUP
from quanta.herald_admission import keys_in_force_clear, keys_in_force_publish
from quanta.node.persistence import settings_record_persist

pytestmark = pytest.mark.django_db(transaction=True)

GENESIS = default_settings([ALPHA, AUDITOR])
CONSTELLATION_ID = constellation_id_of(GENESIS)
"""The id every frame of the initialized constellation is signed under."""
OTHER_ID = constellation_id_of(default_settings([ALPHA, AUDITOR, STRANGER]))
"""Another constellation's id (the same auditor could be one of its nodes too)."""


@pytest.fixture
def alpha_node(layer: Any, settings: Any) -> Any:
    """Alpha's web process: its key, and the channel layer its consumers use."""
    settings.NODE_SECRET_SEED = ALPHA.secret
    return layer


@pytest.fixture
def initialized(alpha_node: Any) -> Any:
    """The settings in force: alpha and one auditor."""
    settings_record_persist(apex=1, settings=GENESIS)
    return alpha_node


async def from_alpha(communicator: WebsocketCommunicator) -> Message:
    """Returns the message of the next frame, checking alpha signed it."""
    data = await communicator.receive_from(timeout=TIMEOUT_S)
    assert isinstance(data, bytes)
    envelope = decode(MessageEnvelope, data)
    assert envelope.signature.signer == ALPHA.public_key
    assert signature_valid(data, envelope, CONSTELLATION_ID)
    return envelope.message


async def challenged() -> tuple[WebsocketCommunicator, bytes]:
    """Connects; returns the connection and the challenge alpha sent."""
    communicator = WebsocketCommunicator(HeraldConsumer.as_asgi(), "/ws/herald/")
    connected, _ = await communicator.connect(timeout=TIMEOUT_S)
    assert connected
    request = await from_alpha(communicator)
    assert isinstance(request, HandshakeRequest)
    return communicator, bytes(request.handshake_data)


def hello(
    challenge: bytes, who: KeyPair, cursor: int, constellation_id: bytes = CONSTELLATION_ID
) -> bytes:
    """Returns an auditor's signed answer to the challenge, at quanta cursor `cursor`."""
    answer = AuditorHandshakeResponse(1, challenge, cursor, cursor, NodeState.RUNNING)
    return envelope_bytes(encode(answer, MESSAGE), who, constellation_id)


def signed(message: Message, who: KeyPair, constellation_id: bytes = CONSTELLATION_ID) -> bytes:
    """Returns the frame of `message` signed by `who` for the constellation."""
    return envelope_bytes(encode(message, MESSAGE), who, constellation_id)


async def engine_event(layer: Any, presence: bool = False) -> Any:
    """Returns the next message on the engine channel (bounded wait); the auditor's presence
    reports (`quanta.auditor_state`) are skipped unless `presence` asks for them alone."""
    async with asyncio.timeout(TIMEOUT_S):
        while True:
            event = await layer.receive(ENGINE_CHANNEL)
            if (event["type"] == "quanta.auditor_state") == presence:
                return event


@pytest.fixture
async def auditor(initialized: Any) -> AsyncIterator[tuple[WebsocketCommunicator, str]]:
    """An accepted auditor at cursor 7, and its connection's channel (from the catchup)."""
    communicator, challenge = await challenged()
    await communicator.send_to(bytes_data=hello(challenge, AUDITOR, 7))
    catchup = await engine_event(initialized)
    assert catchup["type"] == "herald.catchup" and catchup["cursor"] == 7, catchup
    yield communicator, catchup["reply"]
    await communicator.disconnect()


async def test_an_auditor_of_the_settings_is_accepted_and_its_cursor_goes_to_the_engine(
    auditor: tuple[WebsocketCommunicator, str], layer: Any
) -> None:
    communicator, reply = auditor
    assert reply in layer.groups[HERALD_GROUP]  # It will get what alpha streams.
    assert await communicator.receive_nothing(timeout=0.1)  # Accepted silently.


async def test_a_cursor_request_and_a_results_batch_reach_the_engine_as_typed_events(
    auditor: tuple[WebsocketCommunicator, str], layer: Any
) -> None:
    communicator, reply = auditor
    cursor = QuantaCursorRequest(2, 12, 12)
    await communicator.send_to(bytes_data=signed(cursor, AUDITOR))
    assert await engine_event(layer) == events.herald_catchup(12, reply)
    results = ResultsBatch(3, (AuditorResult(8, NodeSignature(1, bytes(64)), None),))
    await communicator.send_to(bytes_data=signed(results, AUDITOR))
    frame = signed(results, AUDITOR)
    event = await engine_event(layer)
    assert event == events.quanta_signatures(AUDITOR.public_key, frame)
    assert decode(MessageEnvelope, event["frame"]).message == results


async def test_the_engine_hears_of_the_auditors_presence_state_and_departure(
    initialized: Any,
) -> None:
    layer = initialized
    communicator, challenge = await challenged()
    await communicator.send_to(bytes_data=hello(challenge, AUDITOR, 7))
    connected = await engine_event(layer, presence=True)
    reply = connected["channel"]
    assert connected == events.quanta_auditor_state(
        AUDITOR.public_key, reply, True, int(NodeState.RUNNING), "connected"
    )
    update = StateUpdate(0, NodeState.FAILED, 9, "effects differ")
    await communicator.send_to(bytes_data=signed(update, AUDITOR))
    reported = await engine_event(layer, presence=True)
    assert (reported["state"], reported["reason"]) == (int(NodeState.FAILED), "effects differ")
    await communicator.disconnect()
    gone = await engine_event(layer, presence=True)
    assert gone == events.quanta_auditor_state(AUDITOR.public_key, reply, False)


async def test_a_frame_not_signed_by_the_auditor_is_refused_and_not_relayed(
    auditor: tuple[WebsocketCommunicator, str], layer: Any
) -> None:
    communicator, reply = auditor
    forged = signed(QuantaCursorRequest(4, 99, 99), STRANGER)
    await communicator.send_to(bytes_data=forged)
    refusal = await from_alpha(communicator)
    assert isinstance(refusal, ResultMessage) and refusal.status == StatusCode.UNAUTHORIZED
    # The connection stays; its next request is the first the engine hears of.
    good = signed(QuantaCursorRequest(5, 13, 13), AUDITOR)
    await communicator.send_to(bytes_data=good)
    assert await engine_event(layer) == events.herald_catchup(13, reply)


async def test_quanta_batches_from_the_engine_reach_the_auditor_signed_by_alpha(
    auditor: tuple[WebsocketCommunicator, str], layer: Any
) -> None:
    communicator, reply = auditor
    streamed = QuantaBatch(0, (), 21)
    await layer.group_send(HERALD_GROUP, events.herald_quanta(encode(streamed, MESSAGE)))
    assert await from_alpha(communicator) == streamed
    caught_up = QuantaBatch(0, (), 22)  # What the engine answers a catchup with.
    await layer.send(reply, events.herald_quanta(encode(caught_up, MESSAGE)))
    assert await from_alpha(communicator) == caught_up


def _bad_signature(challenge: bytes) -> bytes:
    frame = hello(challenge, AUDITOR, 666)
    return frame[:-1] + bytes([frame[-1] ^ 1])


@pytest.mark.parametrize(
    ("answer", "status"),
    [
        (lambda challenge: hello(challenge, STRANGER, 666), StatusCode.FORBIDDEN),
        (lambda challenge: hello(challenge, ALPHA, 666), StatusCode.FORBIDDEN),
        (_bad_signature, StatusCode.UNAUTHORIZED),
        (lambda challenge: hello(bytes(32), AUDITOR, 666), StatusCode.UNAUTHORIZED),
    ],
    ids=["stranger", "alpha's own key", "bad signature", "wrong challenge"],
)
async def test_a_refused_handshake_is_answered_closed_and_asks_the_engine_nothing(
    initialized: Any, layer: Any, answer: Any, status: StatusCode
) -> None:
    communicator, challenge = await challenged()
    await communicator.send_to(bytes_data=answer(challenge))
    refusal = await from_alpha(communicator)
    assert isinstance(refusal, ResultMessage) and refusal.status == status
    closed = await communicator.receive_output(timeout=TIMEOUT_S)
    assert closed == {"type": "websocket.close", "code": REFUSED_CLOSE_CODE}
    assert HERALD_GROUP not in layer.groups or not layer.groups[HERALD_GROUP]
    # The refused connection was handled in full: a good one's catchup is the engine's first.
    good, good_challenge = await challenged()
    await good.send_to(bytes_data=hello(good_challenge, AUDITOR, 7))
    assert (await engine_event(layer))["cursor"] == 7
    await good.disconnect()


async def test_before_initialization_every_connection_is_closed(alpha_node: Any) -> None:
    # Without genesis settings there is no id to sign a challenge under: none is sent.
    communicator = WebsocketCommunicator(HeraldConsumer.as_asgi(), "/ws/herald/")
    connected, _ = await communicator.connect(timeout=TIMEOUT_S)
    assert connected
    closed = await communicator.receive_output(timeout=TIMEOUT_S)
    assert closed == {"type": "websocket.close", "code": NOT_INITIALIZED_CLOSE_CODE}


async def test_a_fresh_auditor_may_sign_under_no_constellation_on_its_own_link(
    initialized: Any,
) -> None:
    # At cursor 0 an auditor holds no settings, so it cannot know the id yet: its handshake
    # and the frames after it may be signed under NO_CONSTELLATION, and, once it has caught
    # up the genesis quantum, under the constellation's id.
    layer = initialized
    communicator, challenge = await challenged()
    await communicator.send_to(bytes_data=hello(challenge, AUDITOR, 0, NO_CONSTELLATION))
    catchup = await engine_event(layer)
    assert catchup == events.herald_catchup(0, catchup["reply"])
    for constellation_id in (NO_CONSTELLATION, CONSTELLATION_ID):
        results = ResultsBatch(3, (AuditorResult(1, NodeSignature(1, bytes(64)), None),))
        frame = signed(results, AUDITOR, constellation_id)
        await communicator.send_to(bytes_data=frame)
        assert await engine_event(layer) == events.quanta_signatures(AUDITOR.public_key, frame)
    await communicator.disconnect()


@pytest.mark.parametrize(
    ("cursor", "constellation_id"),
    [(7, NO_CONSTELLATION), (7, OTHER_ID), (0, OTHER_ID)],
    ids=["no constellation past genesis", "another constellation", "fresh, another"],
)
async def test_a_handshake_signed_for_no_or_another_constellation_is_refused(
    initialized: Any, cursor: int, constellation_id: bytes
) -> None:
    communicator, challenge = await challenged()
    await communicator.send_to(bytes_data=hello(challenge, AUDITOR, cursor, constellation_id))
    refusal = await from_alpha(communicator)
    assert isinstance(refusal, ResultMessage) and refusal.status == StatusCode.UNAUTHORIZED
    closed = await communicator.receive_output(timeout=TIMEOUT_S)
    assert closed == {"type": "websocket.close", "code": REFUSED_CLOSE_CODE}


async def test_past_genesis_a_frame_under_no_constellation_is_refused(
    auditor: tuple[WebsocketCommunicator, str], layer: Any
) -> None:
    # The auditor said it holds quanta (cursor 7): it knows the id, so only that id is valid.
    communicator, reply = auditor
    for constellation_id in (NO_CONSTELLATION, OTHER_ID):
        forged = signed(QuantaCursorRequest(4, 99, 99), AUDITOR, constellation_id)
        await communicator.send_to(bytes_data=forged)
        refusal = await from_alpha(communicator)
        assert isinstance(refusal, ResultMessage) and refusal.status == StatusCode.UNAUTHORIZED
    await communicator.send_to(bytes_data=signed(QuantaCursorRequest(5, 13, 13), AUDITOR))
    assert await engine_event(layer) == events.herald_catchup(13, reply)


@pytest.fixture
def engine_keys(initialized: Any, settings: Any) -> Iterator[Any]:
    """A Redis prefix of the test's own for the keys the engine publishes, cleared after."""
    settings.REDIS_PREFIX = f"herald-test-{secrets.token_hex(4)}"
    yield initialized
    keys_in_force_clear()


async def test_an_auditor_the_engine_has_in_force_is_admitted_before_its_settings_are_final(
    engine_keys: Any,
) -> None:
    # A rotation is finalized by the auditors it brings in: refusing them until it is
    # persisted as final (the rule before) deadlocked it.
    newcomer = keypair(253)
    rotated = default_settings([ALPHA, AUDITOR, newcomer], version=2)
    await asyncio.to_thread(keys_in_force_publish, rotated)
    communicator, challenge = await challenged()
    # Fresh, it signs under NO_CONSTELLATION (it holds no settings yet).
    await communicator.send_to(bytes_data=hello(challenge, newcomer, 0, NO_CONSTELLATION))
    catchup = await engine_event(engine_keys)
    assert catchup["type"] == "herald.catchup" and catchup["cursor"] == 0, catchup
    results = ResultsBatch(3, (AuditorResult(8, NodeSignature(2, bytes(64)), None),))
    frame = signed(results, newcomer, NO_CONSTELLATION)
    await communicator.send_to(bytes_data=frame)
    event = await engine_event(engine_keys)
    assert event == events.quanta_signatures(newcomer.public_key, frame)
    await communicator.disconnect()


async def test_a_key_in_no_settings_is_still_refused_with_the_engine_keys_published(
    engine_keys: Any,
) -> None:
    await asyncio.to_thread(keys_in_force_publish, default_settings([ALPHA, AUDITOR], version=1))
    communicator, challenge = await challenged()
    await communicator.send_to(bytes_data=hello(challenge, STRANGER, 0))
    answer = await from_alpha(communicator)
    assert isinstance(answer, ResultMessage) and answer.status == StatusCode.FORBIDDEN
    closed = await communicator.receive_output(timeout=TIMEOUT_S)
    assert closed == {"type": "websocket.close", "code": REFUSED_CLOSE_CODE}
