"""The constellation id and the digests the client signs and verifies, bound to that id.

Every signed digest of the protocol is bound to the constellation's id (issue 16, SPEC.md
"Safety and trust rules"): SHA-256(constellation id (32) ‖ uint8 domain ‖ body), so nothing
signed for one constellation verifies on another. The id is the SHA-256 of the XDR of the
genesis `ConstellationSettings`; its text form is 64 lowercase hex characters.

The formulas are the nodes' own (`quanta.core.signatures`):
the client only re-exports them, so client and nodes cannot drift apart. `parse_constellation_id`
is the one reader of a pinned id (flag, environment, config file, library argument).
"""

from __future__ import annotations

import binascii

from quanta.core.signatures import (
    CONSTELLATION_ID_LENGTH,
    Domain,
    bound_digest,
    constellation_id_of,
    message_digest,
    payload_hash,
    update_digest,
)

__all__ = [
    "CONSTELLATION_ID_LENGTH",
    "Domain",
    "ConstellationIdError",
    "bound_digest",
    "constellation_id_of",
    "message_digest",
    "parse_constellation_id",
    "payload_hash",
    "short_id",
    "update_digest",
]


class ConstellationIdError(ValueError):
    """A pinned constellation id that is neither 32 bytes nor 64 hex characters."""


def parse_constellation_id(value: str | bytes) -> bytes:
    """Returns the 32-byte id from raw bytes or 64 hex characters (either case, surrounding
    blanks ignored); raises ConstellationIdError saying what is wrong."""
    if isinstance(value, bytes):
        if len(value) != CONSTELLATION_ID_LENGTH:
            raise ConstellationIdError(
                f"a constellation id has {CONSTELLATION_ID_LENGTH} bytes, got {len(value)}"
            )
        return value
    text = value.strip()
    if len(text) != 2 * CONSTELLATION_ID_LENGTH:
        raise ConstellationIdError(
            f"a constellation id is {2 * CONSTELLATION_ID_LENGTH} hex characters, got {len(text)}"
        )
    try:
        return binascii.unhexlify(text)
    except binascii.Error:
        raise ConstellationIdError(f"a constellation id is hex, got {text[:16]!r}…") from None


def short_id(constellation_id: bytes) -> str:
    """Returns the first 8 hex characters and an ellipsis, for error messages."""
    return constellation_id.hex()[:8] + "…"
