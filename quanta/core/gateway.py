"""Pure checks of the client gateway: frame size, XDR, handshake and request signatures.

A `MessageEnvelope` is encoded as the message (Message union) followed by the signature struct
(32-byte signer + 64-byte signature), so the signed bytes are the frame minus its last 96
bytes: the gateway verifies without re-encoding anything, and wraps outgoing messages the
same way.
"""

from __future__ import annotations

from quanta.core.hashing import sha256
from quanta.core.keys import KeyPair, verify_signature
from quanta.core.status import StatusCode
from quanta.core.xdr.codec import XdrError, decode
from quanta.core.xdr.schema import (
    CLIENT_REQUESTS,
    HandshakeResponse,
    Limits,
    MessageEnvelope,
    QuantumInfoRequest,
)

SIGNATURE_TAIL = 32 + 64


class GatewayError(Exception):
    """A refused frame: answered with `status`; `close` ends the connection."""

    def __init__(self, status: StatusCode, text: str, message_id: int, close: bool = False):
        super().__init__(text)
        self.status = status
        self.text = text
        self.message_id = message_id
        self.close = close


def decode_envelope(data: bytes) -> MessageEnvelope:
    """Decodes one client frame, refusing oversize and malformed input."""
    if len(data) > Limits.ENVELOPE_BYTES_MAX:
        raise GatewayError(
            StatusCode.PAYLOAD_TOO_LARGE,
            f"message of {len(data)} bytes exceeds {Limits.ENVELOPE_BYTES_MAX}",
            0,
        )
    try:
        envelope: MessageEnvelope = decode(MessageEnvelope, data)
    except XdrError as error:
        raise GatewayError(StatusCode.BAD_REQUEST, f"malformed message: {error}", 0) from None
    return envelope


def signature_valid(data: bytes, envelope: MessageEnvelope) -> bool:
    """Tells whether the frame's signature covers its message and verifies."""
    digest = sha256(data[:-SIGNATURE_TAIL])
    return verify_signature(envelope.signature.signer, digest, envelope.signature.signature)


def check_handshake(data: bytes, challenge: bytes) -> MessageEnvelope:
    """Returns the client's handshake envelope if it signs back our challenge."""
    envelope = decode_envelope(data)
    message = envelope.message
    if not isinstance(message, HandshakeResponse):
        raise GatewayError(StatusCode.UNEXPECTED_MESSAGE, "handshake expected", 0, close=True)
    if message.handshake_data != challenge or not signature_valid(data, envelope):
        raise GatewayError(
            StatusCode.UNAUTHORIZED, "handshake failed", int(message.message_id), close=True
        )
    return envelope


def check_request(data: bytes, public_key: bytes) -> MessageEnvelope:
    """Returns a verified client request from the key this connection is bound to."""
    envelope = decode_envelope(data)
    message = envelope.message
    message_id = int(getattr(message, "message_id", 0))
    if not isinstance(message, (*CLIENT_REQUESTS, QuantumInfoRequest)):
        raise GatewayError(
            StatusCode.UNEXPECTED_MESSAGE,
            f"{type(message).__name__} is not a client request",
            message_id,
        )
    if envelope.signature.signer != public_key or message.account != public_key:
        raise GatewayError(
            StatusCode.UNAUTHORIZED, "requests must come from the connected account", message_id
        )
    if not signature_valid(data, envelope):
        raise GatewayError(StatusCode.UNAUTHORIZED, "invalid signature", message_id)
    return envelope


def envelope_bytes(message: bytes, keypair: KeyPair) -> bytes:
    """Wraps the XDR of a Message in an envelope signed by `keypair`."""
    return message + keypair.public_key + keypair.sign(sha256(message))
