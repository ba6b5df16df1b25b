"""Pure checks of the client gateway: the handshake and each request's signature.

The frame primitives they build on (decoding, signature check, `GatewayError`) are in
`quanta.core.envelopes`.
"""

from __future__ import annotations

from quanta.core.envelopes import GatewayError, decode_envelope, signature_valid
from quanta.core.status import StatusCode
from quanta.core.xdr.schema import (
    CLIENT_REQUESTS,
    HandshakeResponse,
    MessageEnvelope,
    QuantumInfoRequest,
)


def check_handshake(data: bytes, challenge: bytes, constellation_id: bytes) -> MessageEnvelope:
    """Returns the client's handshake envelope if it signs back our challenge for this
    constellation."""
    envelope = decode_envelope(data)
    message = envelope.message
    if not isinstance(message, HandshakeResponse):
        raise GatewayError(StatusCode.UNEXPECTED_MESSAGE, "handshake expected", 0, close=True)
    if message.handshake_data != challenge or not signature_valid(data, envelope, constellation_id):
        raise GatewayError(
            StatusCode.UNAUTHORIZED, "handshake failed", int(message.message_id), close=True
        )
    return envelope


def check_request(data: bytes, public_key: bytes, constellation_id: bytes) -> MessageEnvelope:
    """Returns a verified client request, signed for this constellation, from the key this
    connection is bound to."""
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
    if not signature_valid(data, envelope, constellation_id):
        raise GatewayError(
            StatusCode.UNAUTHORIZED,
            "invalid signature (signed for another constellation?)",
            message_id,
        )
    return envelope
