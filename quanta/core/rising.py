"""Alpha's recovery after a restart (Rising): gather from the auditors the quanta above the
apex alpha persisted, check them, and re-apply them before executing anything new.

Rules (SPEC.md, Catchup):
- for each apex keep only quanta whose payload hash alpha's key signed (a compromised or
  confused auditor cannot inject anything);
- aggregate the valid signatures of distinct auditors per apex;
- two different quanta signed by alpha at one apex mean alpha's key is compromised: fail;
- the recovered quanta must follow alpha's apex without a gap: otherwise fail;
- decide once a majority of the constellation (alpha counts as one) has answered.
The payload hash is computed from the quantum alone (its hash and its effects proof), so the
quanta can be checked before they are executed; executing them then proves the proof.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from quanta.core.config import Config
from quanta.core.hashing import quantum_hash
from quanta.core.keys import verify_signature
from quanta.core.signatures import payload_hash
from quanta.core.xdr.schema import SignedQuantum


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
        self.answered: set[int] = {config.alpha_index}

    def offer(self, auditor_index: int, quanta: tuple[SignedQuantum, ...], done: bool) -> None:
        """Adds an auditor's quanta; `done` says it has sent everything it holds."""
        for signed in quanta:
            if signed.quantum.apex > self.apex:
                self._offer_one(signed)
        if done:
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
            raise RisingFailed(
                f"two different quanta signed by alpha at apex {quantum.apex}: "
                "alpha's key is compromised"
            )
        for signature in signed.signatures:
            if self._signed_by(signed, payload, signature.auditor_index, signature.signature):
                candidate.signatures[signature.auditor_index] = signature.signature

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
        """Tells whether a majority of the constellation has answered."""
        return len(self.answered) >= self.config.majority

    def recovered(self) -> list[Candidate]:
        """Returns the quanta to re-apply, in apex order; raises RisingFailed on a gap."""
        apexes = sorted(self.candidates)
        expected = self.apex + 1
        for apex in apexes:
            if apex != expected:
                raise RisingFailed(f"gap in the auditors' quanta: apex {expected} is missing")
            expected += 1
        return [self.candidates[apex] for apex in apexes]
