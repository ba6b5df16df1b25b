"""An auditor's side of the quantum flow, as a plain object the engine worker adapts.

`AuditorNode` receives the quanta alpha streams (with alpha's signature), re-executes each on
its own `Engine` (verifying the client's signature itself), checks alpha's signature of the
payload hash it computed, signs that payload hash and returns its `AuditorResult`s. Quanta at
or below its apex are duplicates and skipped; a gap means something was lost between alpha and
here, so it asks alpha to resend from its apex. Any mismatch — another effects proof, a broken
chain, a refused request, an alpha signature that does not verify, a timestamp that goes back —
stops it: it goes Failed, says why, and never signs again. A duplicate that differs from the
quantum it executed at that apex, both signed by alpha, is alpha equivocating: it is kept as
evidence and stops it too. Such a duplicate is compared with the copy in memory or, for one
executed before this process started, with the one it persisted (`PersistedLookup`, read from
the database by the shell): alpha resends the quanta whose signatures were lost, and a
restarted auditor signs them again from that record. What it cannot confirm *yet* (its provider
has not seen alpha's deposit, a provider's network failed, a timestamp ahead of its clock:
`NotYetConfirmed`) is not a mismatch: it keeps that quantum and the ones after it (`held`),
signs nothing, says what it waits for, and checks again after a growing delay
(`quanta.core.confirmation`). The first quantum founds the constellation: an auditor it lists
takes it only if its own key signed it (and only the pinned one, if pinned:
`quanta.core.genesis`), else it goes Failed, "genesis refused", before executing it.

Its state tells the truth about alpha: it is Ready only when it heard from alpha that it is in
step (every frame, heartbeats included, carries alpha's apex), and it falls back to Running
when it loses alpha (`alpha_lost`: the herald link dropped; `review_alpha`: nothing heard for
`ALPHA_SILENCE_MS`).
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

from quanta.core.config import Config
from quanta.core.confirmation import RetryBackoff, quantum_time_check, wall_clock_ms
from quanta.core.engine import Engine, Executed, QuantumMismatch
from quanta.core.envelopes import signature_valid
from quanta.core.evidence import EvidenceItem, SignedPayload, equivocation
from quanta.core.genesis import auditor_genesis_check
from quanta.core.hashing import quantum_hash
from quanta.core.keys import KeyPair, verify_signature
from quanta.core.node_state import NodeStatus
from quanta.core.pending import PendingUpdates, QuantumRow, quantum_row
from quanta.core.signatures import payload_hash
from quanta.core.status import ConstellationError, NotYetConfirmed
from quanta.core.xdr.codec import XdrError, decode, encode
from quanta.core.xdr.schema import (
    AuditorResult,
    ConstellationQuantum,
    MessageEnvelope,
    NodeSignature,
    NodeState,
    PayloadProof,
    QuantaBatch,
    Quantum,
    SignedQuantum,
    TxSignature,
    WithdrawalQuantum,
)


def decode_envelope_or_none(data: bytes) -> MessageEnvelope | None:
    """Returns the envelope of a herald frame, None if it is not one."""
    try:
        envelope: MessageEnvelope = decode(MessageEnvelope, data)
    except XdrError:
        return None
    return envelope


ALPHA_SILENCE_MS = 3_000
"""Nothing heard from alpha for this long (it heartbeats every second): alpha is lost."""
RECENT_EXECUTED_MAX = 10_000
"""Executed quanta remembered to compare duplicates against (equivocation)."""


class KnownQuantum(NamedTuple):
    """A quantum this node executed, with the payload hash it signed (its own word on it)."""

    payload: bytes
    signed: SignedQuantum
    """As this node kept it: alpha's signature first, then this node's if it signed."""


PersistedLookup = Callable[[Collection[int]], Mapping[int, KnownQuantum]]
"""Returns the quanta of the given apexes this node persisted (the shell reads its database;
an apex it has no record of is left out)."""
PERSISTED_LOOKUP_MAX = 100
"""The most duplicates of one batch looked up in what the node persisted: alpha resends what
stayed unfinal an interval later, so the rest gets its turn, and a batch never costs more
than one bounded read."""


def known_from_record(data: bytes, payload: bytes, signatures: bytes) -> KnownQuantum:
    """Returns a persisted quantum row (the XDR of its `Quantum` and `PayloadProof`, the
    payload hash) as a `KnownQuantum`."""
    proof: PayloadProof = decode(PayloadProof, signatures)
    return KnownQuantum(payload, SignedQuantum(decode(Quantum, data), proof.signatures))


TransactionSigner = Callable[[WithdrawalQuantum], TxSignature | None]
"""Returns this node's signature of a withdrawal's transaction (through its provider), None
if it refuses to sign (its provider's vault does not answer to the settings in force)."""

RotationSigner = Callable[[Config | None, ConstellationQuantum], tuple[TxSignature, ...]]
"""Returns this node's signatures of the vault rotations a settings quantum carries (which its
engine validated when it executed it), none if this node was not one of the vaults' old
signers (the settings before the update; None: a quantum signed again, whose old signers
alpha checks itself): through its payment providers (`payments.core.rotation`)."""

HELD_MAX = 10_000
"""The most quanta an auditor keeps while one of them cannot be confirmed yet; alpha resends
the rest once they fit (the auditor then sees a gap)."""


@dataclass(slots=True)
class BatchOutcome:
    """What handling one quanta batch produced."""

    results: list[AuditorResult] = field(default_factory=list)
    resend_from: int | None = None
    executed: list[Executed] = field(default_factory=list)
    # Set while a quantum waits for confirmation: when to call `retry_held` (ms from now).
    retry_after_ms: int | None = None


class AuditorNode:
    """Re-executes and signs the quanta alpha sends."""

    def __init__(
        self,
        keypair: KeyPair,
        engine: Engine,
        pending: PendingUpdates,
        *,
        sign_transaction: TransactionSigner | None = None,
        sign_rotation: RotationSigner | None = None,
        clock_ms: Callable[[], int] = wall_clock_ms,
        genesis_pin: bytes | None = None,
        persisted: PersistedLookup | None = None,
    ) -> None:
        """Wraps an engine whose state was loaded (or is empty) for the node `keypair`.
        `sign_transaction` signs the transaction of each withdrawal this node executed (the
        engine's transaction validator has checked it first); without it none is signed.
        `clock_ms` is this node's clock (quantum time bound, retry delays). `genesis_pin`:
        the only constellation id this node may follow, if set (`_check_genesis`).
        `persisted` reads the quanta this node persisted, for duplicates it no longer holds
        in memory (it restarted since); without it such a duplicate is left unsigned."""
        self.keypair = keypair
        self.genesis_pin = genesis_pin
        self.engine = engine
        self.pending = pending
        self.status = NodeStatus()
        self.final_rows: list[QuantumRow] = []
        self.sign_transaction = sign_transaction
        # Signs the vault rotations of each settings update that changes the auditors, while
        # this node is still an old signer (`_removed_result`); without it none is signed.
        self.sign_rotation = sign_rotation
        self.evidence: list[EvidenceItem] = []
        # When a frame from alpha last arrived (the shell's monotonic ms), None before any.
        self.heard_ms: int | None = None
        # An OrderedDict: the oldest goes at every quantum, and a plain dict's first key is
        # found by skipping every slot deleted before it (~10 µs a quantum at this size).
        self._recent: OrderedDict[int, KnownQuantum] = OrderedDict()
        self.persisted = persisted
        self.clock_ms = clock_ms
        # Quanta received but not executed yet (the first cannot be confirmed yet), each with
        # whether its frame was alpha-signed; contiguous from apex + 1.
        self.held: deque[tuple[SignedQuantum, bool]] = deque()
        self.retry = RetryBackoff()
        self.alpha_apex = 0
        # The alpha a valid replacement update names, before it is in force (`designate`).
        self.designated_alpha: bytes | None = None

    @property
    def apex(self) -> int:
        """Returns the apex of the last quantum this node executed."""
        return self.engine.state.apex

    def handle_frame(self, data: bytes, now_ms: int | None = None) -> BatchOutcome:
        """Handles a herald frame from alpha: a `QuantaBatch` in a `MessageEnvelope`.

        Once the settings are known, the frame must be signed by alpha's key; one check of that
        signature then stands for alpha's signature on each quantum in it (one verification
        per batch instead of one per quantum). Before, the batch starts with the settings
        quantum, which carries the auditors' own signatures, and each quantum's alpha
        signature is checked against the settings it brings. A frame that passed is a sign of
        life of alpha at `now_ms` (monotonic, from the shell)."""
        envelope = decode_envelope_or_none(data)
        if envelope is None or not isinstance(envelope.message, QuantaBatch):
            return BatchOutcome()
        config = self.engine.state.config
        alpha_signed = config is not None
        if config is not None:
            alpha_key = config.auditor_keys[config.alpha_index]
            signer = envelope.signature.signer
            if self.designated_alpha is not None and signer == alpha_key:
                # The node took the update replacing this alpha: what the replaced alpha
                # still sends (it is not dead after all) is not signed, lest this node sign
                # two quanta at one apex (its link moves to the new alpha).
                return BatchOutcome()
            designated = signer == self.designated_alpha
            if (signer != alpha_key and not designated) or not signature_valid(
                data, envelope, config.constellation_id
            ):
                self.status.set(NodeState.FAILED, "a quanta batch was not signed by alpha")
                return BatchOutcome()
            # From an alpha designate, each quantum's own alpha signature is checked against
            # the settings at its apex (`alpha_replacement`).
            alpha_signed = not designated
        if now_ms is not None:
            self.heard_ms = now_ms
        batch = envelope.message
        return self.handle_batch(batch.quanta, batch.last_known_apex, alpha_signed)

    def designate(self, alpha_key: bytes) -> None:
        """Takes frames signed by `alpha_key` too: the alpha a valid replacement update (the
        worker checked it, `alpha_replacement.replacement_check`) names, until it is in force."""
        self.designated_alpha = alpha_key

    def handle_batch(
        self, quanta: tuple[SignedQuantum, ...], alpha_apex: int, alpha_signed: bool = False
    ) -> BatchOutcome:
        """Executes and signs each new quantum in order; stops at a gap, a mismatch, or a
        quantum it cannot confirm yet (kept, with those after it, for `retry_held`).

        `alpha_signed`: the batch came in a frame alpha signed (`handle_frame`), so each
        quantum's own alpha signature is not verified again."""
        outcome = BatchOutcome()
        if self.status.state == NodeState.FAILED:
            return outcome
        self.alpha_apex = alpha_apex  # the latest word of alpha, as every frame carries it
        self._hold(quanta, alpha_signed, outcome)
        if self.held and self.retry.due(self.clock_ms()):
            self._execute_held(outcome)
        if self.held:
            outcome.retry_after_ms = max(0, self.retry.next_at_ms - self.clock_ms())
        self._update_status(self.alpha_apex)
        return outcome

    def retry_held(self) -> BatchOutcome:
        """Checks again the quanta kept while one could not be confirmed; signs what now is."""
        return self.handle_batch((), self.alpha_apex)

    def _hold(
        self, quanta: tuple[SignedQuantum, ...], alpha_signed: bool, outcome: BatchOutcome
    ) -> None:
        last = self.held[-1][0].quantum.apex if self.held else self.apex
        known = self._known_duplicates(quanta)
        for signed in quanta:
            apex = signed.quantum.apex
            if apex <= last:
                if apex in known:
                    if self._equivocates(signed, known[apex]):
                        return
                    self._sign_again(signed, known[apex], outcome)
                continue
            if len(self.held) >= HELD_MAX:
                return  # The rest comes again once these are done (a gap, then a resend).
            if apex > last + 1:
                outcome.resend_from = last
                return
            self.held.append((signed, alpha_signed))
            last = apex

    def _execute_held(self, outcome: BatchOutcome) -> None:
        while self.held:
            signed, alpha_signed = self.held[0]
            try:
                accepted = self._execute(signed, outcome, alpha_signed)
            except NotYetConfirmed as waiting:
                delay_ms = self.retry.wait(self.clock_ms(), waiting.retry_after_ms)
                reason = f"cannot confirm yet ({waiting}); checking again in {delay_ms} ms"
                self.status.set(NodeState.CHASING, reason)
                return
            if not accepted:
                self.held.clear()
                return
            self.held.popleft()
            self.retry.reset()

    def _execute(self, signed: SignedQuantum, outcome: BatchOutcome, alpha_signed: bool) -> bool:
        """Executes one quantum and, if this node is one of its signers, signs it; returns
        False (and goes Failed) if the quantum cannot be accepted, raises NotYetConfirmed
        (nothing changed) if it cannot be confirmed yet."""
        quantum = signed.quantum
        if not self._check_genesis(signed):
            return False
        prev_config = self.engine.state.config
        try:
            previous_ms = self.engine.last_timestamp_ms
            quantum_time_check(quantum.apex, quantum.timestamp, previous_ms, self.clock_ms())
            executed = self.engine.replay(quantum)
        except QuantumMismatch as error:
            self.status.set(NodeState.FAILED, str(error))
            return False
        if not alpha_signed and not self._alpha_signed(executed, signed):
            self.engine.revert_last(executed)
            self.status.set(NodeState.FAILED, f"quantum {executed.apex}: alpha's signature invalid")
            return False
        rotations: tuple[TxSignature, ...] = ()
        if isinstance(quantum.body, ConstellationQuantum):
            self._settings_changed()
            rotations = self._rotation_signatures(prev_config, quantum.body)
        signatures = signed.signatures[:1]
        own = self._own_index()
        if own is not None:
            signature = NodeSignature(own, self.sign_payload(executed.payload_hash))
            signatures = (*signatures, signature)
            tx_signature = self._tx_signature(signed)
            result = AuditorResult(executed.apex, signature, tx_signature, rotations)
            outcome.results.append(result)
        elif rotations and prev_config is not None:
            outcome.results.append(self._removed_result(prev_config, executed, rotations))
        self.pending.record(executed)
        self._remember(executed.payload_hash, signed)
        proof = PayloadProof(executed.payload_hash, signatures)
        self.final_rows.append(quantum_row(executed, 0, encode(proof)))
        outcome.executed.append(executed)
        return True

    def _check_genesis(self, signed: SignedQuantum) -> bool:
        """Tells whether this node may take the quantum as far as its genesis rule goes; goes
        Failed, saying why, if not. Before settings exist, the first quantum founds the
        constellation: a majority of the keys it lists proves nothing (anyone can make the
        keys up, and before settings nobody authenticated alpha), so an auditor it lists takes
        it only if its own key signed it, and only the pinned one if pinned
        (`auditor_genesis_check`). Once settings exist, there is nothing more to check here."""
        body = signed.quantum.body
        if self.engine.state.config is not None or not isinstance(body, ConstellationQuantum):
            return True
        try:
            auditor_genesis_check(body.update, self.keypair.public_key, self.genesis_pin)
        except ConstellationError as error:
            self.status.set(NodeState.FAILED, f"genesis refused: {error}")
            return False
        return True

    def _remember(self, payload: bytes, signed: SignedQuantum) -> None:
        self._recent[signed.quantum.apex] = KnownQuantum(payload, signed)
        if len(self._recent) > RECENT_EXECUTED_MAX:
            self._recent.popitem(last=False)

    def _known_duplicates(self, quanta: tuple[SignedQuantum, ...]) -> dict[int, KnownQuantum]:
        """Returns what this node executed at the apexes of the batch's duplicates (at or
        below its apex): from memory, else (it restarted since) from what it persisted, read
        only for those, at most PERSISTED_LOOKUP_MAX of them, in one lookup. A fresh stream
        has no duplicates, so it costs no read."""
        known: dict[int, KnownQuantum] = {}
        missing: set[int] = set()
        for signed in quanta:
            apex = signed.quantum.apex
            if apex > self.apex:
                continue
            if apex in self._recent:
                known[apex] = self._recent[apex]
            elif len(missing) < PERSISTED_LOOKUP_MAX:
                missing.add(apex)
        if missing and self.persisted is not None:
            found = self.persisted(missing)
            known.update((apex, found[apex]) for apex in missing if apex in found)
        return known

    def _sign_again(
        self, signed: SignedQuantum, known: KnownQuantum, outcome: BatchOutcome
    ) -> None:
        """Signs again a quantum this node executed, when alpha sends it again: alpha does so
        for quanta still waiting for signatures (the first ones may have been lost). The
        payload hash is the one this node signed then, so the signature is the same."""
        own = self._own_index()
        if known.signed.quantum != signed.quantum or own is None:
            return
        signature = NodeSignature(own, self.sign_payload(known.payload))
        body = signed.quantum.body
        rotations = (
            ()
            if not isinstance(body, ConstellationQuantum)
            else self._rotation_signatures(None, body)
        )
        outcome.results.append(
            AuditorResult(signed.quantum.apex, signature, self._tx_signature(signed), rotations)
        )

    def _equivocates(self, signed: SignedQuantum, known: KnownQuantum) -> bool:
        """Tells whether a duplicate is another quantum alpha signed at an apex this node
        executed, `known` (then kept as evidence, and this node Failed)."""
        apex = signed.quantum.apex
        if known.signed.quantum == signed.quantum:
            return False
        quantum = signed.quantum
        config = self.engine.state.require_config()
        payload = payload_hash(
            config.constellation_id, apex, quantum_hash(quantum), quantum.effects_proof
        )
        alpha_key = config.auditor_keys[config.alpha_index]
        signature = _signature_by(signed, config.alpha_index, alpha_key, payload)
        if payload == known.payload or signature is None:
            return False  # The same payload, or not alpha's word: nothing to prove.
        first_payload, first = known
        first_signature = _signature_by(first, config.alpha_index, alpha_key, first_payload)
        self.evidence.append(
            equivocation(
                alpha_key,
                int(apex),
                SignedPayload(encode(first.quantum), first_payload, first_signature or b""),
                SignedPayload(encode(quantum), payload, signature),
                f"auditor {self._own_index()}",
            )
        )
        self.status.set(
            NodeState.FAILED,
            f"alpha signed two different quanta at apex {apex}: alpha's key is compromised",
        )
        return True

    def signers_still_needed(self) -> tuple[bytes, ...]:
        """Returns no keys: only alpha's herald admits auditors (`AlphaNode`)."""
        return ()

    def alpha_lost(self, reason: str) -> None:
        """Leaves Ready (or Chasing) for Running: this node is no longer in step with alpha."""
        if self.status.state in (NodeState.READY, NodeState.CHASING):
            self.status.set(NodeState.RUNNING, f"lost alpha: {reason}")

    def review_alpha(self, now_ms: int) -> None:
        """Counts alpha as lost once nothing came from it for `ALPHA_SILENCE_MS`."""
        if self.heard_ms is not None and now_ms - self.heard_ms > ALPHA_SILENCE_MS:
            self.alpha_lost(f"nothing heard from alpha for over {ALPHA_SILENCE_MS // 1000} s")

    def take_evidence(self) -> list[EvidenceItem]:
        """Returns and forgets the evidence not yet handed out for persistence."""
        evidence, self.evidence = self.evidence, []
        return evidence

    def _rotation_signatures(
        self, prev: Config | None, body: ConstellationQuantum
    ) -> tuple[TxSignature, ...]:
        """Returns this node's signatures of the vault rotations of a settings quantum it
        executed (`prev`: the settings before it; None when it signs the quantum again)."""
        if self.sign_rotation is None or not body.rotations:
            return ()
        return self.sign_rotation(prev, body)

    def _removed_result(
        self, prev: Config, executed: Executed, rotations: tuple[TxSignature, ...]
    ) -> AuditorResult:
        """Returns the result of an auditor the update removed: its rotation signatures, the
        last thing it signs, with its signature of the payload under its index in the
        settings before the update (alpha takes only the rotation signatures from it)."""
        index = prev.auditor_keys.index(self.keypair.public_key)
        signature = NodeSignature(index, self.sign_payload(executed.payload_hash))
        return AuditorResult(executed.apex, signature, None, rotations)

    def _tx_signature(self, signed: SignedQuantum) -> TxSignature | None:
        body = signed.quantum.body
        if not isinstance(body, WithdrawalQuantum) or self.sign_transaction is None:
            return None
        return self.sign_transaction(body)

    def sign_payload(self, payload_hash: bytes) -> bytes:
        """Returns this node's signature of a quantum's payload hash."""
        return self.keypair.sign(payload_hash)

    def _alpha_signed(self, executed: Executed, signed: SignedQuantum) -> bool:
        config = self.engine.state.require_config()
        alpha_key = config.auditor_keys[config.alpha_index]
        return any(
            s.auditor_index == config.alpha_index
            and verify_signature(alpha_key, executed.payload_hash, s.signature)
            for s in signed.signatures
        )

    def _own_index(self) -> int | None:
        # A node the settings in force do not list (one joining: its key comes in with a later
        # update; or one an update removed) follows the chain and signs nothing: it catches up
        # from the first quantum on, and signs from the update that lists it on.
        keys = self.engine.state.require_config().auditor_keys
        if self.keypair.public_key not in keys:
            return None
        return keys.index(self.keypair.public_key)

    def _settings_changed(self) -> None:
        if self.status.state == NodeState.UNDEFINED:
            self.status.set(NodeState.RUNNING, "initialized by alpha")
        if self.engine.state.require_config().settings.alpha == self.designated_alpha:
            self.designated_alpha = None  # In force: the plain check covers it now.

    def _update_status(self, alpha_apex: int) -> None:
        if self.status.state in (NodeState.FAILED, NodeState.UNDEFINED):
            return
        if self.apex >= alpha_apex:
            self.status.set(NodeState.READY, "in step with alpha")
        elif self.status.state != NodeState.CHASING:
            self.status.set(NodeState.CHASING, f"{alpha_apex - self.apex} quanta behind alpha")

    def take_final_rows(self) -> list[QuantumRow]:
        """Returns and forgets the signed quanta not yet handed out for persistence."""
        rows, self.final_rows = self.final_rows, []
        return rows


def _signature_by(signed: SignedQuantum, index: int, key: bytes, payload: bytes) -> bytes | None:
    """Returns the signature of `payload` by node `index` (key `key`) in `signed`, if valid."""
    for signature in signed.signatures:
        if signature.auditor_index == index and verify_signature(key, payload, signature.signature):
            return bytes(signature.signature)
    return None
