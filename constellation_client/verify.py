"""Client-side finality check of quantum results (docs/protocol.md, "Requests and results").

A client trusts nothing but the auditor keys of the settings it verified from its pinned
constellation id (`constellation_client.chain`): from a `QuantumResultMessage` it recomputes the
effects proof (SHA-256 over the group hashes in the order given, a full `EffectsGroup` hashing
as SHA-256 of its XDR and an `EffectsGroupHash` giving its hash), then the payload hash
`payload_hash(pinned id, apex, quantum hash, effects proof)`, which must equal
`payload_proof.payload_hash`; only then are the node signatures counted: valid ones from
distinct auditor indexes, final when they reach a majority with alpha's among them. A proof
made for another constellation carries another payload hash, so it never verifies here.

A load generator may verify the signatures of only some results (`SignatureSampler`); the
others still get their payload hash recomputed, but their signatures are only counted.
`RequestResult.update` recomputes it once per quantum: a later copy of a result (the
finalization after the acknowledgement) claiming the payload hash already matched only has
its signatures checked (`check_signatures`), and its effects are not taken.

Pure functions only: no I/O, no clock, so the same checks run in tests and in the client (the
sampler's random draw can be replaced in tests).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping, Sequence
from typing import NamedTuple

from constellation_client.digests import payload_hash
from constellation_client.wire import Constellation
from quanta.core.hashing import effects_proof as core_effects_proof
from quanta.core.hashing import group_hash, sha256
from quanta.core.keys import SIGNATURE_LENGTH
from quanta.core.records import record
from quanta.core.signatures import SignatureSet, majority
from quanta.core.xdr.codec import XdrError, decode
from quanta.core.xdr.schema import (
    EffectsGroup,
    EffectsGroupHash,
    NodeSignature,
    Quantum,
    QuantumInfoItem,
    QuantumResultMessage,
)

HASH_LENGTH = 32


class Finality(NamedTuple):
    """Whether a result is final and how many distinct valid auditor signatures it carries."""

    is_final: bool
    valid_count: int


@record
class ResultCheck:
    """Everything the client learns from checking one quantum result."""

    payload_valid: bool
    alpha_signed: bool
    valid_count: int
    is_final: bool
    # False when the signatures were counted without being verified (`SignatureSampler`).
    signatures_checked: bool = True
    # The valid signatures found, (auditor index, signature) by index; empty unless checked.
    accepted: tuple[tuple[int, bytes], ...] = ()


def group_digest(info: EffectsGroup | EffectsGroupHash) -> bytes:
    """Returns the hash of one effects group, full or already reduced to its hash."""
    if isinstance(info, EffectsGroupHash):
        return info.hash
    return group_hash(info)


def effects_proof(effects: Sequence[EffectsGroup | EffectsGroupHash]) -> bytes:
    """Returns the effects proof of a result's groups, in the order given: the nodes' own
    rule (`quanta.core.hashing`), so client and nodes cannot drift apart."""
    return core_effects_proof(group_digest(info) for info in effects)


def expected_payload_hash(message: QuantumResultMessage, constellation_id: bytes) -> bytes | None:
    """Returns the payload hash the result's apex, quantum hash and effects imply in the
    constellation `constellation_id`.

    None when the message cannot describe a quantum (wrong hash length, apex out of range)."""
    if len(message.quantum_hash) != HASH_LENGTH or not 0 <= message.apex < 2**64:
        return None
    proof = effects_proof(message.effects)
    return payload_hash(constellation_id, message.apex, message.quantum_hash, proof)


def _signature_set(
    auditor_keys: Sequence[bytes],
    alpha_index: int,
    digest: bytes,
    signatures: Sequence[NodeSignature],
    verified: Mapping[int, bytes] | None = None,
) -> SignatureSet:
    """Returns the set of valid signatures of `digest` from distinct auditors; those in
    `verified` (index to signature, verified before for `digest` under the same keys) are
    taken without verifying them again."""
    signature_set = SignatureSet(auditor_keys, alpha_index, digest)
    for node_signature in signatures:
        index, signature = int(node_signature.auditor_index), node_signature.signature
        if verified is not None and verified.get(index) == signature:
            signature_set.add_verified(index, signature)
        else:
            signature_set.add(index, signature)
    return signature_set


def _counted_signatures(
    auditor_count: int, alpha_index: int, signatures: Sequence[NodeSignature]
) -> set[int]:
    """Returns the distinct in-range auditor indexes that carry a 64-byte signature, without
    verifying any signature."""
    return {
        int(node_signature.auditor_index)
        for node_signature in signatures
        if 0 <= node_signature.auditor_index < auditor_count
        and len(node_signature.signature) == SIGNATURE_LENGTH
    }


def check_result(
    message: QuantumResultMessage,
    constellation: Constellation,
    *,
    verify_signatures: bool = True,
) -> ResultCheck:
    """Checks a quantum result's payload proof against its content and the trusted keys.

    The payload hash is always recomputed and compared. With `verify_signatures` False (for
    load generators only, see `SignatureSampler`) the node signatures are counted as if valid:
    distinct in-range auditor indexes with a 64-byte signature, alpha's among them."""
    claimed = message.payload_proof.payload_hash
    if expected_payload_hash(message, constellation.constellation_id) != claimed:
        return ResultCheck(False, False, 0, False, verify_signatures)
    return check_signatures(
        claimed,
        message.payload_proof.signatures,
        constellation.auditor_keys,
        constellation.alpha_index,
        verify_signatures=verify_signatures,
    )


def check_signatures(
    claimed: bytes,
    signatures: Sequence[NodeSignature],
    auditor_keys: Sequence[bytes],
    alpha_index: int,
    *,
    verify_signatures: bool = True,
    verified: Mapping[int, bytes] | None = None,
) -> ResultCheck:
    """Checks the node signatures of a payload hash the caller has already matched against
    the result's content (`check_result` does both). `verified`: signatures of `claimed`
    the caller verified before under these keys (`ResultCheck.accepted` of an earlier copy),
    taken as they are when repeated byte for byte: a finalization repeats alpha's signature
    of the acknowledgement, which then costs one verification less."""
    if not verify_signatures:
        counted = _counted_signatures(len(auditor_keys), alpha_index, signatures)
        has_alpha = alpha_index in counted
        is_final = has_alpha and len(counted) >= majority(len(auditor_keys))
        return ResultCheck(True, has_alpha, len(counted), is_final, False)
    signature_set = _signature_set(auditor_keys, alpha_index, claimed, signatures, verified)
    return ResultCheck(
        True,
        signature_set.has_alpha,
        len(signature_set),
        signature_set.is_final,
        accepted=signature_set.signatures(),
    )


class SignatureSampler:
    """Chooses the quantum results whose node signatures the client verifies.

    With `one_in` = 1 (the default, and the only setting for real clients) every result is
    verified. With N > 1, meant only for load generators such as bench/cluster.py (where
    verifying every signature of every result would measure the client, not the
    constellation), each result is verified with probability 1/N; the others' signatures are
    only counted (`check_result(..., verify_signatures=False)`). The choice is drawn from a
    cryptographic random source, so a node cannot tell which results will go unverified and
    forge only those; a forged signature is caught with probability 1/N per result."""

    __slots__ = ("_draw", "_one_in")

    def __init__(self, one_in: int = 1, draw: Callable[[int], int] | None = None) -> None:
        """Verifies one result in `one_in`; `draw(n)` returns a random int in [0, n)
        (by default from `SecureDraws`)."""
        if isinstance(one_in, bool) or not isinstance(one_in, int) or one_in < 1:
            raise ValueError(f"verify_one_in must be a positive integer, got {one_in!r}")
        self._one_in = one_in
        self._draw = draw or SecureDraws().below

    @property
    def one_in(self) -> int:
        """Returns N: one result in N has its signatures verified."""
        return self._one_in

    def take(self) -> bool:
        """Tells whether the next result's signatures are to be verified."""
        return self._one_in == 1 or self._draw(self._one_in) == 0


class SecureDraws:
    """Uniform random ints below n from the operating system's cryptographic source, read
    4 KiB at a time: `secrets.randbelow` costs one system call per draw, which a load
    generator taking a draw per result paid thousands of times a second."""

    __slots__ = ("_buffer", "_position")

    _REFILL = 4096
    _WORD = 4

    def __init__(self) -> None:
        self._buffer = b""
        self._position = 0

    def below(self, n: int) -> int:
        """Returns a uniform random int in [0, n), 1 <= n <= 2**32."""
        assert 1 <= n <= 2**32
        # Rejection sampling: words at or above the largest multiple of n are drawn again,
        # so every residue is equally likely.
        limit = 2**32 - 2**32 % n
        while True:
            if self._position + self._WORD > len(self._buffer):
                self._buffer, self._position = secrets.token_bytes(self._REFILL), 0
            start = self._position
            self._position = start + self._WORD
            word = int.from_bytes(self._buffer[start : self._position], "big")
            if word < limit:
                return word % n


def verify_finality(message: QuantumResultMessage, constellation: Constellation) -> Finality:
    """Returns (is_final, valid_count) for a quantum result; a tampered payload gives (False, 0).

    `constellation` holds the trusted keys in settings order and alpha's position among them
    (its signature is required for finality)."""
    check = check_result(message, constellation)
    return Finality(check.is_final, check.valid_count)


def item_quantum(item: QuantumInfoItem) -> Quantum | None:
    """Returns the quantum a history item carries once it matches the item: SHA-256 of its
    XDR is the item's quantum hash (`quanta.core.hashing.quantum_hash`) and its apex,
    effects proof and timestamp are the item's; None when the item carries none.

    Raises XdrError when the quantum is there but does not match (or does not decode)."""
    if item.quantum is None:
        return None
    if sha256(item.quantum) != item.quantum_hash:
        raise XdrError("the history item's quantum does not match its quantum hash")
    quantum: Quantum = decode(Quantum, item.quantum)
    if (quantum.apex, quantum.effects_proof, quantum.timestamp) != (
        item.apex,
        item.effects_hash,
        item.timestamp,
    ):
        raise XdrError("the history item's quantum names another apex, effects or time")
    return quantum


def item_group_proven(item: QuantumInfoItem) -> bool:
    """Tells whether the item's own group is one of its quantum's groups as signed: listed in
    `group_hashes` under its account with its hash, and those hashes make the effects hash."""
    own = (item.effects.account, group_hash(item.effects))
    listed = any((entry.account, entry.hash) == own for entry in item.group_hashes)
    return listed and core_effects_proof(e.hash for e in item.group_hashes) == item.effects_hash


def verify_history_item(item: QuantumInfoItem, constellation: Constellation) -> Finality:
    """Returns (is_final, valid_count) for one history item.

    The check covers the signed payload hash of (apex, quantum hash, effects hash), the
    account's own group against that effects hash (`item_group_proven`: a node cannot make up
    the effects of a signed quantum), and the quantum the item carries (if any) against that
    quantum hash (`item_quantum`): an item failing either is unverified, (False, 0), like a
    bad signature."""
    if len(item.quantum_hash) != HASH_LENGTH or len(item.effects_hash) != HASH_LENGTH:
        return Finality(False, 0)
    if not item_group_proven(item):
        return Finality(False, 0)
    try:
        item_quantum(item)
    except XdrError:
        return Finality(False, 0)
    digest = payload_hash(
        constellation.constellation_id, item.apex, item.quantum_hash, item.effects_hash
    )
    signature_set = _signature_set(
        constellation.auditor_keys, constellation.alpha_index, digest, item.signatures
    )
    return Finality(signature_set.is_final, len(signature_set))
