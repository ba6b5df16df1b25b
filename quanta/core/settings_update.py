"""Signing a ConstellationUpdate: what the auditors sign and how their signatures travel.

Every auditor signs `update_digest(constellation id, update)`: the XDR of the `Message` union
holding the ConstellationUpdate, bound to the constellation under `Domain.SETTINGS`
(`signatures.bound_digest`). The genesis update is signed under the id of the settings it
brings (`update_constellation_id`), so its signers sign the constellation's identity itself.
The update is valid once a majority of the auditors — of the settings it brings for the first
one, of the settings in force afterwards — signed it (`processors/settings.py`). Signatures are
exchanged as text `G...:<base64>` so an auditor can sign offline and paste or send one line.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable

from quanta.core.config import Config, validate_settings
from quanta.core.keys import InvalidKey, KeyPair, decode_public_key, encode_public_key
from quanta.core.processors.settings import count_valid_signers
from quanta.core.signatures import constellation_id_of, update_digest
from quanta.core.status import ConstellationError
from quanta.core.xdr.schema import (
    ConstellationMessageEnvelope,
    ConstellationUpdate,
    Signature,
)


def update_constellation_id(update: ConstellationUpdate, current: bytes | None) -> bytes:
    """Returns the id an update is signed under: `current` (that of the constellation in
    force), or for the genesis update (`current` None) the id its own settings give."""
    return constellation_id_of(update.settings) if current is None else current


def update_sign(
    update: ConstellationUpdate, keypair: KeyPair, constellation_id: bytes | None
) -> Signature:
    """Returns `keypair`'s signature of the update for the constellation `constellation_id`
    (None: the update is the genesis of a new one)."""
    digest = update_digest(update_constellation_id(update, constellation_id), update)
    return Signature(keypair.public_key, keypair.sign(digest))


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
    valid = count_valid_signers(envelope, config.auditor_keys, config.constellation_id)
    if valid < config.majority:
        raise ValueError(
            f"signed by {valid} of {len(config.auditor_keys)} auditors; {config.majority} required"
        )
