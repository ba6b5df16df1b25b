"""Pure checks of the herald (alpha <-> auditor) protocol.

The auditor's handshake answer is an `AuditorHandshakeResponse` in an envelope signed by the
auditor's key; alpha accepts it only from an admitted auditor key (never its own: the caller
passes the auditor keys without alpha's), and learns from it where the auditor stands (its
quanta cursor). A connection is bound to the auditor's key, not to its index in one version of
the settings: an auditor's index can differ between the settings below and above an update.

Frames are signed under the constellation id (`quanta.core.signatures`). A fresh auditor, which
holds no quantum yet and so cannot know that id, signs under `NO_CONSTELLATION`; alpha accepts
that id on such a link only (`link_ids`), for its handshake and the frames that follow.
"""

from __future__ import annotations

from dataclasses import dataclass

from quanta.core.envelopes import GatewayError, decode_envelope, signature_valid
from quanta.core.signatures import NO_CONSTELLATION
from quanta.core.status import StatusCode
from quanta.core.xdr.codec import XdrError, decode
from quanta.core.xdr.schema import AuditorHandshakeResponse, Limits, MessageEnvelope, NodeState


@dataclass(frozen=True, slots=True)
class AuditorHello:
    """An authenticated auditor: its key, its cursor and its state."""

    public_key: bytes
    quanta_cursor: int
    state: NodeState = NodeState.RUNNING
    link_ids: tuple[bytes, ...] = ()
    """The ids this link's frames may be signed under (`signed_under`)."""


def link_ids(constellation_id: bytes, quanta_cursor: int) -> tuple[bytes, ...]:
    """Returns the ids an auditor at `quanta_cursor` may sign its frames under: the
    constellation's, and `NO_CONSTELLATION` too for a fresh auditor (cursor 0)."""
    return (constellation_id, NO_CONSTELLATION) if quanta_cursor == 0 else (constellation_id,)


def signed_under(data: bytes, envelope: MessageEnvelope, ids: tuple[bytes, ...]) -> bool:
    """Tells whether the frame's signature verifies under one of `ids`."""
    return any(signature_valid(data, envelope, constellation_id) for constellation_id in ids)


def check_auditor_handshake(
    data: bytes, challenge: bytes, admitted_keys: frozenset[bytes], constellation_id: bytes
) -> AuditorHello:
    """Returns who the auditor is if its signed handshake answer is valid."""
    envelope = decode_envelope(data)
    message = envelope.message
    if not isinstance(message, AuditorHandshakeResponse):
        raise GatewayError(StatusCode.UNEXPECTED_MESSAGE, "auditor handshake expected", 0, True)
    signer = envelope.signature.signer
    if signer not in admitted_keys:
        raise GatewayError(StatusCode.FORBIDDEN, "not an auditor of this constellation", 0, True)
    cursor = int(message.quanta_cursor)
    ids = link_ids(constellation_id, cursor)
    if message.handshake_data != challenge or not signed_under(data, envelope, ids):
        raise GatewayError(StatusCode.UNAUTHORIZED, "handshake failed", 0, True)
    return AuditorHello(signer, cursor, NodeState(message.state), ids)


def check_auditor_message(
    data: bytes, public_key: bytes, ids: tuple[bytes, ...]
) -> MessageEnvelope:
    """Returns a message of the connected auditor, refusing anything not signed by it under
    one of the link's ids."""
    envelope = decode_envelope_large(data)
    if envelope.signature.signer != public_key or not signed_under(data, envelope, ids):
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
