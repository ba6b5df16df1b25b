"""An auditor's side of the quantum flow, as a plain object the engine worker adapts.

`AuditorNode` receives the quanta alpha streams (with alpha's signature), re-executes each on
its own `Engine` (verifying the client's signature itself), checks alpha's signature of the
payload hash it computed, signs that payload hash and returns its `AuditorResult`s. Quanta at
or below its apex are duplicates and skipped; a gap means something was lost between alpha and
here, so it asks alpha to resend from its apex. Any mismatch — another effects proof, a broken
chain, a refused request, an alpha signature that does not verify — stops it: it goes Failed,
says why, and never signs again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from quanta.core.engine import Engine, Executed, QuantumMismatch
from quanta.core.envelopes import signature_valid
from quanta.core.keys import KeyPair, verify_signature
from quanta.core.node_state import NodeStatus
from quanta.core.pending import PendingUpdates, QuantumRow, quantum_row
from quanta.core.xdr.codec import XdrError, decode, encode
from quanta.core.xdr.schema import (
    AuditorResult,
    ConstellationQuantum,
    MessageEnvelope,
    NodeSignature,
    NodeState,
    PayloadProof,
    QuantaBatch,
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


TransactionSigner = Callable[[WithdrawalQuantum], TxSignature]
"""Returns this node's signature of a withdrawal's transaction (through its provider)."""


@dataclass(slots=True)
class BatchOutcome:
    """What handling one quanta batch produced."""

    results: list[AuditorResult] = field(default_factory=list)
    resend_from: int | None = None
    executed: list[Executed] = field(default_factory=list)


class AuditorNode:
    """Re-executes and signs the quanta alpha sends."""

    def __init__(
        self,
        keypair: KeyPair,
        engine: Engine,
        pending: PendingUpdates,
        *,
        sign_transaction: TransactionSigner | None = None,
    ) -> None:
        """Wraps an engine whose state was loaded (or is empty) for the node `keypair`.
        `sign_transaction` signs the transaction of each withdrawal this node executed (the
        engine's transaction validator has checked it first); without it none is signed."""
        self.keypair = keypair
        self.engine = engine
        self.pending = pending
        self.status = NodeStatus()
        self.final_rows: list[QuantumRow] = []
        self.sign_transaction = sign_transaction

    @property
    def apex(self) -> int:
        """Returns the apex of the last quantum this node executed."""
        return self.engine.state.apex

    def handle_frame(self, data: bytes) -> BatchOutcome:
        """Handles a herald frame from alpha: a `QuantaBatch` in a `MessageEnvelope`.

        Once the settings are known, the frame must be signed by alpha's key; one check of that
        signature then stands for alpha's signature on each quantum in it (one verification
        per batch instead of one per quantum). Before, the batch starts with the settings
        quantum, which carries the auditors' own signatures, and each quantum's alpha
        signature is checked against the settings it brings."""
        envelope = decode_envelope_or_none(data)
        if envelope is None or not isinstance(envelope.message, QuantaBatch):
            return BatchOutcome()
        config = self.engine.state.config
        if config is not None:
            alpha_key = config.auditor_keys[config.alpha_index]
            if envelope.signature.signer != alpha_key or not signature_valid(data, envelope):
                self.status.set(NodeState.FAILED, "a quanta batch was not signed by alpha")
                return BatchOutcome()
        batch = envelope.message
        return self.handle_batch(batch.quanta, batch.last_known_apex, config is not None)

    def handle_batch(
        self, quanta: tuple[SignedQuantum, ...], alpha_apex: int, alpha_signed: bool = False
    ) -> BatchOutcome:
        """Executes and signs each new quantum in order; stops at a gap or a mismatch.

        `alpha_signed`: the batch came in a frame alpha signed (`handle_frame`), so each
        quantum's own alpha signature is not verified again."""
        outcome = BatchOutcome()
        if self.status.state == NodeState.FAILED:
            return outcome
        for signed in quanta:
            apex = signed.quantum.apex
            if apex <= self.apex:
                continue
            if apex > self.apex + 1:
                outcome.resend_from = self.apex
                break
            if not self._execute(signed, outcome, alpha_signed):
                break
        self._update_status(alpha_apex)
        return outcome

    def _execute(self, signed: SignedQuantum, outcome: BatchOutcome, alpha_signed: bool) -> bool:
        """Executes one quantum and, if this node is one of its signers, signs it; returns
        False (and goes Failed) if the quantum cannot be accepted."""
        try:
            executed = self.engine.replay(signed.quantum)
        except QuantumMismatch as error:
            self.status.set(NodeState.FAILED, str(error))
            return False
        if not alpha_signed and not self._alpha_signed(executed, signed):
            self.engine.revert_last(executed)
            self.status.set(NodeState.FAILED, f"quantum {executed.apex}: alpha's signature invalid")
            return False
        if isinstance(signed.quantum.body, ConstellationQuantum):
            self._settings_changed()
        signatures = signed.signatures[:1]
        own = self._own_index()
        if own is not None:
            signature = NodeSignature(own, self.sign_payload(executed.payload_hash))
            signatures = (*signatures, signature)
            result = AuditorResult(executed.apex, signature, self._tx_signature(signed))
            outcome.results.append(result)
        self.pending.record(executed)
        proof = PayloadProof(executed.payload_hash, signatures)
        self.final_rows.append(quantum_row(executed, 0, encode(proof)))
        outcome.executed.append(executed)
        return True

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
