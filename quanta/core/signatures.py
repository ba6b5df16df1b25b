"""What bytes are signed in Constellation, and how a majority of signatures is counted.

All signatures are detached ed25519 signatures (64 bytes) of a 32-byte SHA-256 digest; no
signature ever covers anything else:

(a) Envelopes. A `MessageEnvelope` sent by a client or an auditor carries one signature of
    `message_digest(message_xdr)` = SHA-256(XDR bytes of the enveloped message), made with
    the sender's key. The XDR bytes are the exact bytes received on the wire (the codec is
    strict, so re-encoding a decoded message gives the same bytes).

(b) The handshake. The response to the 32 random handshake bytes is an ordinary
    `MessageEnvelope` around the `HandshakeResponse` message (which contains those bytes), so
    it is covered by (a); there is no separate handshake signing rule.

(c) Quanta. Every node, alpha included, signs for each quantum the payload hash
    `payload_hash(apex, quantum_hash, effects_hash)` =
    SHA-256(apex as uint64 big-endian ‖ quantum hash (32 bytes) ‖ effects hash (32 bytes)).

A quantum is final when its payload hash carries valid signatures from a majority
(`majority(n)` = n // 2 + 1 of the n auditors in the settings) of distinct auditors, alpha's
signature among them. `SignatureSet` accumulates signatures as they arrive on a node;
`verify_majority` is the one-shot check a client runs on a finalized result.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Iterable, Sequence
from typing import Final

from quanta.core.keys import KEY_LENGTH, KeyPair, verify_signature

DIGEST_LENGTH: Final = 32
_UINT64_LIMIT: Final = 2**64


def message_digest(message_xdr: bytes) -> bytes:
    """Returns the SHA-256 digest of a message's XDR bytes, the value an envelope signs."""
    return hashlib.sha256(message_xdr).digest()


def sign_digest(keypair: KeyPair, digest: bytes) -> bytes:
    """Returns keypair's 64-byte signature of a 32-byte digest."""
    # Our own code computes the digest, so a wrong length is a programmer error.
    assert len(digest) == DIGEST_LENGTH
    return keypair.sign(digest)


def verify_digest(public_key: bytes, digest: bytes, signature: bytes) -> bool:
    """Tells whether signature is public_key's valid signature of a 32-byte digest.

    Never raises: digests may come from the wire, so a wrong length just gives False.
    """
    if not isinstance(digest, bytes) or len(digest) != DIGEST_LENGTH:
        return False
    return verify_signature(public_key, digest, signature)


def payload_hash(apex: int, quantum_hash: bytes, effects_hash: bytes) -> bytes:
    """Returns SHA-256(apex uint64 big-endian ‖ quantum hash ‖ effects hash), signed per quantum."""
    assert 0 <= apex < _UINT64_LIMIT
    assert len(quantum_hash) == DIGEST_LENGTH
    assert len(effects_hash) == DIGEST_LENGTH
    return hashlib.sha256(b"".join((apex.to_bytes(8, "big"), quantum_hash, effects_hash))).digest()


def majority(auditor_count: int) -> int:
    """Returns how many distinct auditor signatures make a result final: n // 2 + 1."""
    assert auditor_count >= 1
    return auditor_count // 2 + 1


class Verdict(enum.Enum):
    """What `SignatureSet.offer` made of a signature."""

    ACCEPTED = "accepted"
    UNKNOWN_SIGNER = "signer index out of range"
    DUPLICATE = "signer already counted"
    INVALID = "does not verify under the signer's key"


class SignatureSet:
    """Accumulates valid signatures of one payload hash from distinct auditors."""

    __slots__ = ("_alpha_index", "_auditor_keys", "_payload_hash", "_signatures")

    def __init__(
        self, auditor_keys: Sequence[bytes], alpha_index: int, payload_hash: bytes
    ) -> None:
        """Starts an empty set for payload_hash, signed by the ordered auditor keys."""
        # The auditor list comes from validated settings: a bad one is a configuration bug,
        # and a duplicated key would let one auditor count twice towards the majority.
        assert len(auditor_keys) >= 1
        assert all(len(key) == KEY_LENGTH for key in auditor_keys)
        assert len(set(auditor_keys)) == len(auditor_keys)
        assert 0 <= alpha_index < len(auditor_keys)
        assert len(payload_hash) == DIGEST_LENGTH
        self._auditor_keys = tuple(auditor_keys)
        self._alpha_index = alpha_index
        self._payload_hash = payload_hash
        self._signatures: dict[int, bytes] = {}

    @property
    def payload_hash(self) -> bytes:
        """Returns the payload hash these signatures cover."""
        return self._payload_hash

    @property
    def auditor_keys(self) -> tuple[bytes, ...]:
        """Returns the ordered keys of the settings this payload is signed under."""
        return self._auditor_keys

    @property
    def majority(self) -> int:
        """Returns how many signatures make this set final."""
        return majority(len(self._auditor_keys))

    @property
    def has_alpha(self) -> bool:
        """Tells whether alpha's signature has been accepted."""
        return self._alpha_index in self._signatures

    @property
    def is_final(self) -> bool:
        """Tells whether alpha signed and a majority of distinct auditors signed."""
        return self.has_alpha and len(self._signatures) >= self.majority

    def __len__(self) -> int:
        """Returns the number of accepted signatures."""
        return len(self._signatures)

    def add(self, signer_index: int, signature: bytes) -> bool:
        """Verifies and records one auditor's signature; returns whether it was newly accepted.

        Out-of-range indexes, signers already present and invalid signatures are refused.
        """
        return self.offer(signer_index, signature) is Verdict.ACCEPTED

    def offer(self, signer_index: int, signature: bytes) -> Verdict:
        """Like `add`, but says why a signature was refused: an invalid one is evidence
        against its signer (`quanta.core.evidence`), a duplicate is not."""
        if not 0 <= signer_index < len(self._auditor_keys):
            return Verdict.UNKNOWN_SIGNER
        if signer_index in self._signatures:
            return Verdict.DUPLICATE
        public_key = self._auditor_keys[signer_index]
        if not verify_digest(public_key, self._payload_hash, signature):
            return Verdict.INVALID
        self._signatures[signer_index] = signature
        return Verdict.ACCEPTED

    def signer_key(self, signer_index: int) -> bytes:
        """Returns the public key of the auditor at `signer_index` (in range)."""
        return self._auditor_keys[signer_index]

    def add_own(self, signer_index: int, signature: bytes) -> None:
        """Records the signature this node just made with its own key, unverified: a key pair
        derived from its seed always signs validly, so checking would only cost a
        verification per quantum (unit tests check that such signatures verify)."""
        assert 0 <= signer_index < len(self._auditor_keys)
        assert len(signature) == 64
        self._signatures[signer_index] = signature

    def signatures(self) -> tuple[tuple[int, bytes], ...]:
        """Returns the accepted (signer index, signature) pairs sorted by index."""
        return tuple(sorted(self._signatures.items()))


def verify_majority(
    auditor_keys: Sequence[bytes],
    alpha_index: int,
    payload_hash: bytes,
    signatures: Iterable[tuple[int, bytes]],
) -> bool:
    """Tells whether signatures hold alpha's and a majority of distinct valid ones.

    Invalid, duplicate and out-of-range entries are ignored rather than fatal, so a result
    that also carries junk is still accepted when its valid signatures suffice.
    """
    if not isinstance(payload_hash, bytes) or len(payload_hash) != DIGEST_LENGTH:
        return False
    signature_set = SignatureSet(auditor_keys, alpha_index, payload_hash)
    for signer_index, signature in signatures:
        signature_set.add(signer_index, signature)
    return signature_set.is_final
