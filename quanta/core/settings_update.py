"""Signing a ConstellationUpdate: what the auditors sign and how their signatures travel.

Every auditor signs SHA-256 of the XDR of the `Message` union holding the ConstellationUpdate
(the same rule as every envelope, `signatures.py`). The update is valid once a majority of the
auditors — of the settings it brings for the first one, of the settings in force afterwards —
signed it (`processors/settings.py`). Signatures are exchanged as text `G...:<base64>` so an
auditor can sign offline and paste or send one line.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable

from quanta.core.config import Config, validate_settings
from quanta.core.hashing import sha256
from quanta.core.keys import InvalidKey, KeyPair, decode_public_key, encode_public_key
from quanta.core.processors.settings import count_valid_signers
from quanta.core.status import ConstellationError
from quanta.core.xdr.codec import encode
from quanta.core.xdr.schema import (
    MESSAGE,
    ConstellationMessageEnvelope,
    ConstellationUpdate,
    Signature,
)


def update_bytes(update: ConstellationUpdate) -> bytes:
    """Returns the exact bytes whose SHA-256 every auditor signs."""
    return encode(update, MESSAGE)


def update_digest(update: ConstellationUpdate) -> bytes:
    """Returns SHA-256 of the update's bytes: what a signature covers."""
    return sha256(update_bytes(update))


def update_sign(update: ConstellationUpdate, keypair: KeyPair) -> Signature:
    """Returns `keypair`'s signature of the update."""
    return Signature(keypair.public_key, keypair.sign(update_digest(update)))


def signature_to_text(signature: Signature) -> str:
    """Returns the signature as `G...:<base64>`."""
    encoded = base64.b64encode(signature.signature).decode()
    return f"{encode_public_key(signature.signer)}:{encoded}"


def signature_from_text(text: str) -> Signature:
    """Parses `G...:<base64>`; raises ValueError saying what is wrong."""
    signer, separator, encoded = text.strip().partition(":")
    if not separator:
        raise ValueError("expected G...:<base64 signature>")
    try:
        public_key = decode_public_key(signer)
        raw = base64.b64decode(encoded, validate=True)
    except (InvalidKey, binascii.Error) as error:
        raise ValueError(f"bad signature {text[:20]!r}...: {error}") from None
    if len(raw) != 64:
        raise ValueError(f"an ed25519 signature has 64 bytes, got {len(raw)}")
    return Signature(public_key, raw)


def update_envelope(
    update: ConstellationUpdate, signatures: Iterable[Signature]
) -> ConstellationMessageEnvelope:
    """Returns the signed envelope, one signature per signer (the last given wins)."""
    by_signer = {signature.signer: signature for signature in signatures}
    return ConstellationMessageEnvelope(update, tuple(by_signer.values()))


def first_update_check(envelope: ConstellationMessageEnvelope) -> None:
    """Raises ValueError unless the envelope could initialize a constellation: valid first
    settings signed by a majority of the auditors they list (the engine checks it again)."""
    update = envelope.message
    if not isinstance(update, ConstellationUpdate):
        raise ValueError("the envelope must carry a ConstellationUpdate")
    settings = update.settings
    try:
        validate_settings(settings, None)
    except ConstellationError as error:
        raise ValueError(str(error)) from None
    config = Config.from_settings(settings)
    valid = count_valid_signers(envelope, config.auditor_keys)
    if valid < config.majority:
        raise ValueError(
            f"signed by {valid} of {len(config.auditor_keys)} auditors; {config.majority} required"
        )
