"""Envelope primitives of every connection: decoding and signing frames, and which server
messages may travel unsigned.

A `MessageEnvelope` is encoded as the message (Message union) followed by the signature struct
(32-byte signer + 64-byte signature), so the signed bytes are the frame minus its last 96
bytes: a node verifies without re-encoding anything, and wraps outgoing messages the same way.
A `MessageEnvelopeSignless` is the message alone; the node sends one for messages that carry
their own proof (`server_frame`). `GatewayError` is how any of these refuses a frame.
"""

from __future__ import annotations

import struct

from quanta.core.keys import KeyPair, verify_signature
from quanta.core.signatures import message_digest
from quanta.core.status import ConstellationError, StatusCode
from quanta.core.xdr.codec import XdrError, decode
from quanta.core.xdr.schema import (
    MESSAGE,
    AccountDataInfo,
    Limits,
    Message,
    MessageEnvelope,
    QuantumResultMessage,
)

SIGNATURE_TAIL = 32 + 64

SIGNLESS_MESSAGES: tuple[type[Message], ...] = (QuantumResultMessage,)
"""Server messages that may be sent as a `MessageEnvelopeSignless`: their payload proof
(payload hash and node signatures, alpha's among them), which clients verify anyway,
authenticates the quantum and its effects, and signing the frame too would cost alpha a
signature and the client a verification per result. `may_be_signless` says which of them."""

_SIGNLESS_DISCRIMINANTS = frozenset(
    struct.pack(">i", MESSAGE.discriminant_of[message_type]) for message_type in SIGNLESS_MESSAGES
)


def may_be_signless(message: Message) -> bool:
    """Tells whether a server message may travel unsigned: a quantum result without account
    data. Account data (balances, orders, nonce) lies outside the payload proof, so a result
    carrying it stays signed; the message id, status and description of an unsigned result
    are protected by the transport only (TLS in production)."""
    return isinstance(message, QuantumResultMessage) and result_may_be_signless(
        message.account_data
    )


def result_may_be_signless(account_data: AccountDataInfo | None) -> bool:
    """Tells whether a quantum result with this account data may travel unsigned (see
    `may_be_signless`): only one without."""
    return account_data is None


class GatewayError(ConstellationError):
    """A refused frame: answered with `status` under the refused message's id (0 when it is
    unknown); `close` ends the connection. A `ConstellationError` like every other expected
    failure, so there is one exception root."""

    def __init__(self, status: StatusCode, text: str, message_id: int, close: bool = False) -> None:
        """Stores the status and text (`str()` gives the text), the message id and `close`."""
        super().__init__(status, text)
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


def signature_valid(data: bytes, envelope: MessageEnvelope, constellation_id: bytes) -> bool:
    """Tells whether the frame's signature covers its message, for this constellation, and
    verifies."""
    digest = message_digest(constellation_id, data[:-SIGNATURE_TAIL])
    return verify_signature(envelope.signature.signer, digest, envelope.signature.signature)


def envelope_bytes(message: bytes, keypair: KeyPair, constellation_id: bytes) -> bytes:
    """Wraps the XDR of a Message in an envelope signed by `keypair` for this constellation."""
    return message + keypair.public_key + keypair.sign(message_digest(constellation_id, message))


def server_frame(message: bytes, keypair: KeyPair, constellation_id: bytes) -> bytes:
    """Returns the frame that carries the XDR of a Message from the node to a client: the
    message alone (a `MessageEnvelopeSignless`) if `may_be_signless`, else a `MessageEnvelope`
    signed by `keypair`. Only quantum results are decoded to tell (a few microseconds, against
    a signature's tens)."""
    if message[:4] in _SIGNLESS_DISCRIMINANTS and may_be_signless(decode(MESSAGE, message)):
        return message
    return envelope_bytes(message, keypair, constellation_id)
