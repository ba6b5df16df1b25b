"""The hashes of the quantum chain (SPEC.md, Quanta).

- quantum hash: SHA-256 of the quantum's XDR bytes, with apex, prev_hash, effects_proof and
  timestamp already set;
- effects group hash: SHA-256 of the XDR bytes of one `EffectsGroup`;
- effects proof: SHA-256 of the concatenation of the group hashes, groups in ascending account
  order (the order `group_effects` produces), so it does not depend on the order in which a
  processor happened to emit effects.
The payload hash that nodes sign is in `signatures.payload_hash`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

from quanta.core.xdr.codec import encode
from quanta.core.xdr.schema import EffectsGroup, Quantum

ZERO_HASH = bytes(32)


def sha256(data: bytes) -> bytes:
    """Returns the SHA-256 digest of `data`."""
    return hashlib.sha256(data).digest()


def quantum_hash(quantum: Quantum) -> bytes:
    """Returns the hash that chains this quantum to the next one."""
    return sha256(encode(quantum))


def group_hash(group: EffectsGroup) -> bytes:
    """Returns the hash of one account's effects group."""
    return sha256(encode(group))


def effects_proof(group_hashes: Iterable[bytes]) -> bytes:
    """Returns SHA-256 over the concatenated group hashes (all 32 bytes each)."""
    joined = b"".join(group_hashes)
    assert len(joined) % 32 == 0, "group hashes are 32 bytes each"
    return sha256(joined)


def effects_proof_of(
    groups: Sequence[EffectsGroup],
) -> tuple[bytes, list[bytes], list[bytes]]:
    """Returns the effects proof of `groups`, the hash of each group and its XDR (kept for
    persistence, which would otherwise encode every group again)."""
    # `group_hash` and `effects_proof` inlined: this runs on every quantum.
    new_hash = hashlib.sha256
    encoded = [encode(group) for group in groups]
    hashes = [new_hash(data).digest() for data in encoded]
    return new_hash(b"".join(hashes)).digest(), hashes, encoded
