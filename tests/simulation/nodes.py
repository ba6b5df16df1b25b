"""The simulated nodes: the real `AlphaNode` and `AuditorNode` around a durable store, doing
what their engine workers do (stream, flush, pay out, poll the provider, answer the herald),
one scheduler event at a time.

A crash drops the node object and everything it held in memory (unflushed rows, snapshot
batches cut but not written, the payout book); a restart rebuilds it from its store the way
`quanta.node.loader` does (snapshot, then the persisted quanta above it replayed). Alpha then
rises, as `AlphaWorker.load` makes it.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

from payments.core.payouts import PayoutBook
from quanta.core.alpha import AlphaNode
from quanta.core.auditor import AuditorNode, KnownQuantum, known_from_record
from quanta.core.durable import PersistedPrefix
from quanta.core.engine import Engine
from quanta.core.hashing import quantum_hash
from quanta.core.keys import KeyPair
from quanta.core.pending import Batch, PendingUpdates
from quanta.core.status import BadRequest, ConstellationError
from quanta.core.testing import PROVIDER_ID
from quanta.core.xdr.schema import (
    AuditorResult,
    ConstellationMessageEnvelope,
    DepositQuantum,
    MessageEnvelope,
    NodeSignature,
    NodeState,
    SignedQuantum,
    TxSignature,
    WithdrawalQuantum,
    WithdrawalRequest,
)

from .network import ALPHA, Catchup, Hello, Message, Network, Quanta, Resend, Results, RisingAsk
from .store import DurableStore, Loaded
from .vault import (
    Vault,
    signature_valid,
    transaction_expiry_ms,
    transaction_of,
    transaction_sign,
)

BATCH_QUANTA = 50
RESEND_PERIOD_MS = 100
"""Unfinal quanta are looked at for sending again this often: the worker does it every
heartbeat period (1 s); a simulated run lasts a few simulated seconds, so here it is shorter
in proportion (10 events)."""
"""Quanta per herald frame (alpha's stream and catchup; an auditor's Rising answer page)."""
SNAPSHOT_INTERVAL_S = 1.0
NO_PREFIX = 2**63
"""The persisted apex the old payout rule behaved as if it had: no durability condition."""


@dataclass(slots=True)
class Behaviour:
    """How the simulated system behaves where a fault or an old rule is being demonstrated."""

    old_rising: bool = False
    """Rising decides on a majority counting alpha (before issue 15)."""
    old_payouts: bool = False
    """Payouts on signature count alone (before issue 15)."""
    auditor_flushes_before_catchup: bool = True
    """An auditor persists what it signed before it answers a rising alpha (its herald link
    asks the engine to flush first, `quanta.flush_ask`); False is the link before, which
    answered from the database while the signatures left before the rows."""
    snapshot_quanta: int = 8
    replay_above_hole: bool = False
    """Alpha's loader replays every persisted row above the snapshot, over a hole too (the
    rule before): its final rows reach the disk out of apex order."""
    unfinal_settings_recorded: bool = True
    """Alpha records an update's settings before executing it, and a rising alpha waits for
    their auditors too; False is the rule before (Rising counted the persisted settings')."""
    journal: bool = True
    """Alpha journals each quantum before it leaves (group commit) and a rising alpha keeps
    its journaled chain; False is the rule before (it forgot what it streamed unpersisted)."""


def restore(node: AlphaNode | AuditorNode, loaded: Loaded) -> None:
    """Replays the persisted quanta above the snapshot, as `quanta.node.loader.node_restore`."""
    state = node.engine.state
    if loaded.state_hash is not None:
        assert state.state_hash() == loaded.state_hash, "snapshot does not match its state hash"
    for quantum in loaded.quanta_above:
        node.pending.record(node.engine.replay(quantum, verified=True))


@dataclass(slots=True)
class SimNode:
    """What both roles share: identity, store, the chain held in memory, snapshot batches."""

    index: int
    keypair: KeyPair
    vault: Vault
    network: Network
    behaviour: Behaviour
    store: DurableStore = field(default_factory=DurableStore)
    # apex -> quantum hash of every quantum this process executed or loaded.
    chain: dict[int, bytes] = field(default_factory=dict)
    batches: list[Batch] = field(default_factory=list)
    last_cut_ms: int = 0
    lagging: bool = False
    malicious: bool = False
    node: AlphaNode | AuditorNode | None = None

    def _pending(self) -> PendingUpdates:
        return PendingUpdates(SNAPSHOT_INTERVAL_S, self.behaviour.snapshot_quanta)

    def _load_chain(self) -> None:
        self.chain = {apex: row.quantum_hash for apex, row in self.store.rows.items()}

    def _cut_when_due(self, pending: PendingUpdates, engine: Engine, now_ms: int) -> None:
        if pending.is_due((now_ms - self.last_cut_ms) / 1000):
            self.batches.append(pending.cut(engine.state))
            self.last_cut_ms = now_ms


class SimAlpha(SimNode):
    """Alpha: executes, streams, finalizes, persists, pays out (its `TransactionBuilder`)."""

    node: AlphaNode | None
    book: PayoutBook
    persisted: PersistedPrefix
    last_resend_ms = 0

    def start(self) -> None:
        """Builds alpha from its store (empty: uninitialized); Rising if it was initialized."""
        loaded = self.store.load(replay_above_hole=self.behaviour.replay_above_hole)
        engine = Engine(loaded.state)
        self.node = node = AlphaNode(self.keypair, engine, self._pending(), transactions=self)
        restore(node, loaded)
        self._load_chain()
        self.batches = []
        self.book = PayoutBook()
        self.persisted = PersistedPrefix(engine.state.apex)
        if engine.state.config is not None:
            if engine.state.require_config().majority > 1:
                own = loaded.above_hole + self._journaled(engine.state.apex)
                node.begin_rising(self.store.unfinal_settings, own)
                if self.behaviour.old_rising:
                    assert node.rising is not None
                    node.rising.answers_needed = engine.state.require_config().majority - 1
            node.settings_changed()

    def _journaled(self, apex: int) -> list[SignedQuantum]:
        # As the loader: the journal above the replayed rows is alpha's own executed chain.
        return self.store.journal_above(apex) if self.behaviour.journal else []

    def _journal_executed(self, node: AlphaNode) -> None:
        # Group commit: everything executed so far is journaled before anything leaves, so a
        # catchup (which reads `recent`) never sends a quantum the journal lacks.
        if self.behaviour.journal:
            self.store.journal_persist(node.outgoing)

    def crash(self) -> None:
        """Loses everything in memory and every link."""
        self.node = None
        for auditor in range(1, self.network.nodes):
            self.network.disconnect(auditor)

    def initialize(self, envelope: ConstellationMessageEnvelope, now_ms: int) -> None:
        """Initializes the constellation (its settings record is written at once)."""
        node = self._node()
        executed = node.initialize(envelope, now_ms)
        self.store.settings_persist(executed.apex, node.engine.state.require_config().settings)
        self.note_chain()

    def _node(self) -> AlphaNode:
        assert self.node is not None, "alpha is down"
        return self.node

    # --- the TransactionBuilder alpha's node holds ------------------------------------------

    def build(self, apex: int, timestamp_ms: int, request: WithdrawalRequest) -> bytes:
        """Returns the transaction of a withdrawal for its quantum's apex and timestamp."""
        return transaction_of(apex, timestamp_ms, request)

    def accepted(self, apex: int, request: WithdrawalRequest, transaction: bytes) -> None:
        """Registers the payout with alpha's own signature (as `PayoutDesk.accepted`)."""
        expiry = transaction_expiry_ms(transaction)
        self.book.add(apex, request.provider, transaction, expiry)
        self.book.add_signature(apex, transaction_sign(transaction, self.keypair))

    # --- clients and the provider ------------------------------------------------------------

    def submit(self, envelope: MessageEnvelope, now_ms: int) -> None:
        """Executes a client request (refusals are the client's business)."""
        self._node().submit(envelope, now_ms, ("client", 0))
        self.note_chain()

    def poll(self, now_ms: int) -> None:
        """Issues the next vault entry as a DepositQuantum (as the DepositWatcher does)."""
        node = self._node()
        if node.status.state != NodeState.READY:
            return
        state = node.engine.state
        body = self.vault.notification(int(state.cursors.get(PROVIDER_ID, "0")), state.withdrawals)
        if body is not None:
            self._notify(node, body, now_ms)

    def _notify(self, node: AlphaNode, body: DepositQuantum, now_ms: int) -> None:
        try:
            node.notify(body, now_ms)
        except ConstellationError:
            return
        self.note_chain()

    def payouts(self, now_ms: int) -> None:
        """Submits what is due and cancels what expired (as `PayoutDesk.tick`)."""
        node = self._node()
        if node.status.state != NodeState.READY:
            return
        state = node.engine.state
        self.book.forget_settled(state.withdrawals)
        for withdrawal_id, withdrawal in state.withdrawals.items():
            if withdrawal_id not in self.book.payouts and withdrawal.transaction:
                expiry = transaction_expiry_ms(withdrawal.transaction)
                self.book.add(withdrawal_id, withdrawal.provider, withdrawal.transaction, expiry)
        prefix = NO_PREFIX if self.behaviour.old_payouts else self.persisted.apex
        threshold = state.require_config().majority
        for payout in self.book.due(threshold, now_ms, persisted_apex=prefix):
            if self.vault.submit(payout.transaction, list(payout.signatures.values())):
                self.book.submitted(payout)
            else:
                self.book.refused(payout, now_ms, permanent=payout.transaction in self.vault.paid)
        for payout in self.book.expired(now_ms):
            self.vault.cancel(payout.transaction)
            self.book.submitted(payout)

    # --- the herald ---------------------------------------------------------------------------

    def handle(self, auditor: int, message: Message) -> None:
        """Handles one message from an auditor."""
        node = self._node()
        if isinstance(message, Hello | Resend):
            self._catchup(
                node, auditor, message.cursor if isinstance(message, Hello) else message.apex
            )
        elif isinstance(message, Results):
            self._results(node, auditor, message.results)
        elif isinstance(message, Catchup):
            node.rising_offer(self._key(auditor), message.quanta, not message.has_more)
            self.store.unfinal_settings_forget(node.take_unfinal_forgotten())
            self.note_chain()

    def _catchup(self, node: AlphaNode, auditor: int, cursor: int) -> None:
        if node.status.state == NodeState.RISING:
            self.network.send(ALPHA, auditor, RisingAsk(node.engine.state.apex))
            return
        self._journal_executed(node)
        cursor = node.catchup_start(cursor)  # as the worker: unfinal quanta are asked again
        while cursor < node.engine.state.apex:
            quanta = node.recent_after(cursor)
            if quanta is None:
                quanta = self.store.signed_after(cursor, BATCH_QUANTA)
            quanta = quanta[:BATCH_QUANTA]
            if not quanta:
                break
            self.network.send(ALPHA, auditor, Quanta(tuple(quanta), node.engine.state.apex))
            cursor = quanta[-1].quantum.apex

    def _results(self, node: AlphaNode, auditor: int, results: tuple[AuditorResult, ...]) -> None:
        for result in results:
            if node.signer_key(result.apex, result.signature.auditor_index) != self._key(auditor):
                continue  # An auditor may only speak for itself (its key at that quantum).
            if result.tx_signature is not None:
                self._offer(result.apex, result.tx_signature)
            node.add_signature(
                result.apex, result.signature.auditor_index, result.signature.signature
            )

    def _key(self, auditor: int) -> bytes:
        # The herald binds each connection to the auditor's key (handshake).
        return self.vault.signers[auditor]

    def _offer(self, apex: int, signature: TxSignature) -> None:
        payout = self.book.payouts.get(apex)
        if payout is not None and signature_valid(
            payout.transaction, signature, self.vault.signers
        ):
            self.book.add_signature(apex, signature)

    def stream(self, now_ms: int) -> None:
        """Streams the quanta executed since the last stream to every connected auditor, and
        (as the worker, once a heartbeat period) what stayed unfinal a whole period again."""
        node = self._node()
        self.note_chain()
        self._journal_executed(node)
        again: list[SignedQuantum] = []
        if now_ms - self.last_resend_ms >= RESEND_PERIOD_MS:
            self.last_resend_ms = now_ms
            again = node.unfinal_to_resend()
        quanta = again + node.take_outgoing()
        for start in range(0, len(quanta), BATCH_QUANTA):
            chunk = tuple(quanta[start : start + BATCH_QUANTA])
            self.network.broadcast(Quanta(chunk, node.engine.state.apex))

    def note_chain(self) -> None:
        """Notes the quanta alpha executed (its outgoing ones) in its chain."""
        for signed in self._node().outgoing:
            self.chain[signed.quantum.apex] = quantum_hash(signed.quantum)

    def flush(self, now_ms: int) -> None:
        """Persists final rows, cuts a snapshot batch when due, writes batches all final."""
        node = self._node()
        rows = node.take_final_rows()
        self.store.rows_persist(rows)
        self.persisted.persisted(row.apex for row in rows)
        self._cut_when_due(node.pending, node.engine, now_ms)
        while self.batches and (
            not node.unfinalized or min(node.unfinalized) > self.batches[0].apex
        ):
            self.store.batch_persist(self.batches.pop(0))

    def engine_apex(self) -> int:
        """Returns the apex of alpha's engine."""
        return self._node().engine.state.apex

    def final_in_memory(self) -> dict[int, bytes]:
        """Returns the quanta alpha finalized and has not handed out for persistence."""
        return {} if self.node is None else {r.apex: r.quantum_hash for r in self.node.final_rows}


class SimAuditor(SimNode):
    """An auditor; `malicious` answers catchups empty and forges or withholds signatures."""

    node: AuditorNode | None

    def start(self) -> None:
        """Builds the auditor from its store; it then waits for alpha."""
        loaded = self.store.load()
        engine = Engine(
            loaded.state,
            validate_deposit=self._validate_deposit,
            validate_transaction=self._validate_transaction,
        )
        self.node = node = AuditorNode(
            self.keypair,
            engine,
            self._pending(),
            sign_transaction=self._sign_transaction,
            persisted=self._persisted,
        )
        restore(node, loaded)
        self._load_chain()
        self.batches = []
        if engine.state.config is not None:
            node.status.set(NodeState.RUNNING, "loaded; waiting for alpha")

    def crash(self) -> None:
        """Loses everything in memory and its link."""
        self.node = None
        self.network.disconnect(self.index)

    def connect(self) -> None:
        """Opens the link; the handshake tells alpha this node's apex."""
        assert self.node is not None
        self.network.connect(self.index)
        self.network.send(self.index, ALPHA, Hello(self.node.apex))

    def _persisted(self, apexes: Collection[int]) -> dict[int, KnownQuantum]:
        # The store plays the database the worker reads (`persisted_quanta`).
        rows = (self.store.rows[apex] for apex in apexes if apex in self.store.rows)
        return {
            row.apex: known_from_record(row.data, row.payload_hash, row.signatures) for row in rows
        }

    def _validate_deposit(self, body: DepositQuantum) -> None:
        assert self.node is not None
        state = self.node.engine.state
        self.vault.validate(body, int(state.cursors.get(PROVIDER_ID, "0")), state.withdrawals)

    def _validate_transaction(
        self, apex: int, timestamp_ms: int, request: WithdrawalRequest, transaction: bytes
    ) -> None:
        if transaction != transaction_of(apex, timestamp_ms, request):
            raise BadRequest("the transaction does not pay out the request")

    def _sign_transaction(self, body: WithdrawalQuantum) -> TxSignature:
        return transaction_sign(body.transaction, self.keypair)

    def handle(self, message: Message, now_ms: int) -> None:
        """Handles one message from alpha."""
        node = self.node
        assert node is not None
        if isinstance(message, Quanta):
            outcome = node.handle_batch(message.quanta, message.alpha_apex)
            for executed in outcome.executed:
                self.chain[executed.apex] = executed.quantum_hash
            if outcome.results:
                self._send_results(tuple(outcome.results))
            if outcome.resend_from is not None:
                self.network.send(self.index, ALPHA, Resend(outcome.resend_from))
        elif isinstance(message, RisingAsk):
            self._answer_rising(message.apex, now_ms)

    def _send_results(self, results: tuple[AuditorResult, ...]) -> None:
        if self.malicious:
            results = tuple(_forged(r) for r in results if r.apex % 2)  # even: withheld
        if results:
            self.network.send(self.index, ALPHA, Results(results))

    def _answer_rising(self, apex: int, now_ms: int) -> None:
        # The herald link answers from the node's database (`quanta_signed_after`).
        if self.malicious:
            self.network.send(self.index, ALPHA, Catchup((), False))
            return
        if self.behaviour.auditor_flushes_before_catchup:
            self.flush(now_ms)
        while True:
            quanta = self.store.signed_after(apex, BATCH_QUANTA)
            has_more = len(quanta) == BATCH_QUANTA
            self.network.send(self.index, ALPHA, Catchup(tuple(quanta), has_more))
            if not has_more:
                return
            apex = quanta[-1].quantum.apex

    def flush(self, now_ms: int) -> None:
        """Persists the signed rows, then a snapshot batch when one is due."""
        node = self.node
        assert node is not None
        self.store.rows_persist(node.take_final_rows())
        self._cut_when_due(node.pending, node.engine, now_ms)
        while self.batches:
            self.store.batch_persist(self.batches.pop(0))


def _forged(result: AuditorResult) -> AuditorResult:
    signature = NodeSignature(result.signature.auditor_index, bytes(64))
    tx = result.tx_signature
    forged_tx = None if tx is None else TxSignature(tx.signer, bytes(64))
    return AuditorResult(result.apex, signature, forged_tx)
