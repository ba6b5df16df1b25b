"""Alpha's recovery after a restart (Rising): gather from the auditors the quanta above the
apex alpha persisted, check them, and re-apply them before executing anything new.

Rules (SPEC.md, Catchup):
- for each apex keep only quanta whose payload hash alpha's key signed (a compromised or
  confused auditor cannot inject anything);
- aggregate the valid signatures of distinct auditors per apex;
- check each apex with the settings in force at it: a settings quantum is signed by the auditors
  of the settings it brings in (as alpha finalizes it), and the quanta above it by them too, so
  the keys change at that apex (checking everything with the settings alpha had persisted
  refused the new auditors' signatures, and could accept a removed auditor's);
- two different quanta signed by alpha at one apex mean alpha's key is compromised: fail;
- the recovered quanta must follow alpha's apex without a gap: otherwise fail;
- decide only once the auditors that answered intersect every possible finality quorum, of
  every settings that may be in force above the persisted apex (below).

Why that many answers: a quantum is final once a majority signed it, alpha among them, so
besides alpha a finality quorum holds majority - 1 of the other n - 1 nodes. Alpha restarted
without what it had not persisted, so only the auditors can tell it what may be final; answers
from n - majority + 1 auditors (`answers_needed`) share at least one node with every such
quorum, so a quantum any honest node holds as final is among the answers and is re-applied,
never replaced at its apex. Deciding on a bare majority that counted alpha itself (as before)
let one lagging auditor, or one that answers an empty catchup, make alpha resume with a
different quantum at an apex another auditor already held as final. The price is
availability: with 3 nodes alpha rises only once both auditors answered.
Across a settings update: a quantum at or above an update's apex is final with the auditors
the update brings in, and the auditors it replaces need never have seen it (they may have been
down; alpha executes an update once its *new* auditors can finalize it). Counting only the
persisted settings' auditors let their empty answers make alpha execute another quantum where
a new auditor held the update final. So the answers are counted against every settings that
may be in force above the persisted apex: those alpha persisted, each update alpha recorded
as executed but not yet final and persisted (`unfinal`: alpha writes that record before the
update leaves it, so a crash cannot forget that the new auditors may hold something final),
and each update met in the recovered chain. Each needs its own n - majority + 1.
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
from quanta.core.xdr.schema import (
    ConstellationQuantum,
    ConstellationSettings,
    ConstellationUpdate,
    SignedQuantum,
)


def answers_needed(nodes: int, majority: int) -> int:
    """Returns how many auditors besides alpha must answer before recovery may decide: enough
    that they intersect the majority - 1 other signers of every finality quorum."""
    return min(nodes - majority + 1, nodes - 1)


class RisingFailed(Exception):  # noqa: N818 - a verdict on the recovery, not a caller error
    """The quanta the auditors hold cannot be trusted or do not form a chain."""


@dataclass(slots=True)
class Candidate:
    """One apex's quantum as offered by the auditors, with the valid signatures (by index in
    the settings in force at that apex) and those settings."""

    signed: SignedQuantum
    payload_hash: bytes
    config: Config
    signatures: dict[int, bytes] = field(default_factory=dict)


def unanswered(config: Config, answered: set[bytes], needed: int | None = None) -> int:
    """Returns how many more auditors of `config` (alpha not counted) must answer before their
    answers intersect every finality quorum under it (`needed` overrides the count)."""
    alpha = config.auditor_keys[config.alpha_index]
    others = [key for key in config.auditor_keys if key != alpha]
    if needed is None:
        needed = answers_needed(len(config.auditor_keys), config.majority)
    return max(0, needed - len(answered.intersection(others)))


class Rising:
    """Collects and checks the auditors' quanta above `apex`."""

    def __init__(self, config: Config, apex: int, unfinal: tuple[Config, ...] = ()) -> None:
        """Starts collecting for a node whose persisted apex is `apex` under `config`;
        `unfinal`: the settings of updates alpha executed above it, not yet final and
        persisted (their auditors must answer too)."""
        self.config = config
        self.apex = apex
        self.unfinal = unfinal
        self.offered: dict[int, list[SignedQuantum]] = {}
        self.answered: set[bytes] = set()
        self.answers_needed = answers_needed(len(config.auditor_keys), config.majority)
        self.candidates: dict[int, Candidate] = {}
        self.alpha_signed: dict[int, bytes] = {}
        # The first alpha-signed quantum offered at each apex, and the evidence of a second
        # one (kept before recovery fails).
        self._first_signed: dict[int, SignedQuantum] = {}
        self.evidence: list[EvidenceItem] = []

    def offer(self, auditor_key: bytes, quanta: tuple[SignedQuantum, ...], done: bool) -> None:
        """Adds an auditor's quanta; `done` says it has sent everything it holds."""
        alpha = self.config.auditor_keys[self.config.alpha_index]
        for signed in quanta:
            if signed.quantum.apex > self.apex:
                self.offered.setdefault(signed.quantum.apex, []).append(signed)
                self._check_no_fork(signed, alpha)
        if done and auditor_key != alpha:
            # Counted per settings in `is_decided`: a key the persisted settings do not list
            # may be an auditor of an update above them.
            self.answered.add(auditor_key)

    def _check_no_fork(self, signed: SignedQuantum, alpha: bytes) -> None:
        # At once, with the persisted settings' alpha key: two different quanta alpha signed at
        # one apex fail the recovery as soon as both are offered (the chain walk of
        # `recovered` checks again with the settings in force at each apex).
        payload = _alpha_signed_payload(signed, alpha, self.config.constellation_id)
        if payload is None:
            return
        apex = signed.quantum.apex
        seen = self.alpha_signed.setdefault(apex, payload)
        first = self._first_signed.setdefault(apex, signed)
        if seen != payload:
            self.evidence.append(
                equivocation(
                    alpha,
                    int(apex),
                    SignedPayload(encode(first.quantum), seen, _signature_of(first, alpha, seen)),
                    SignedPayload(
                        encode(signed.quantum), payload, _signature_of(signed, alpha, payload)
                    ),
                    "a rising alpha",
                )
            )
            raise RisingFailed(
                f"two different quanta signed by alpha at apex {apex}: alpha's key is compromised"
            )

    @property
    def is_decided(self) -> bool:
        """Tells whether enough auditors answered that every finality quorum is among them,
        under the persisted settings and under each unfinal update's (the updates met in the
        recovered chain are checked by `missing_answers`)."""
        if unanswered(self.config, self.answered, self.answers_needed):
            return False
        return not any(unanswered(config, self.answered) for config in self.unfinal)

    def missing_answers(self, recovered: list[Candidate]) -> int:
        """Returns how many more answers the settings in force along the recovered chain
        need (0: the recovery may complete): a quantum above an update is final with the
        update's auditors, so enough of them must have answered as well."""
        persisted = self.config.auditor_keys  # counted by `is_decided`
        return max(
            (
                unanswered(candidate.config, self.answered)
                for candidate in recovered
                if candidate.config.auditor_keys != persisted
            ),
            default=0,
        )

    def signers(self) -> tuple[bytes, ...]:
        """Returns the auditor keys whose answers count: alpha's herald must admit them."""
        keys = dict.fromkeys(self.config.auditor_keys)
        for config in self.unfinal:
            keys.update(dict.fromkeys(config.auditor_keys))
        return tuple(keys)

    def recovered(self) -> list[Candidate]:
        """Returns the quanta to re-apply, in apex order, each checked with the settings in
        force at its apex; raises RisingFailed on a fork or a gap."""
        config = self.config
        apex = self.apex + 1
        while apex in self.offered:
            candidate = _candidate(apex, self.offered[apex], config)
            if candidate is None:
                break
            self.candidates[apex] = candidate
            config = candidate.config
            apex += 1
        alpha = config.auditor_keys[config.alpha_index]
        if any(
            _alpha_signed_payload(signed, alpha, config.constellation_id)
            for a in self.offered
            if a >= apex
            for signed in self.offered[a]
        ):
            raise RisingFailed(f"gap in the auditors' quanta: apex {apex} is missing")
        return [self.candidates[a] for a in sorted(self.candidates)]


def _candidate(apex: int, offered: list[SignedQuantum], before: Config) -> Candidate | None:
    """Returns the quantum alpha signed at `apex` under the settings in force at it, with the
    valid auditor signatures aggregated; None if alpha signed none of `offered`."""
    found: Candidate | None = None
    for signed in offered:
        config = _config_at(signed, before)
        alpha = config.auditor_keys[config.alpha_index]
        payload = _alpha_signed_payload(signed, alpha, config.constellation_id, config.alpha_index)
        if payload is None:
            continue
        if found is None:
            found = Candidate(signed, payload, config)
        elif found.payload_hash != payload:
            raise RisingFailed(
                f"two different quanta signed by alpha at apex {apex}: alpha's key is compromised"
            )
        for signature in signed.signatures:
            index = signature.auditor_index
            if 0 <= index < len(config.auditor_keys) and verify_signature(
                config.auditor_keys[index], payload, signature.signature
            ):
                found.signatures[index] = signature.signature
    return found


def settings_of(signed: SignedQuantum) -> ConstellationSettings | None:
    """Returns the settings a quantum brings in, None if it is no settings update."""
    body = signed.quantum.body
    if isinstance(body, ConstellationQuantum) and isinstance(
        body.update.message, ConstellationUpdate
    ):
        return body.update.message.settings
    return None


def _config_at(signed: SignedQuantum, before: Config) -> Config:
    """Returns the settings a quantum is signed under: those it brings in, if it is a settings
    update (alpha finalizes an update with the new auditors), else those before it."""
    settings = settings_of(signed)
    if settings is not None:
        return Config.from_settings(settings, before.constellation_id)
    return before


def _alpha_signed_payload(
    signed: SignedQuantum, alpha_key: bytes, constellation_id: bytes, alpha_index: int | None = None
) -> bytes | None:
    """Returns the quantum's payload hash if alpha's key signed it (at `alpha_index`, if
    given), else None."""
    quantum = signed.quantum
    payload = payload_hash(
        constellation_id, quantum.apex, quantum_hash(quantum), quantum.effects_proof
    )
    for signature in signed.signatures:
        if alpha_index is not None and signature.auditor_index != alpha_index:
            continue
        if verify_signature(alpha_key, payload, signature.signature):
            return payload
    return None


def _signature_of(signed: SignedQuantum, key: bytes, payload: bytes) -> bytes:
    """Returns the signature by `key` of `payload` in `signed` (empty if none verifies)."""
    for signature in signed.signatures:
        if verify_signature(key, payload, signature.signature):
            return bytes(signature.signature)
    return b""
