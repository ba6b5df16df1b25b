"""Alpha's side of the quantum flow, as a plain object the engine worker adapts.

`AlphaNode` takes decoded client requests and signed settings updates, executes them on the
`Engine`, signs each quantum's payload hash with alpha's key, tracks the auditors' signatures
until a majority makes the quantum final, and says what must be delivered to whom:
- the requester gets an acknowledgement at once (alpha's signature only);
- once final, every account the quantum touched gets the finalized result (its own effects
  group in full, the others as hashes), the requester's carrying its request's message id;
- final quanta become rows for the chain, and the pending-updates batches follow.
It also says when it cannot finalize (`review_finality`: fewer than a majority of auditors
connected and not Failed, as `AuditorPresence` sees them): it then leaves Ready for Running
with that reason, so clients are answered 450 instead of acknowledged, and returns to Ready
once a majority can sign again. An auditor signature that does not verify becomes evidence
(`quanta.core.evidence`); so do two alpha-signed quanta at one apex met while Rising.
Nothing here does I/O; the worker sends the deliveries and writes the rows and the evidence.
"""

from __future__ import annotations

import secrets
from collections import OrderedDict, deque
from collections.abc import Sequence
from dataclasses import dataclass

from quanta.core.alpha_replacement import is_replacement, replacement_check
from quanta.core.config import Config
from quanta.core.engine import Engine, Executed, QuantumMismatch
from quanta.core.evidence import EvidenceItem, LateSignature, SignedPayload, invalid_signature
from quanta.core.genesis import alpha_genesis_check
from quanta.core.keys import KeyPair
from quanta.core.node_state import NodeStatus
from quanta.core.pending import PendingUpdates, QuantumRow, quantum_row
from quanta.core.presence import AuditorPresence
from quanta.core.processors.settings import RotationBuilder, check_update
from quanta.core.processors.withdrawal import TransactionBuilder
from quanta.core.rate_limits import RateLimiter, rate_cost
from quanta.core.results import (
    Delivery,
    ReplyTo,
    ResultEncoder,
    proof_of,
    result_delivery,
    result_message,
)
from quanta.core.rising import Candidate, Rising, RisingFailed, settings_of
from quanta.core.signatures import SignatureSet, Verdict, constellation_id_of, majority
from quanta.core.status import (
    ConstellationError,
    InvalidState,
    TooManyRequests,
)
from quanta.core.xdr.codec import encode
from quanta.core.xdr.schema import (
    ConstellationMessageEnvelope,
    ConstellationQuantum,
    ConstellationSettings,
    ConstellationUpdate,
    DepositQuantum,
    MessageEnvelope,
    NodeSignature,
    NodeState,
    PayloadProof,
    QuantumBody,
    RequestQuantum,
    SignedQuantum,
    VaultRotationTx,
    WithdrawalQuantum,
    WithdrawalRequest,
)

RESEND_QUANTA_MAX = 1_000
"""Most unfinal quanta sent again at one interval (the rest follow at the next ones)."""
RECENT_QUANTA_MAX = 20_000
"""Quanta kept in memory for auditors that reconnect."""
LATE_SIGNATURES_MAX = 20_000
"""Signatures arriving after finality kept for checking until the next flush (beyond: not
checked; an auditor that forges does so on every quantum, so it is still caught)."""
LATE_SIGNATURES_CHECKED_ONE_IN = 16
"""Signatures arriving after finality checked for evidence: one in this many, drawn from the
OS's random source, so an auditor cannot tell which. Finality never rests on them (the
majority that made the quantum final was verified one by one), so checking them all bought
only a faster catch of an auditor forging on every quantum (1 in 16 catches it within ~16
quanta) at one ed25519 verification per quantum: ~4 % of the cluster's CPU (bench/README)."""


@dataclass(slots=True)
class PendingQuantum:
    """An executed quantum waiting for a majority of signatures."""

    executed: Executed
    signatures: SignatureSet
    requester: bytes | None
    message_id: int
    # Builds its result messages (acknowledgement and finalizations) from shared bytes.
    encoder: ResultEncoder


DESIGNATE_WAITING = "alpha designate: waiting for the settings update naming this node alpha"
"""The reason an alpha designate stays Running after Rising (it executes no request)."""

UPDATE_CANNOT_FINALIZE = "the update's auditors could not finalize it now"
"""How a refusal of an update for want of its new auditors begins (the web process retries)."""


class AlphaNode:
    """Executes, signs and finalizes quanta at alpha."""

    def __init__(
        self,
        keypair: KeyPair,
        engine: Engine,
        pending: PendingUpdates,
        *,
        transactions: TransactionBuilder | None = None,
        rotations: RotationBuilder | None = None,
        genesis_pin: bytes | None = None,
        late_check_one_in: int = LATE_SIGNATURES_CHECKED_ONE_IN,
    ) -> None:
        """Wraps an engine whose state was loaded (or is empty) for the node `keypair`.
        `transactions` builds each withdrawal's transaction (through the payment provider) and
        hears which ones executed; without it a withdrawal carries none and is refused.
        `rotations` builds the vault rotations of a settings update that changes the auditors
        (without it such an update is refused by the engine if a vault must rotate).
        `genesis_pin`: the only constellation id this node may be initialized with, if set."""
        self.keypair = keypair
        self.genesis_pin = genesis_pin
        self.engine = engine
        self.pending = pending
        self.transactions = transactions
        self.rotations = rotations
        self.status = NodeStatus()
        self.unfinalized: dict[int, PendingQuantum] = {}
        self.final_rows: list[QuantumRow] = []
        # Quanta finalized since this process started (one final row each, in that order).
        self.finalized_count = 0
        # Quanta to stream to the auditors, and the most recent ones for auditors that
        # reconnect (older ones are read back from the database).
        self.outgoing: list[SignedQuantum] = []
        self.recent: deque[SignedQuantum] = deque(maxlen=RECENT_QUANTA_MAX)
        self.rising: Rising | None = None
        # Unfinal settings records a recovery found were final nowhere (`take_unfinal_forgotten`).
        self.unfinal_forgotten: list[ConstellationSettings] = []
        self.rate_limiter: RateLimiter | None = None
        self.presence = AuditorPresence()
        self.resend_mark = 0  # `unfinal_to_resend`: the highest apex unfinal at its last call
        # Whether this node left Ready because a majority could not sign (it returns by itself).
        self.finality_blocked = False
        self.evidence: list[EvidenceItem] = []
        # Signatures of quanta already final, checked off the hot path (`take_late`), and the
        # payload hashes of the recent final quanta they are checked against. An OrderedDict:
        # the oldest goes at every finalization, and a plain dict's first key is found by
        # skipping every slot deleted before it (~20 µs a quantum at this size).
        self.late: list[LateSignature] = []
        self.late_check_one_in = max(1, late_check_one_in)
        self.final_payloads: OrderedDict[int, bytes] = OrderedDict()
        # The alpha a valid update replacing this one names (`stop_replaced`), None before.
        self.replaced_by: bytes | None = None

    # --- requests --------------------------------------------------------------------------

    def submit(self, envelope: MessageEnvelope, now_ms: int, reply_to: ReplyTo) -> list[Delivery]:
        """Executes a verified client request; returns what to deliver (errors included)."""
        request = envelope.message
        message_id = int(getattr(request, "message_id", 0))
        try:
            body = self._body(envelope, now_ms)
            self.status.require_ready()
            self._check_rate(envelope.signature.signer, now_ms, rate_cost(request))
            executed = self.engine.execute(body, now_ms, verified=True)
        except ConstellationError as error:
            return [Delivery(result_message(message_id, error.status, str(error)), None, reply_to)]
        deliveries = self._after_execution(
            executed, envelope.signature.signer, message_id, reply_to
        )
        if isinstance(body, WithdrawalQuantum) and self.transactions is not None:
            assert isinstance(request, WithdrawalRequest)
            self.transactions.accepted(executed.apex, request, body.transaction)
        return deliveries

    def _body(self, envelope: MessageEnvelope, now_ms: int) -> QuantumBody:
        request = envelope.message
        if not isinstance(request, WithdrawalRequest):
            return RequestQuantum(envelope)
        transaction = b""
        if self.transactions is not None:
            # Built for the apex and timestamp the quantum gets (`next_stamp`): nothing runs
            # between building and executing that could move them.
            apex, timestamp_ms = self.engine.next_stamp(now_ms)
            transaction = self.transactions.build(apex, timestamp_ms, request)
        return WithdrawalQuantum(envelope, transaction)

    def _check_rate(self, public_key: bytes, now_ms: int, cost: int) -> None:
        account = self.engine.state.accounts.get_by_key(public_key)
        limiter = self.rate_limiter
        if account is None or not limiter:
            return
        if not limiter.check_and_count(account.id, now_ms, cost):
            raise TooManyRequests("request rate limit exceeded, retry later")

    def notify(self, body: DepositQuantum, now_ms: int) -> list[Delivery]:
        """Issues a provider notification (deposits, withdrawal outcomes) as a quantum."""
        self.status.require_ready()
        executed = self.engine.execute(body, now_ms)
        return self._after_execution(executed, None, 0, None)

    def initialize(self, envelope: ConstellationMessageEnvelope, now_ms: int) -> Executed:
        """Executes the first settings quantum; raises ConstellationError if refused.

        Only a genesis that names this node as alpha and carries its own signature
        (`alpha_genesis_check`): a majority of keys anyone can make up proves nothing, and
        settings naming another alpha would leave this node initialized but never Ready. A
        refusal changes nothing, so the right genesis can follow."""
        if self.engine.state.config is not None:
            raise InvalidState("the constellation is already initialized")
        if self.status.state == NodeState.RISING:
            raise InvalidState("recovering: the auditors may hold this node's genesis quantum")
        alpha_genesis_check(envelope, self.keypair.public_key, self.genesis_pin)
        executed = self.engine.execute(ConstellationQuantum(envelope), now_ms)
        self._after_execution(executed, None, 0, None)
        self.settings_changed()
        return executed

    def update_settings(
        self, envelope: ConstellationMessageEnvelope, now_ms: int, presence_ms: int | None = None
    ) -> Executed:
        """Executes a later settings update (a majority of the auditors in force signed it)
        as a quantum every auditor re-executes; raises ConstellationError if refused.

        With `presence_ms` (the clock of `presence`), an update whose new auditors could not
        finalize it now is refused (InvalidState, naming who is missing): it is finalized by
        the auditors it brings in, and executing it without enough of them connected would
        leave it, and everything after it, unfinal.

        The vault rotations it calls for are built for the timestamp its quantum gets
        (`next_stamp`; nothing runs between building and executing) and travel inside it."""
        settings = self.update_check(envelope, presence_ms)
        prev = self.engine.state.require_config()
        rotations: tuple[VaultRotationTx, ...] = ()
        if self.rotations is not None:
            new = Config.from_settings(settings, prev.constellation_id)
            _, timestamp_ms = self.engine.next_stamp(now_ms)
            rotations = self.rotations.build_rotations(prev, new, timestamp_ms)
        executed = self.engine.execute(ConstellationQuantum(envelope, rotations), now_ms)
        self._after_execution(executed, None, 0, None)
        self.settings_changed()
        return executed

    def update_check(
        self, envelope: ConstellationMessageEnvelope, presence_ms: int | None = None
    ) -> ConstellationSettings:
        """Raises ConstellationError if `update_settings` would refuse the update (not Ready,
        not initialized, its new auditors not there, or the engine's own checks: version,
        content, a majority of signatures); returns the settings it brings in.

        The worker records those settings as unfinal before it executes the update
        (`begin_rising` takes them back after a crash): the update is finalized by its new
        auditors, which a restarted alpha would not otherwise know to wait for."""
        config = self.engine.state.config
        if config is None:
            raise InvalidState("the constellation is not initialized: use initialization")
        if self.is_designate:
            return self._designation_check(envelope, presence_ms)
        self.status.require_ready()
        if is_replacement(envelope, config):
            raise InvalidState(
                "an update replacing alpha is executed by the alpha it names: submit it there"
            )
        if presence_ms is not None:
            self._require_new_majority(envelope, presence_ms)
        return check_update(envelope, config)

    def stop_replaced(self, envelope: ConstellationMessageEnvelope, address: str) -> None:
        """Stops executing for good (Running, saying who replaced it and where): a valid
        update naming another alpha reached this one (the new alpha handed it over). Raises
        ConstellationError, changing nothing, if the update is not a valid replacement."""
        brought = replacement_check(envelope, self.engine.state.require_config())
        self.replaced_by = brought.alpha
        self.finality_blocked = False
        self.status.set(
            NodeState.RUNNING,
            f"replaced by the alpha at {address}: restart this node as an auditor",
        )

    @property
    def is_designate(self) -> bool:
        """Tells whether this node runs as alpha while the settings in force name another
        (an alpha designate, `quanta.core.alpha_replacement`): it executes nothing but the
        update that names it, once Rising completed."""
        config = self.engine.state.config
        return config is not None and config.settings.alpha != self.keypair.public_key

    def _designation_check(
        self, envelope: ConstellationMessageEnvelope, presence_ms: int | None
    ) -> ConstellationSettings:
        if self.status.state != NodeState.RUNNING:
            raise InvalidState(
                f"alpha designate {self.status.state.name.lower()}: {self.status.reason}"
            )
        brought = replacement_check(envelope, self.engine.state.require_config())
        if brought.alpha != self.keypair.public_key:
            raise InvalidState("this node is an alpha designate: the update names another alpha")
        if presence_ms is not None:
            self._require_new_majority(envelope, presence_ms)
        return brought

    def _require_new_majority(self, envelope: ConstellationMessageEnvelope, now_ms: int) -> None:
        update = envelope.message
        if not isinstance(update, ConstellationUpdate):
            return  # The engine refuses it with its own reason.
        new = update.settings
        keys = [auditor.public_key for auditor in new.auditors]
        others = [(i, key) for i, key in enumerate(keys) if key != new.alpha]
        blocked = self.presence.cannot_finalize(others, majority(len(keys)), now_ms)
        if blocked is not None:
            raise InvalidState(f"{UPDATE_CANNOT_FINALIZE}: {blocked}")

    def settings_changed(self) -> None:
        """Applies settings that live outside the state machine (rate limits, readiness)."""
        config = self.engine.state.config
        if config is None:
            return
        limits = config.settings.request_rate_limits
        self.rate_limiter = None
        if limits.minute_limit and limits.hour_limit:
            self.rate_limiter = RateLimiter(limits)
        if self.replaced_by is not None:
            return
        if self.status.state in (NodeState.UNDEFINED, NodeState.RUNNING):
            self.status.set(NodeState.RUNNING, "initialized")
            if self.is_designate:
                self.status.set(NodeState.RUNNING, DESIGNATE_WAITING)
            else:
                self.status.set(NodeState.READY, "executing requests")

    # --- recovery (Rising) -------------------------------------------------------------------

    def begin_rising(
        self,
        unfinal: Sequence[ConstellationSettings] = (),
        own: Sequence[SignedQuantum] = (),
        genesis: ConstellationSettings | None = None,
    ) -> None:
        """Starts recovery: nothing executes until enough auditors told what they hold.
        `unfinal`: the settings of updates recorded as executed but not yet final and
        persisted (`update_check`); their auditors must answer too. `own`: this node's final
        quanta persisted above a hole in its rows (the loader replays only up to the hole):
        offered like an auditor's quanta, and the updates among them count as unfinal.
        `genesis`: for an engine not initialized, the genesis settings this node persisted
        when it executed them (it crashed before the genesis quantum was final and persisted;
        the auditors may hold it: executing another genesis would fork it)."""
        config = self.engine.state.config
        if config is None:
            assert genesis is not None, "nothing to rise from"
            config = Config.from_settings(genesis, constellation_id_of(genesis))
        version = config.settings.version
        brought = [*unfinal, *(settings_of(signed) for signed in own)]
        newer = tuple(
            Config.from_settings(settings, config.constellation_id)
            for settings in brought
            if settings is not None and settings.version > version
        )
        self.rising = Rising(config, self.engine.state.apex, newer)
        self.rising.offer(self.keypair.public_key, tuple(own), done=False)
        if self.is_designate:
            # An auditor until now: the chain it holds is its answer, as any auditor's.
            self.rising.offer(self.keypair.public_key, (), done=True)
        self.status.set(NodeState.RUNNING, "loaded")
        rising = self.status.set(NodeState.RISING, "collecting quanta from the auditors")
        assert rising, f"cannot rise from {self.status.state.name}"

    def rising_offer(
        self, auditor_key: bytes, quanta: tuple[SignedQuantum, ...], done: bool
    ) -> None:
        """Takes an auditor's quanta above our apex; completes recovery once decided."""
        rising = self.rising
        if rising is None or self.status.state != NodeState.RISING:
            return
        try:
            rising.offer(auditor_key, quanta, done)
            if rising.is_decided:
                recovered = rising.recovered()
                if not rising.missing_answers(recovered):
                    self._complete_rising(rising, recovered)
        except (RisingFailed, QuantumMismatch) as error:
            self.evidence.extend(rising.evidence)
            self.rising = None
            self.status.set(NodeState.FAILED, f"recovery failed: {error}")

    def _complete_rising(self, rising: Rising, recovered: list[Candidate]) -> None:
        for candidate in recovered:
            executed = self.engine.replay(candidate.signed.quantum)
            config = candidate.config  # the settings in force at its apex
            signatures = SignatureSet(
                config.auditor_keys, config.alpha_index, executed.payload_hash
            )
            for index, signature in sorted(candidate.signatures.items()):
                signatures.add(index, signature)
            self._sign_as_auditor(config, signatures, executed.payload_hash)
            self.pending.record(executed)
            waiting = PendingQuantum(executed, signatures, None, 0, ResultEncoder(executed))
            signed = SignedQuantum(
                executed.quantum,
                tuple(NodeSignature(i, sig) for i, sig in signatures.signatures()),
            )
            self.outgoing.append(signed)
            self.recent.append(signed)
            if signatures.is_final:
                self._finalize(waiting)
            else:
                self.unfinalized[executed.apex] = waiting
        self.rising = None
        # An unfinal update the recovered chain does not hold was final nowhere and never
        # will be (alpha now executes other quanta at its apex): its record may go.
        brought = {c.config.settings.version: c.config.settings for c in recovered}
        self.unfinal_forgotten += [
            config.settings
            for config in rising.unfinal
            if brought.get(config.settings.version) != config.settings
        ]
        if self.engine.state.config is None:
            # No auditor holds the genesis quantum, so it was final nowhere: initialize again.
            self.status.set(NodeState.RUNNING, "not initialized: no auditor holds the genesis")
            return
        count = len(recovered)
        if self.is_designate:
            self.status.set(NodeState.RUNNING, f"recovered {count} quanta; {DESIGNATE_WAITING}")
        else:
            self.status.set(NodeState.READY, f"recovered {count} quanta from the auditors")
        self.settings_changed()  # Rate limits of the settings recovered (a genesis, an update).

    def _sign_as_auditor(self, config: Config, signatures: SignatureSet, payload: bytes) -> None:
        """Adds an alpha designate's own signature, as the auditor it was at that apex, to a
        quantum the old alpha signed (it executed it just now, like any auditor)."""
        own = self.keypair.public_key
        if own in config.auditor_keys and config.auditor_keys.index(own) != config.alpha_index:
            signatures.add(config.auditor_keys.index(own), self.keypair.sign(payload))

    def take_unfinal_forgotten(self) -> list[ConstellationSettings]:
        """Returns and forgets the unfinal settings whose records the worker may delete."""
        forgotten, self.unfinal_forgotten = self.unfinal_forgotten, []
        return forgotten

    # --- signatures and finality -----------------------------------------------------------

    def _after_execution(
        self, executed: Executed, requester: bytes | None, message_id: int, reply_to: ReplyTo | None
    ) -> list[Delivery]:
        config = self.engine.state.require_config()
        signatures = SignatureSet(config.auditor_keys, config.alpha_index, executed.payload_hash)
        signatures.add_own(config.alpha_index, self.keypair.sign(executed.payload_hash))
        waiting = PendingQuantum(
            executed, signatures, requester, message_id, ResultEncoder(executed)
        )
        self.pending.record(executed)
        alpha_signature = NodeSignature(config.alpha_index, signatures.signatures()[0][1])
        signed = SignedQuantum(executed.quantum, (alpha_signature,))
        self.outgoing.append(signed)
        self.recent.append(signed)
        deliveries: list[Delivery] = []
        if signatures.is_final:
            return self._finalize(waiting)
        self.unfinalized[executed.apex] = waiting
        if requester is not None and reply_to is not None:
            # To the account (every connection of it), like the final result that follows:
            # one destination keeps the acknowledgement ahead of the finalization.
            deliveries.append(
                result_delivery(
                    waiting.encoder,
                    requester,
                    self._account_id(requester),
                    message_id,
                    proof_of(signatures),
                )
            )
        return deliveries

    def signer_key(self, apex: int, signer_index: int) -> bytes | None:
        """Returns the key of signer `signer_index` of quantum `apex`: in the settings it is
        finalized under if it waits for signatures, else in the settings in force; None if
        there is no such signer."""
        waiting = self.unfinalized.get(apex)
        if waiting is not None:
            keys = waiting.signatures.auditor_keys
        else:
            keys = self.engine.state.require_config().auditor_keys
        return keys[signer_index] if 0 <= signer_index < len(keys) else None

    def add_signature(
        self, apex: int, signer_index: int, signature: bytes, carrier: bytes = b""
    ) -> list[Delivery]:
        """Adds an auditor's signature; returns the finalized results if it made a majority.
        `carrier` is the auditor's signed frame it came in (kept with any evidence)."""
        waiting = self.unfinalized.get(apex)
        if waiting is None:
            self._late_signature(apex, signer_index, signature, carrier)
            return []
        signatures = waiting.signatures
        verdict = signatures.offer(signer_index, signature)
        if verdict is Verdict.INVALID:
            signed = SignedPayload(b"", signatures.payload_hash, signature)
            key = signatures.signer_key(signer_index)
            quantum = waiting.executed.quantum
            self.evidence.append(invalid_signature(key, quantum, signed, carrier, signer_index))
        if verdict is not Verdict.ACCEPTED or not signatures.is_final:
            return []
        del self.unfinalized[apex]
        return self._finalize(waiting)

    def _late_signature(
        self, apex: int, signer_index: int, signature: bytes, carrier: bytes
    ) -> None:
        payload = self.final_payloads.get(apex)
        keys = self.engine.state.require_config().auditor_keys
        if payload is None or not 0 <= signer_index < len(keys):
            return
        if secrets.randbelow(self.late_check_one_in) != 0:
            return
        if len(self.late) < LATE_SIGNATURES_MAX:
            key = keys[signer_index]
            self.late.append(LateSignature(apex, signer_index, key, payload, signature, carrier))

    def take_late(self) -> list[LateSignature]:
        """Returns and forgets the late signatures still to be checked."""
        late, self.late = self.late, []
        return late

    def late_refused(self, failures: list[LateSignature]) -> None:
        """Keeps as evidence the late signatures that did not verify (`late_signature_failures`
        found them), with their quanta from memory."""
        first = self.recent[0].quantum.apex if self.recent else 0
        for late in failures:
            index = late.apex - first
            if not 0 <= index < len(self.recent):
                continue
            quantum = self.recent[index].quantum
            signed = SignedPayload(b"", late.payload_hash, late.signature)
            item = invalid_signature(late.signer, quantum, signed, late.carrier, late.signer_index)
            self.evidence.append(item)

    def take_evidence(self) -> list[EvidenceItem]:
        """Returns and forgets the evidence not yet handed out for persistence."""
        evidence, self.evidence = self.evidence, []
        return evidence

    # --- can it finalize? --------------------------------------------------------------------

    def auditor_report(
        self, key: bytes, channel: str, state: NodeState, reason: str, now_ms: int
    ) -> None:
        """Records an auditor's handshake or state report (monotonic `now_ms`)."""
        self.presence.report(key, channel, state, reason, now_ms)
        self.review_finality(now_ms)

    def auditor_heard(self, key: bytes, now_ms: int) -> None:
        """Records a sign of life from an auditor (its signatures, its catchup answers)."""
        self.presence.heard(key, now_ms)

    def auditor_gone(self, key: bytes, channel: str, now_ms: int) -> None:
        """Records that an auditor's herald connection closed."""
        self.presence.gone(key, channel)
        self.review_finality(now_ms)

    def review_finality(self, now_ms: int) -> None:
        """Leaves Ready (for Running, saying why) while a majority of auditors cannot sign, and
        returns to Ready once it can: requests are then refused (450) instead of acknowledged
        with a promise of finality nobody can keep."""
        config = self.engine.state.config
        if config is None or self.replaced_by is not None:
            return
        keys = config.auditor_keys
        others = [(i, key) for i, key in enumerate(keys) if i != config.alpha_index]
        blocked = self.presence.cannot_finalize(others, config.majority, now_ms)
        state = self.status.state
        if blocked is not None and state == NodeState.READY:
            self.finality_blocked = self.status.set(NodeState.RUNNING, blocked)
        elif self.finality_blocked and state == NodeState.RUNNING:
            if blocked is None:
                self.finality_blocked = False
                self.status.set(NodeState.READY, "a majority of auditors can sign again")
            elif blocked != self.status.reason:
                self.status.set(NodeState.RUNNING, blocked)

    def _finalize(self, waiting: PendingQuantum) -> list[Delivery]:
        executed = waiting.executed
        signatures = proof_of(waiting.signatures)
        proof = encode(PayloadProof(executed.payload_hash, signatures))
        requester_id = None
        if waiting.requester is not None:
            requester_id = self._account_id(waiting.requester)
        self.final_rows.append(quantum_row(executed, requester_id or 0, proof))
        self.finalized_count += 1
        self.final_payloads[executed.apex] = executed.payload_hash
        if len(self.final_payloads) > RECENT_QUANTA_MAX:
            self.final_payloads.popitem(last=False)
        return self._final_deliveries(waiting, requester_id, signatures, self.finalized_count)

    def _account_id(self, public_key: bytes) -> int | None:
        account = self.engine.state.accounts.get_by_key(public_key)
        return None if account is None else account.id

    def _final_deliveries(
        self,
        waiting: PendingQuantum,
        requester_id: int | None,
        signatures: tuple[NodeSignature, ...],
        durable: int,
    ) -> list[Delivery]:
        executed = waiting.executed
        deliveries = []
        for group in executed.groups:
            if group.account == 0:
                continue
            account = self.engine.state.accounts.get_by_id(group.account)
            if account is None:
                continue
            own = account.public_key == waiting.requester
            message_id = waiting.message_id if own else 0
            deliveries.append(
                result_delivery(
                    waiting.encoder,
                    account.public_key,
                    account.id,
                    message_id,
                    signatures,
                    durable,
                )
            )
        requester_touched = any(d.public_key == waiting.requester for d in deliveries)
        if waiting.requester is not None and not requester_touched:
            deliveries.append(
                result_delivery(
                    waiting.encoder,
                    waiting.requester,
                    requester_id,
                    waiting.message_id,
                    signatures,
                    durable,
                )
            )
        return deliveries

    def take_outgoing(self) -> list[SignedQuantum]:
        """Returns and forgets the quanta not yet streamed to the auditors."""
        quanta, self.outgoing = self.outgoing, []
        return quanta

    def unfinal_to_resend(self) -> list[SignedQuantum]:
        """Returns (at most RESEND_QUANTA_MAX of) the quanta that were already waiting for
        signatures at the previous call, to be sent to the auditors again, and marks those
        waiting now. Called at an interval (the worker: every heartbeat period), it resends
        whatever stayed unfinal a whole interval: its signatures may have been lost in flight
        while the links stayed up, and nothing else would ever ask for them again."""
        mark, self.resend_mark = self.resend_mark, max(self.unfinalized, default=0)
        if not self.unfinalized or min(self.unfinalized) > mark:
            return []
        stale = [
            signed
            for signed in self.recent
            if signed.quantum.apex <= mark and signed.quantum.apex in self.unfinalized
        ]
        return stale[:RESEND_QUANTA_MAX]

    def catchup_start(self, cursor: int) -> int:
        """Returns the apex above which an auditor's catchup starts: its cursor, or below the
        oldest quantum still waiting for signatures. A broken link or a crash loses the results
        in flight, and an auditor that reconnects at its apex would never be asked for them
        again: those quanta would stay unfinal with every node up (the auditor signs such a
        duplicate again, `AuditorNode`)."""
        if self.unfinalized:
            return min(cursor, min(self.unfinalized) - 1)
        return cursor

    def signers_still_needed(self) -> tuple[bytes, ...]:
        """Returns the auditor keys of the settings the oldest unfinal quantum was executed
        under (none if every quantum is final): after a rotation, the quanta below the update
        can be signed only by the auditors it replaced, and finality is not in apex order, so
        those must still be admitted when the update itself is final and persisted. While
        Rising: the keys whose answers recovery counts (an unfinal update's new auditors)."""
        if self.rising is not None:
            return self.rising.signers()  # Those whose answers recovery counts.
        oldest = next(iter(self.unfinalized.values()), None)  # Kept in apex order.
        return () if oldest is None else oldest.signatures.auditor_keys

    def recent_after(self, apex: int) -> list[SignedQuantum] | None:
        """Returns the quanta above `apex` from memory, or None if memory does not reach back
        that far (the caller then reads the older ones from the database)."""
        if not self.recent:
            return [] if apex >= self.engine.state.apex else None
        if self.recent[0].quantum.apex > apex + 1:
            return None
        return [q for q in self.recent if q.quantum.apex > apex]

    def take_final_rows(self) -> list[QuantumRow]:
        """Returns and forgets the final quanta not yet handed out for persistence."""
        rows, self.final_rows = self.final_rows, []
        return rows
