"""Evidence of a node misbehaving: kept so that anyone can check it later, not just believe it.

Two kinds (SECURITY.md L6; issue 15, item 6):
- `INVALID_SIGNATURE`: an auditor sent a signature of a quantum's payload hash that does not
  verify under its key (a diverging or forging auditor). The record holds the quantum's XDR
  (so the payload hash can be recomputed), the payload hash, the signature, and the auditor's
  own signed frame that carried it (`carrier`): an invalid signature alone proves nothing,
  since anyone can make one; inside a frame the auditor signed it is the auditor's word.
- `ALPHA_EQUIVOCATION`: alpha's key signed two different quanta at one apex (seen by a rising
  alpha among the auditors' answers, or by an auditor among alpha's frames). Both signed
  payloads are kept: each quantum's XDR, its payload hash and alpha's signature of it.

The core only builds the items (`AlphaNode.evidence`, `AuditorNode.evidence`); the node's
flush persists them (`quanta.node.persistence.evidence_persist`). `evidence_holds` re-checks a
record from its bytes alone, with no trust in the node that wrote it.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

from quanta.core.hashing import quantum_hash
from quanta.core.signatures import payload_hash, verify_digest
from quanta.core.xdr.codec import XdrError, decode, encode
from quanta.core.xdr.schema import Quantum


class EvidenceKind(enum.StrEnum):
    """What a record proves."""

    INVALID_SIGNATURE = "invalid_signature"
    ALPHA_EQUIVOCATION = "alpha_equivocation"


@dataclass(frozen=True, slots=True)
class SignedPayload:
    """One quantum (XDR, empty if unknown), its payload hash and a signature of that hash."""

    quantum: bytes
    payload_hash: bytes
    signature: bytes


@dataclass(frozen=True, slots=True)
class EvidenceItem:
    """One piece of evidence against the holder of `signer` at `apex`."""

    kind: EvidenceKind
    signer: bytes
    apex: int
    first: SignedPayload
    second: SignedPayload | None = None
    carrier: bytes = b""
    detail: str = ""


@dataclass(frozen=True, slots=True)
class LateSignature:
    """An auditor's signature that arrived after its quantum was final: checked off the
    engine's hot path (`late_signature_failures`), since finality no longer needs it."""

    apex: int
    signer_index: int
    signer: bytes
    payload_hash: bytes
    signature: bytes
    carrier: bytes


def invalid_signature(
    signer: bytes, quantum: Quantum, signed: SignedPayload, carrier: bytes, signer_index: int
) -> EvidenceItem:
    """Returns the evidence of an auditor's signature that does not verify."""
    return EvidenceItem(
        EvidenceKind.INVALID_SIGNATURE,
        signer,
        int(quantum.apex),
        SignedPayload(encode(quantum), signed.payload_hash, signed.signature),
        carrier=carrier,
        detail=f"auditor {signer_index}'s signature of quantum {quantum.apex} does not verify",
    )


def equivocation(
    signer: bytes, apex: int, first: SignedPayload, second: SignedPayload, seen_by: str
) -> EvidenceItem:
    """Returns the evidence of alpha's key signing two different quanta at `apex`."""
    return EvidenceItem(
        EvidenceKind.ALPHA_EQUIVOCATION,
        signer,
        apex,
        first,
        second,
        detail=f"alpha signed two different quanta at apex {apex} (seen by {seen_by})",
    )


def late_signature_failures(late: Iterable[LateSignature]) -> list[LateSignature]:
    """Returns the late signatures that do not verify (pure; may run in a thread: the
    verification releases the GIL)."""
    return [s for s in late if not verify_digest(s.signer, s.payload_hash, s.signature)]


def _payload_of(quantum_xdr: bytes, constellation_id: bytes) -> bytes | None:
    try:
        quantum = decode(Quantum, quantum_xdr)
    except XdrError:
        return None
    return payload_hash(
        constellation_id, quantum.apex, quantum_hash(quantum), quantum.effects_proof
    )


def evidence_holds(item: EvidenceItem, constellation_id: bytes) -> bool:
    """Tells whether the record proves what its kind says, from its bytes and the id of the
    constellation they belong to: the payload hashes are those of the quanta kept, and the
    signatures verify (equivocation) or do not (invalid signature) under the signer's key."""
    first = item.first
    if _payload_of(first.quantum, constellation_id) != first.payload_hash:
        return False
    if item.kind == EvidenceKind.INVALID_SIGNATURE:
        return not verify_digest(item.signer, first.payload_hash, first.signature)
    second = item.second
    if second is None or _payload_of(second.quantum, constellation_id) != second.payload_hash:
        return False
    return (
        first.payload_hash != second.payload_hash
        and verify_digest(item.signer, first.payload_hash, first.signature)
        and verify_digest(item.signer, second.payload_hash, second.signature)
    )
