"""Goal: the client trusts only what the pinned constellation's alpha signed and what proofs
show: the handshake, which result answers which request, rejections, replays and gaps.

Method: a `ConstellationClient` on an in-memory socket (no node): the test plays alpha, feeding
frames made by the node's own `server_frame` (signed under the test constellation id, or
another) and results signed by real auditor keys, and reads what the client sends.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import Any

import pytest

from constellation_client import client as client_module
from constellation_client.client import ConstellationClient
from constellation_client.result import RequestResult
from constellation_client.tests.builders import (
    CONSTELLATION_ID,
    auditors,
    other_group,
    own_group,
    signed_result,
    trusted,
)
from constellation_client.wire import ConstellationClientError, UnverifiedOutcomeError
from quanta.core.envelopes import server_frame
from quanta.core.gateway import check_handshake
from quanta.core.hashing import group_hash, sha256
from quanta.core.keys import KeyPair
from quanta.core.status import StatusCode
from quanta.core.testing import default_settings, keypair
from quanta.core.xdr.codec import decode, encode
from quanta.core.xdr.schema import (
    MESSAGE,
    ClientConnectionSuccess,
    EffectsGroupHash,
    HandshakeRequest,
    Message,
    MessageEnvelope,
    QuantumResultMessage,
    ResultMessage,
)

PAIRS = auditors(3)
ALPHA = PAIRS[0]
USER = keypair(60)
ACCOUNT = 7
CHALLENGE = bytes(range(32))


class Socket:
    """The client's side of an in-memory connection."""

    def __init__(self) -> None:
        self.incoming: asyncio.Queue[bytes] = asyncio.Queue()
        self.sent: asyncio.Queue[bytes] = asyncio.Queue()

    async def send(self, data: bytes) -> None:
        await self.sent.put(data)

    async def recv(self) -> bytes:
        return await self.incoming.get()

    async def close(self) -> None:
        """Nothing to close."""

    def push(
        self, message: Message, signer: KeyPair = ALPHA, for_id: bytes = CONSTELLATION_ID
    ) -> None:
        """Queues a frame as the node would send it (signed unless it may be signless)."""
        self.incoming.put_nowait(server_frame(encode(message, MESSAGE), signer, for_id))

    def push_raw(self, message: Message) -> None:
        """Queues a frame with no signature at all."""
        self.incoming.put_nowait(encode(message, MESSAGE))


def client_on(socket: Socket, account_id: int = ACCOUNT) -> ConstellationClient:
    """Returns a handshaken client reading from `socket`."""
    client = ConstellationClient(socket, USER, trusted(PAIRS))  # type: ignore[arg-type]
    client.account_id = account_id
    client.request_timeout_s = 0.3
    client._reader = asyncio.create_task(client._read_forever())
    return client


async def sent_request(socket: Socket) -> Any:
    """Returns the next request the client sent (its signature checked)."""
    frame = await asyncio.wait_for(socket.sent.get(), 2)
    return decode(MessageEnvelope, frame).message


def result_for(
    nonce: int,
    *,
    sequence: int = 3,
    apex: int = 42,
    signers: int = 1,
    message_id: int = 5,
    status: StatusCode = StatusCode.SUCCESS,
) -> QuantumResultMessage:
    """Returns a proven result whose own group applies `nonce` at `sequence`."""
    other = other_group()
    effects = (
        own_group(ACCOUNT, nonce=nonce, sequence=sequence),
        EffectsGroupHash(other.account, group_hash(other)),
    )
    message = signed_result(
        list(enumerate(PAIRS[:signers])),
        apex=apex,
        quantum_hash=sha256(apex.to_bytes(8, "big")),
        effects=effects,
        message_id=message_id,
    )
    return dataclasses.replace(message, status=status)


# --- handshake ------------------------------------------------------------------------------


async def test_the_handshake_is_answered_with_a_bound_signature() -> None:
    socket = Socket()
    client = ConstellationClient(socket, USER, trusted(PAIRS))  # type: ignore[arg-type]
    socket.push(HandshakeRequest(0, CHALLENGE))
    socket.push(ClientConnectionSuccess(1, 77))
    await client._handshake()
    assert client.account_id == 77
    response = await socket.sent.get()
    assert check_handshake(response, CHALLENGE, CONSTELLATION_ID).signature.signer == (
        USER.public_key
    )


async def test_a_handshake_signed_by_another_alpha_is_refused() -> None:
    """A node that relays another constellation's challenge cannot sign it as our alpha."""
    socket = Socket()
    client = ConstellationClient(socket, USER, trusted(PAIRS))  # type: ignore[arg-type]
    socket.push(HandshakeRequest(0, CHALLENGE), signer=keypair(99))
    with pytest.raises(ConstellationClientError, match="not signed by the pinned constellation"):
        await client._handshake()
    assert socket.sent.empty()  # Nothing signed for it.


async def test_a_handshake_signed_by_our_alpha_for_another_constellation_is_refused() -> None:
    socket = Socket()
    client = ConstellationClient(socket, USER, trusted(PAIRS))  # type: ignore[arg-type]
    socket.push(HandshakeRequest(0, CHALLENGE), for_id=bytes(32))
    with pytest.raises(ConstellationClientError, match="handshake refused: invalid signature"):
        await client._handshake()
    assert socket.sent.empty()


async def test_an_unsigned_handshake_is_refused() -> None:
    socket = Socket()
    client = ConstellationClient(socket, USER, trusted(PAIRS))  # type: ignore[arg-type]
    socket.push_raw(HandshakeRequest(0, CHALLENGE))
    with pytest.raises(ConstellationClientError, match="unsigned HandshakeRequest"):
        await client._handshake()


# --- results bound to requests --------------------------------------------------------------


async def test_a_result_answers_the_request_whose_nonce_it_proves() -> None:
    """The unsigned message id and status do not matter: the proof shows the nonce applied."""
    socket = Socket()
    client = client_on(socket)
    paying = asyncio.create_task(client.pay(PAIRS[1].public_key, "USD", 5))
    request = await sent_request(socket)
    socket.push(result_for(request.nonce, message_id=0, status=StatusCode.BAD_REQUEST))
    result = await paying
    assert result.ok and result.status == StatusCode.SUCCESS and result.description == ""
    assert (result.nonce, result.message_id) == (request.nonce, request.message_id)
    assert result.acknowledged and result.attested_by == "alpha"
    await client.close()


async def test_a_result_not_proving_the_nonce_does_not_complete_the_request(
    caplog: pytest.LogCaptureFixture,
) -> None:
    socket = Socket()
    client = client_on(socket)
    paying = asyncio.create_task(client.pay(PAIRS[1].public_key, "USD", 5))
    request = await sent_request(socket)
    socket.push(result_for(1234, message_id=request.message_id))
    with pytest.raises(UnverifiedOutcomeError) as raised:
        await paying
    expected = f"result for request {request.message_id} does not prove its nonce {request.nonce}"
    assert expected in caplog.text and expected in str(raised.value)
    assert raised.value.nonce == request.nonce
    # It is still a real quantum touching the account: reported as a notification.
    notification = await client.next_notification(1)
    assert notification is not None and notification.nonce == 0
    await client.close()


async def test_an_unsigned_rejection_leaves_the_outcome_unknown() -> None:
    socket = Socket()
    client = client_on(socket)
    paying = asyncio.create_task(client.pay(PAIRS[1].public_key, "USD", 5))
    request = await sent_request(socket)
    socket.push_raw(ResultMessage(request.message_id, StatusCode.BAD_REQUEST, "no funds"))
    with pytest.raises(UnverifiedOutcomeError, match="may or may not have been executed") as raised:
        await paying
    assert "unsigned ResultMessage" in str(raised.value)
    assert client.frames_refused == 1
    await client.close()


async def test_a_badly_signed_rejection_is_ignored_and_the_real_answer_still_counts() -> None:
    socket = Socket()
    client = client_on(socket)
    client.request_timeout_s = 2
    paying = asyncio.create_task(client.pay(PAIRS[1].public_key, "USD", 5))
    request = await sent_request(socket)
    socket.push(ResultMessage(request.message_id, StatusCode.FORBIDDEN, "no"), signer=PAIRS[1])
    socket.push(result_for(request.nonce))
    result = await paying
    assert result.ok and client.frames_refused == 1
    await client.close()


async def test_a_rejection_signed_by_alpha_is_alpha_s_word() -> None:
    socket = Socket()
    client = client_on(socket)
    paying = asyncio.create_task(client.pay(PAIRS[1].public_key, "USD", 5))
    request = await sent_request(socket)
    socket.push(ResultMessage(request.message_id, StatusCode.FORBIDDEN, "insufficient funds"))
    result = await paying
    assert not result.ok and result.status == StatusCode.FORBIDDEN
    assert result.attested_by == "alpha"
    await client.close()


async def test_a_result_whose_proof_does_not_hold_is_ignored() -> None:
    socket = Socket()
    client = client_on(socket)
    paying = asyncio.create_task(client.pay(PAIRS[1].public_key, "USD", 5))
    request = await sent_request(socket)
    claimed = result_for(request.nonce, message_id=request.message_id)
    forged = dataclasses.replace(claimed, apex=43)
    socket.push(forged)
    with pytest.raises(UnverifiedOutcomeError, match="does not verify"):
        await paying
    await client.close()


async def test_a_finalization_updates_the_acknowledged_result() -> None:
    socket = Socket()
    client = client_on(socket)
    paying = asyncio.create_task(client.pay(PAIRS[1].public_key, "USD", 5))
    request = await sent_request(socket)
    socket.push(result_for(request.nonce))
    result = await paying
    socket.push(result_for(request.nonce, signers=2))
    assert await result.wait_final(2)
    assert result.attested_by == "majority" and result.signatures_verified == 2
    await client.close()


# --- replays and gaps -----------------------------------------------------------------------


async def test_a_replayed_notification_is_dropped(caplog: pytest.LogCaptureFixture) -> None:
    socket = Socket()
    client = client_on(socket)
    caplog.set_level(logging.WARNING)
    final = result_for(555, sequence=4, message_id=0, signers=2)
    socket.push(final)
    first = await client.next_notification(1)
    assert isinstance(first, RequestResult) and first.finalized
    socket.push(final)
    assert await client.next_notification(0.2) is None
    assert "replayed notification (account sequence 4 already seen): ignored" in caplog.text
    await client.close()


async def test_a_notification_older_than_the_settled_floor_is_dropped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    socket = Socket()
    client = client_on(socket)
    client.sequences._grace_s = 0.0  # Settle at once: nothing may arrive late here.
    socket.push(result_for(1, sequence=9, apex=50, message_id=0, signers=2))
    assert await client.next_notification(1) is not None
    socket.push(result_for(2, sequence=5, apex=40, message_id=0, signers=2))
    assert await client.next_notification(0.2) is None
    assert "replayed notification (account sequence 5 ≤ 9): ignored" in caplog.text
    await client.close()


async def test_a_missing_sequence_is_reported_as_a_gap() -> None:
    socket = Socket()
    client = client_on(socket)
    client.sequences._grace_s = 0.0
    reported: list[tuple[int, int]] = []
    client.on_gap = lambda first, last: reported.append((first, last))
    socket.push(result_for(1, sequence=3, apex=50, message_id=0, signers=2))
    socket.push(result_for(2, sequence=6, apex=53, message_id=0, signers=2))
    assert await client.next_notification(1) is not None
    assert await client.next_notification(1) is not None
    assert client.gaps == 2 and reported == [(4, 5)]
    await client.close()


async def test_a_connection_loss_leaves_a_quantum_request_unverified() -> None:
    socket = Socket()
    client = client_on(socket)
    client.request_timeout_s = 5
    paying = asyncio.create_task(client.pay(PAIRS[1].public_key, "USD", 5))
    request = await sent_request(socket)
    client._fail(ConstellationClientError("connection lost: reset"))
    with pytest.raises(UnverifiedOutcomeError, match=f"nonce {request.nonce}"):
        await paying
    await client.close()


# --- rotation and other connections ---------------------------------------------------------


async def test_a_frame_of_rotated_keys_makes_the_client_extend_its_chain(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """After a rotation alpha signs with a key the old head does not know: the client fetches
    the chain after its head (stubbed here) and trusts the new alpha from then on."""
    old = dataclasses.replace(trusted(PAIRS), version=1, settings=default_settings(PAIRS))
    rotated = [keypair(20), *PAIRS[1:]]
    new = dataclasses.replace(trusted(rotated), version=2, settings=default_settings(rotated))
    asked: list[int] = []

    def fetch(info_url: str, pin: bytes, timeout_s: float, head: Any = None) -> Any:
        asked.append(head.version)
        return new

    monkeypatch.setattr(client_module, "fetch_verified_head", fetch)
    socket = Socket()
    info_url = "http://node/api/constellation/info"
    client = ConstellationClient(socket, USER, old, info_url=info_url)  # type: ignore[arg-type]
    client.account_id = ACCOUNT
    client._reader = asyncio.create_task(client._read_forever())
    socket.push(ResultMessage(0, StatusCode.FORBIDDEN, "first"), signer=rotated[0])
    for _ in range(100):
        if client.constellation is new:
            break
        await asyncio.sleep(0.01)
    assert asked == [1] and client.constellation.alpha_key == rotated[0].public_key
    socket.push(ResultMessage(0, StatusCode.FORBIDDEN, "second"), signer=rotated[0])
    notification = await client.next_notification(1)
    assert notification is not None and notification.description == "second"
    await client.close()


async def test_results_of_another_connection_are_tracked_not_reported(
    caplog: pytest.LogCaptureFixture,
) -> None:
    socket = Socket()
    client = client_on(socket)
    caplog.set_level(logging.WARNING)
    socket.push(result_for(777, sequence=8, message_id=99))
    socket.push(result_for(777, sequence=8, message_id=99, signers=2))
    assert await client.next_notification(0.3) is None
    assert client.sequences.highest == 8 and "replayed" not in caplog.text
    assert client.nonces.last >= 777
    await client.close()


async def test_a_finalization_by_rotated_auditors_counts_once_the_chain_is_extended(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Auditor 1 is replaced: its successor's signature fails under the old head, so the
    client extends the chain and looks at the kept finalization again."""
    rotated = [PAIRS[0], keypair(21), PAIRS[2]]
    old = dataclasses.replace(trusted(PAIRS), version=1, settings=default_settings(PAIRS))
    new = dataclasses.replace(trusted(rotated), version=2, settings=default_settings(rotated))
    monkeypatch.setattr(client_module, "fetch_verified_head", lambda *args: new)
    socket = Socket()
    info_url = "http://node/api/constellation/info"
    client = ConstellationClient(socket, USER, old, info_url=info_url)  # type: ignore[arg-type]
    client.account_id = ACCOUNT
    client._reader = asyncio.create_task(client._read_forever())
    paying = asyncio.create_task(client.pay(PAIRS[1].public_key, "USD", 5))
    request = await sent_request(socket)
    socket.push(result_for(request.nonce))
    result = await paying
    ack = result_for(request.nonce)
    signed_by_new = signed_result(
        [(0, rotated[0]), (1, rotated[1])],
        apex=ack.apex,
        quantum_hash=ack.quantum_hash,
        effects=ack.effects,
    )
    final = dataclasses.replace(ack, payload_proof=signed_by_new.payload_proof)
    socket.push(final)
    assert await result.wait_final(2)
    assert client.constellation is new and result.signatures_verified == 2
    await client.close()
