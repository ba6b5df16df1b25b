"""Alpha's recovery after a restart (Rising): gather from the auditors the quanta above the
apex alpha persisted, check them, and re-apply them before executing anything new.

Rules (SPEC.md, Catchup):
- for each apex keep only quanta whose payload hash alpha's key signed (a compromised or
  confused auditor cannot inject anything);
- aggregate the valid signatures of distinct auditors per apex;
- two different quanta signed by alpha at one apex mean alpha's key is compromised: fail;
- the recovered quanta must follow alpha's apex without a gap: otherwise fail;
- decide only once the auditors that answered intersect every possible finality quorum.

Why that many answers: a quantum is final once a majority signed it, alpha among them, so
besides alpha a finality quorum holds majority - 1 of the other n - 1 nodes. Alpha restarted
without what it had not persisted, so only the auditors can tell it what may be final; answers
from n - majority + 1 auditors (`answers_needed`) share at least one node with every such
quorum, so a quantum any honest node holds as final is among the answers and is re-applied,
never replaced at its apex. Deciding on a bare majority that counted alpha itself (as before)
let one lagging auditor, or one that answers an empty catchup, make alpha resume with a
different quantum at an apex another auditor already held as final. The price is
availability: with 3 nodes alpha rises only once both auditors answered.
The payload hash is computed from the quantum alone (its hash and its effects proof), so the
quanta can be checked before they are executed; executing them then proves the proof.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from quanta.core.config import Config
from quanta.core.evidence import EvidenceItem, SignedPayload, equivocation
from quanta.core.hashing import quantum_hash
from quanta.core.keys import verify_signature
from quanta.core.signatures import payload_hash
from quanta.core.xdr.codec import encode
from quanta.core.xdr.schema import SignedQuantum


def answers_needed(nodes: int, majority: int) -> int:
    """Returns how many auditors besides alpha must answer before recovery may decide: enough
    that they intersect the majority - 1 other signers of every finality quorum."""
    return min(nodes - majority + 1, nodes - 1)


class RisingFailed(Exception):  # noqa: N818 - a verdict on the recovery, not a caller error
    """The quanta the auditors hold cannot be trusted or do not form a chain."""


@dataclass(slots=True)
class Candidate:
    """One apex's quantum as offered by the auditors, with the signatures seen so far."""

    signed: SignedQuantum
    payload_hash: bytes
    signatures: dict[int, bytes] = field(default_factory=dict)


class Rising:
    """Collects and checks the auditors' quanta above `apex`."""

    def __init__(self, config: Config, apex: int) -> None:
        """Starts collecting for a node whose persisted apex is `apex`."""
        self.config = config
        self.apex = apex
        self.candidates: dict[int, Candidate] = {}
        self.answered: set[int] = set()
        # Two alpha-signed quanta at one apex, kept as evidence before recovery fails.
        self.evidence: list[EvidenceItem] = []
        self.answers_needed = answers_needed(len(config.auditor_keys), config.majority)

    def offer(self, auditor_index: int, quanta: tuple[SignedQuantum, ...], done: bool) -> None:
        """Adds an auditor's quanta; `done` says it has sent everything it holds."""
        for signed in quanta:
            if signed.quantum.apex > self.apex:
                self._offer_one(signed)
        if done and auditor_index != self.config.alpha_index:
            self.answered.add(auditor_index)

    def _offer_one(self, signed: SignedQuantum) -> None:
        quantum = signed.quantum
        payload = payload_hash(quantum.apex, quantum_hash(quantum), quantum.effects_proof)
        if not self._signed_by(signed, payload, self.config.alpha_index):
            return
        candidate = self.candidates.get(quantum.apex)
        if candidate is None:
            candidate = self.candidates[quantum.apex] = Candidate(signed, payload)
        elif candidate.payload_hash != payload:
            self.evidence.append(self._equivocation(candidate, signed, payload))
            raise RisingFailed(
                f"two different quanta signed by alpha at apex {quantum.apex}: "
                "alpha's key is compromised"
            )
        for signature in signed.signatures:
            if self._signed_by(signed, payload, signature.auditor_index, signature.signature):
                candidate.signatures[signature.auditor_index] = signature.signature

    def _equivocation(
        self, candidate: Candidate, signed: SignedQuantum, payload: bytes
    ) -> EvidenceItem:
        alpha = self.config.alpha_index
        return equivocation(
            self.config.auditor_keys[alpha],
            int(signed.quantum.apex),
            SignedPayload(
                encode(candidate.signed.quantum),
                candidate.payload_hash,
                self._signature_of(candidate.signed, candidate.payload_hash, alpha),
            ),
            SignedPayload(
                encode(signed.quantum), payload, self._signature_of(signed, payload, alpha)
            ),
            "a rising alpha",
        )

    def _signature_of(self, signed: SignedQuantum, payload: bytes, index: int) -> bytes:
        key = self.config.auditor_keys[index]
        for signature in signed.signatures:
            if signature.auditor_index == index and verify_signature(
                key, payload, signature.signature
            ):
                return bytes(signature.signature)
        return b""

    def _signed_by(
        self, signed: SignedQuantum, payload: bytes, index: int, only: bytes | None = None
    ) -> bool:
        keys = self.config.auditor_keys
        if not 0 <= index < len(keys):
            return False
        for signature in signed.signatures:
            if signature.auditor_index != index:
                continue
            if only is not None and signature.signature != only:
                continue
            if verify_signature(keys[index], payload, signature.signature):
                return True
        return False

    @property
    def is_decided(self) -> bool:
        """Tells whether enough auditors answered that every finality quorum is among them."""
        return len(self.answered) >= self.answers_needed

    def recovered(self) -> list[Candidate]:
        """Returns the quanta to re-apply, in apex order; raises RisingFailed on a gap."""
        apexes = sorted(self.candidates)
        expected = self.apex + 1
        for apex in apexes:
            if apex != expected:
                raise RisingFailed(f"gap in the auditors' quanta: apex {expected} is missing")
            expected += 1
        return [self.candidates[apex] for apex in apexes]
