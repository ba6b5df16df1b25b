"""INTERIM: the bound digests of /work/notes/spec16.md, until `quanta.core` provides them.

Deleted once the core rule is merged (constellation_client.digests imports the nodes' own)."""

from __future__ import annotations

import enum
import hashlib

from quanta.core.xdr.codec import encode
from quanta.core.xdr.schema import MESSAGE, ConstellationSettings, ConstellationUpdate


class Domain(enum.IntEnum):
    """What a bound digest signs."""

    MESSAGE = 1
    QUANTUM = 2
    SETTINGS = 3


def constellation_id_of(genesis_settings: ConstellationSettings) -> bytes:
    """Returns SHA-256 of the XDR of the genesis settings."""
    return hashlib.sha256(encode(genesis_settings)).digest()


def bound_digest(constellation_id: bytes, domain: Domain, body: bytes) -> bytes:
    """Returns SHA-256(id ‖ uint8 domain ‖ body)."""
    assert len(constellation_id) == 32
    return hashlib.sha256(constellation_id + bytes([int(domain)]) + body).digest()


def message_digest(constellation_id: bytes, message_xdr: bytes) -> bytes:
    """Returns the digest an envelope signs."""
    return bound_digest(constellation_id, Domain.MESSAGE, message_xdr)


def payload_hash(
    constellation_id: bytes, apex: int, quantum_hash: bytes, effects_hash: bytes
) -> bytes:
    """Returns the digest every node signs per quantum."""
    assert 0 <= apex < 2**64 and len(quantum_hash) == 32 and len(effects_hash) == 32
    body = apex.to_bytes(8, "big") + quantum_hash + effects_hash
    return bound_digest(constellation_id, Domain.QUANTUM, body)


def update_digest(constellation_id: bytes, update: ConstellationUpdate) -> bytes:
    """Returns the digest an auditor signs for a settings update."""
    return bound_digest(constellation_id, Domain.SETTINGS, encode(update, MESSAGE))
