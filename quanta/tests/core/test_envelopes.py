"""Goal: the node sends a quantum result as a `MessageEnvelopeSignless` (its payload proof is
its authentication) unless it carries account data, and every other message as a
`MessageEnvelope` signed by its key (docs/protocol.md, "Frames").

Method: build frames with `server_frame` and decode them with the codec as the envelope type
they claim to be; check the decision for every other arm of the Message union from its
discriminant alone, since `server_frame` decodes only quantum results.
"""

from __future__ import annotations

import struct
from dataclasses import replace

import pytest

from quanta.core.envelopes import (
    SIGNLESS_MESSAGES,
    GatewayError,
    envelope_bytes,
    may_be_signless,
    server_frame,
)
from quanta.core.hashing import sha256
from quanta.core.keys import verify_signature
from quanta.core.signatures import message_digest
from quanta.core.status import ConstellationError, StatusCode
from quanta.core.testing import keypair
from quanta.core.xdr.codec import decode, encode
from quanta.core.xdr.schema import (
    MESSAGE,
    AccountDataInfo,
    ClientConnectionSuccess,
    HandshakeRequest,
    MessageEnvelope,
    MessageEnvelopeSignless,
    MessageType,
    NodeSignature,
    PayloadProof,
    QuantumInfoResponse,
    QuantumResultMessage,
    ResultMessage,
)

ALPHA = keypair(1)
CID = sha256(b"a constellation")
QUANTUM_RESULT = QuantumResultMessage(
    5,
    StatusCode.SUCCESS,
    "",
    42,
    b"\x01" * 32,
    PayloadProof(b"\x02" * 32, (NodeSignature(0, b"\x03" * 64),)),
    (),
    None,
)
SIGNED_MESSAGES = [
    HandshakeRequest(0, b"\x04" * 32),
    ClientConnectionSuccess(7, 3),
    ResultMessage(9, StatusCode.TOO_MANY_REQUESTS, "the engine is busy, retry later"),
    QuantumInfoResponse(11, StatusCode.SUCCESS, "", (), None, None),
]


def test_signless_envelope_is_the_message_xdr_alone() -> None:
    """The codec's MessageEnvelopeSignless adds nothing around the Message union."""
    message_xdr = encode(QUANTUM_RESULT, MESSAGE)
    assert encode(MessageEnvelopeSignless(QUANTUM_RESULT)) == message_xdr


def test_quantum_result_is_sent_signless() -> None:
    message_xdr = encode(QUANTUM_RESULT, MESSAGE)
    frame = server_frame(message_xdr, ALPHA, CID)
    assert frame == message_xdr
    assert decode(MessageEnvelopeSignless, frame) == MessageEnvelopeSignless(QUANTUM_RESULT)


@pytest.mark.parametrize("message", SIGNED_MESSAGES, ids=lambda m: type(m).__name__)
def test_other_server_messages_are_signed_by_the_node(message: object) -> None:
    message_xdr = encode(message, MESSAGE)
    frame = server_frame(message_xdr, ALPHA, CID)
    assert frame == envelope_bytes(message_xdr, ALPHA, CID)
    envelope = decode(MessageEnvelope, frame)
    assert envelope.message == message
    assert envelope.signature.signer == ALPHA.public_key
    assert verify_signature(
        ALPHA.public_key, message_digest(CID, message_xdr), envelope.signature.signature
    )


OTHER_TYPES = [t for t in MessageType if t != MessageType.QUANTUM_RESULT]


@pytest.mark.parametrize("message_type", OTHER_TYPES, ids=lambda t: t.name)
def test_every_other_arm_is_signed_from_its_discriminant_alone(message_type: MessageType) -> None:
    message_xdr = struct.pack(">i", message_type) + b"\x00" * 8
    assert server_frame(message_xdr, ALPHA, CID) == envelope_bytes(message_xdr, ALPHA, CID)
    assert SIGNLESS_MESSAGES == (QuantumResultMessage,)


def test_a_quantum_result_with_account_data_stays_signed() -> None:
    # Balances, orders and the nonce are outside the payload proof: the frame must cover them.
    account_data = AccountDataInfo(3, 17, (), (), b"\x05" * 32)
    message = replace(QUANTUM_RESULT, account_data=account_data)
    message_xdr = encode(message, MESSAGE)
    assert not may_be_signless(message) and may_be_signless(QUANTUM_RESULT)
    assert server_frame(message_xdr, ALPHA, CID) == envelope_bytes(message_xdr, ALPHA, CID)


def test_a_refused_frame_is_a_constellation_error() -> None:
    """One exception root: code that answers any ConstellationError answers a refused frame
    too, with its message id and whether to close."""
    error = GatewayError(StatusCode.UNAUTHORIZED, "handshake failed", 7, close=True)
    assert isinstance(error, ConstellationError)
    assert (error.status, str(error), error.message_id, error.close) == (
        StatusCode.UNAUTHORIZED,
        "handshake failed",
        7,
        True,
    )
