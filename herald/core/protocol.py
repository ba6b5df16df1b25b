"""Pure checks of the herald (alpha <-> auditor) protocol.

The auditor's handshake answer is an `AuditorHandshakeResponse` in an envelope signed by the
auditor's key; alpha accepts it only from an admitted auditor key (never its own: the caller
passes the auditor keys without alpha's), and learns from it where the auditor stands (its
quanta cursor). A connection is bound to the auditor's key, not to its index in one version of
the settings: an auditor's index can differ between the settings below and above an update.

The other way round, the auditor answers only a `HandshakeRequest` signed by alpha's key
(`check_alpha_handshake`): the settings' alpha key once it has settings, before that the key
CONSTELLATION_ALPHA_KEY pins, and with neither at least a signature that verifies. Otherwise
anyone who can stand in for alpha's address (an attacker on a `ws://` wire) would be
answered and could feed the node quanta (SECURITY.md H1, L3).
"""

from __future__ import annotations

from dataclasses import dataclass

from quanta.core.envelopes import GatewayError, decode_envelope, signature_valid
from quanta.core.keys import encode_public_key
from quanta.core.status import StatusCode
from quanta.core.xdr.codec import XdrError, decode
from quanta.core.xdr.schema import (
    AuditorHandshakeResponse,
    HandshakeRequest,
    Limits,
    MessageEnvelope,
    NodeState,
)


@dataclass(frozen=True, slots=True)
class AuditorHello:
    """An authenticated auditor: its key, its cursor and its state."""

    public_key: bytes
    quanta_cursor: int
    state: NodeState = NodeState.RUNNING


def check_auditor_handshake(
    data: bytes, challenge: bytes, admitted_keys: frozenset[bytes]
) -> AuditorHello:
    """Returns who the auditor is if its signed handshake answer is valid."""
    envelope = decode_envelope(data)
    message = envelope.message
    if not isinstance(message, AuditorHandshakeResponse):
        raise GatewayError(StatusCode.UNEXPECTED_MESSAGE, "auditor handshake expected", 0, True)
    signer = envelope.signature.signer
    if signer not in admitted_keys:
        raise GatewayError(StatusCode.FORBIDDEN, "not an auditor of this constellation", 0, True)
    if message.handshake_data != challenge or not signature_valid(data, envelope):
        raise GatewayError(StatusCode.UNAUTHORIZED, "handshake failed", 0, True)
    return AuditorHello(signer, int(message.quanta_cursor), NodeState(message.state))


def check_auditor_message(data: bytes, public_key: bytes) -> MessageEnvelope:
    """Returns a message of the connected auditor, refusing anything not signed by it."""
    envelope = decode_envelope_large(data)
    if envelope.signature.signer != public_key or not signature_valid(data, envelope):
        raise GatewayError(StatusCode.UNAUTHORIZED, "invalid signature", 0)
    return envelope


def decode_envelope_large(data: bytes) -> MessageEnvelope:
    """Decodes an auditor frame (batches may exceed a client frame's size limit)."""
    if len(data) > Limits.BATCH_BYTES_MAX:
        raise GatewayError(StatusCode.PAYLOAD_TOO_LARGE, "batch too large", 0)
    try:
        envelope: MessageEnvelope = decode(MessageEnvelope, data)
    except XdrError as error:
        raise GatewayError(StatusCode.BAD_REQUEST, f"malformed message: {error}", 0) from None
    return envelope


def check_alpha_handshake(data: bytes, alpha_key: bytes | None) -> HandshakeRequest:
    """Returns alpha's challenge if the frame is a HandshakeRequest whose signature verifies
    and, when `alpha_key` is known, is alpha's; raises GatewayError (closing) otherwise."""
    envelope = decode_envelope(data)
    message = envelope.message
    if not isinstance(message, HandshakeRequest):
        raise GatewayError(StatusCode.UNEXPECTED_MESSAGE, "alpha handshake expected", 0, True)
    signer = envelope.signature.signer
    if alpha_key is not None and signer != alpha_key:
        text = (
            f"the handshake is signed by {encode_public_key(signer)}, "
            f"not by alpha {encode_public_key(alpha_key)}"
        )
        raise GatewayError(StatusCode.FORBIDDEN, text, 0, True)
    if not signature_valid(data, envelope):
        text = "alpha's handshake signature is invalid"
        raise GatewayError(StatusCode.UNAUTHORIZED, text, 0, True)
    return message
