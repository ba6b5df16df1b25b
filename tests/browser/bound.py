"""The issue-16 signing rule written out with hashlib, straight from the spec
(/work/notes/spec16.md), so the browser's digests are checked against the rule itself and not
only against the Python implementation of it (`quanta.core.signatures`).

    constellation id = SHA-256(XDR of the genesis ConstellationSettings)
    bound digest     = SHA-256(constellation id (32) ‖ uint8 domain ‖ body)
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence

from quanta.core.keys import KeyPair
from quanta.core.xdr.codec import encode
from quanta.core.xdr.schema import (
    MESSAGE,
    ConstellationMessageEnvelope,
    ConstellationSettings,
    ConstellationUpdate,
    Message,
    Signature,
)

MESSAGE_DOMAIN = 1
QUANTUM_DOMAIN = 2
SETTINGS_DOMAIN = 3


def bound(constellation_id: bytes, domain: int, body: bytes) -> bytes:
    """Returns SHA-256(constellation id ‖ uint8 domain ‖ body)."""
    assert len(constellation_id) == 32
    return hashlib.sha256(constellation_id + bytes([domain]) + body).digest()


def constellation_id(genesis: ConstellationSettings) -> bytes:
    """Returns the id of the constellation whose genesis settings these are."""
    return hashlib.sha256(encode(genesis)).digest()


def payload(constellation_id: bytes, apex: int, quantum_hash: bytes, effects_hash: bytes) -> bytes:
    """Returns the payload hash every node signs for a quantum."""
    return bound(
        constellation_id, QUANTUM_DOMAIN, apex.to_bytes(8, "big") + quantum_hash + effects_hash
    )


def frame(message: Message, keypair: KeyPair, constellation_id: bytes) -> bytes:
    """Returns a MessageEnvelope's bytes: the message, the signer, the bound signature."""
    body = encode(message, MESSAGE)
    digest = bound(constellation_id, MESSAGE_DOMAIN, body)
    return body + keypair.public_key + keypair.sign(digest)


def update_entry(
    settings: ConstellationSettings,
    signers: Sequence[KeyPair],
    cid: bytes | None = None,
    *,
    digest: bytes | None = None,
    version: int | None = None,
) -> dict[str, object]:
    """Returns one settings-chain entry as the node serves it, signed under `cid` (by default
    the id of these settings, right for the genesis); `digest` replaces what the signers sign
    (to forge), `version` the listed version."""
    update = ConstellationUpdate(settings.version, settings)
    cid = cid or constellation_id(settings)
    signed = digest or bound(cid, SETTINGS_DOMAIN, encode(update, MESSAGE))
    signatures = tuple(Signature(k.public_key, k.sign(signed)) for k in signers)
    envelope = ConstellationMessageEnvelope(update, signatures)
    return {
        "version": settings.version if version is None else version,
        "apex": settings.version * 10,
        "envelope": base64.b64encode(encode(envelope)).decode(),
    }
