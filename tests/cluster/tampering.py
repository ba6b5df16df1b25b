"""A deliberately dishonest auditor, for the consensus tests.

It executes everything like an honest auditor but signs a payload hash of its own making — as
a node whose effects differ from alpha's, or a forger, would. Alpha must ignore its signatures
and still finalize with the honest majority. Only the tests' settings module
`settings_tampering.py` names it (AUDITOR_NODE_CLASS); the production tree has no way to.
"""

from __future__ import annotations

from quanta.core.auditor import AuditorNode
from quanta.core.hashing import sha256


class TamperingAuditorNode(AuditorNode):
    """Signs `sha256(b"tampered" + payload hash)` instead of the payload hash."""

    def sign_payload(self, payload_hash: bytes) -> bytes:
        """Returns a signature alpha cannot verify against the real payload hash."""
        return self.keypair.sign(sha256(b"tampered" + payload_hash))
