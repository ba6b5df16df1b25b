"""What bytes are signed in Constellation, and how a majority of signatures is counted.

All signatures are detached ed25519 signatures (64 bytes) of a 32-byte SHA-256 digest, and
every digest is bound to one constellation and one kind of signed thing (the one rule,
`bound_digest`):

    digest = SHA-256(constellation id (32 bytes) ‖ domain (1 byte) ‖ body)

The constellation id is `constellation_id_of(genesis settings)`: SHA-256 of the XDR of the
first `ConstellationSettings`. So a request, a handshake or a node signature made for one
constellation never verifies on another (a key registered on two constellations cannot have
its requests replayed from one to the other), and a signature of one kind can never pass for
another (`Domain`). static/js/verify.js mirrors this rule; docs/protocol.md documents it.

(a) Envelopes (`Domain.MESSAGE`). A `MessageEnvelope` sent by a client, alpha or an auditor
    carries one signature of `message_digest(id, message_xdr)`, body = the XDR bytes of the
    enveloped message, made with the sender's key. The XDR bytes are the exact bytes received
    on the wire (the codec is strict, so re-encoding a decoded message gives the same bytes).

(b) The handshake. The response to the 32 random handshake bytes is an ordinary
    `MessageEnvelope` around the `HandshakeResponse` message (which contains those bytes), so
    it is covered by (a): bound to the constellation, a response relayed from another
    constellation's challenge does not verify there.

(c) Quanta (`Domain.QUANTUM`). Every node, alpha included, signs for each quantum the payload
    hash `payload_hash(id, apex, quantum_hash, effects_hash)`, body = apex as uint64
    big-endian ‖ quantum hash (32 bytes) ‖ effects hash (32 bytes).

(d) Settings updates (`Domain.SETTINGS`, `settings_update.update_digest`), body = the XDR of
    the `ConstellationUpdate` message. The genesis update is signed under the id of the
    settings it brings.

(e) State attestations (domain byte 4, `quanta.core.state_snapshot.attestation_digest`),
    body = apex as uint64 big-endian ‖ state hash (32 bytes): a node's word that its state
    after the quantum at that apex has that state hash (what a joining node trusts a
    snapshot by, docs/engine.md "Joining from a snapshot").

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
from quanta.core.xdr.codec import encode
from quanta.core.xdr.schema import MESSAGE, ConstellationSettings, Message

DIGEST_LENGTH: Final = 32
CONSTELLATION_ID_LENGTH: Final = 32
_UINT64_LIMIT: Final = 2**64
NO_CONSTELLATION: Final = bytes(CONSTELLATION_ID_LENGTH)
"""The id a fresh auditor (no settings yet, catching up from genesis) signs its herald frames
under: it cannot know its constellation's id before it holds the genesis quantum. Alpha
accepts it only on a link whose auditor said it holds no quantum (`herald.core.protocol`);
payload signatures are never made under it."""


class Domain(enum.IntEnum):
    """What kind of thing a digest is of: one byte of every signed digest."""

    MESSAGE = 1
    QUANTUM = 2
    SETTINGS = 3


def constellation_id_of(genesis: ConstellationSettings) -> bytes:
    """Returns the constellation id: SHA-256 of the XDR of its first (version 1) settings."""
    return hashlib.sha256(encode(genesis)).digest()


def bound_digest(constellation_id: bytes, domain: Domain, body: bytes) -> bytes:
    """Returns SHA-256(constellation id ‖ domain byte ‖ body): every signed digest."""
    # Ids come from our own settings or a pinned, length-checked value: a wrong one is a bug.
    assert len(constellation_id) == CONSTELLATION_ID_LENGTH
    return hashlib.sha256(b"".join((constellation_id, bytes((domain,)), body))).digest()


def message_digest(constellation_id: bytes, message_xdr: bytes) -> bytes:
    """Returns the digest an envelope of a message's XDR bytes signs."""
    return bound_digest(constellation_id, Domain.MESSAGE, message_xdr)


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


def update_bytes(update: Message) -> bytes:
    """Returns the bytes of a settings update that its signers sign (bound, `update_digest`):
    the XDR of the Message union holding it (a ConstellationUpdate; whoever checks one that is
    not checks that too)."""
    return encode(update, MESSAGE)


def update_digest(constellation_id: bytes, update: Message) -> bytes:
    """Returns what a signature of a settings update covers."""
    return bound_digest(constellation_id, Domain.SETTINGS, update_bytes(update))


def payload_hash(
    constellation_id: bytes, apex: int, quantum_hash: bytes, effects_hash: bytes
) -> bytes:
    """Returns the digest every node signs per quantum: apex uint64 big-endian ‖ quantum hash ‖
    effects hash, bound to the constellation."""
    assert 0 <= apex < _UINT64_LIMIT
    assert len(quantum_hash) == DIGEST_LENGTH
    assert len(effects_hash) == DIGEST_LENGTH
    body = b"".join((apex.to_bytes(8, "big"), quantum_hash, effects_hash))
    return bound_digest(constellation_id, Domain.QUANTUM, body)


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
        self.add_verified(signer_index, signature)

    def add_verified(self, signer_index: int, signature: bytes) -> None:
        """Records, unverified, a signature known valid for this payload hash under the same
        key: one the caller made itself (`add_own`) or already verified (a client taking a
        later copy of a result that repeats it)."""
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
