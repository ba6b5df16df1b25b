"""The sequential state machine every node runs: quanta in, effects and hashes out.

Alpha calls `Engine.execute` with a new quantum body: the engine gives it the next apex and a
timestamp, runs its processor (validate, then effects), chains it to the previous quantum and
returns an `Executed` record with everything that must be signed, sent and persisted. An
auditor (or a node replaying its history) calls `Engine.replay` with a quantum alpha already
numbered: the engine runs the same processor with the same apex and timestamp and refuses the
quantum (`QuantumMismatch`) if its own effects proof or chain link differs.

A request the processors reject raises a ConstellationError and changes nothing: it gets no
apex. Client signatures are checked here unless the caller says it verified them already (the
gateway and the auditors' herald link verify in parallel, before the sequential engine).
"""

from __future__ import annotations

from quanta.core.context import QuantumContext
from quanta.core.hashing import effects_proof_of, sha256
from quanta.core.keys import verify_signature
from quanta.core.processors.account_data import process_account_data
from quanta.core.processors.deposit import DepositValidator, process_deposit
from quanta.core.processors.order import process_batch, process_cancellation, process_order
from quanta.core.processors.payment import process_payment
from quanta.core.processors.settings import RotationValidator, process_settings
from quanta.core.processors.withdrawal import TransactionValidator, process_withdrawal
from quanta.core.records import record
from quanta.core.signatures import message_digest, payload_hash
from quanta.core.state import ConstellationState
from quanta.core.status import BadRequest, ConstellationError, InvalidState, Unauthorized
from quanta.core.xdr.codec import encode
from quanta.core.xdr.schema import (
    MESSAGE,
    QUANTUM_BODY,
    AccountDataInfo,
    AccountDataRequest,
    ConstellationQuantum,
    DepositQuantum,
    Effect,
    EffectsGroup,
    MessageEnvelope,
    OrderBatchRequest,
    OrderCancellationRequest,
    OrderRequest,
    PaymentRequest,
    Quantum,
    QuantumBody,
    RequestQuantum,
    WithdrawalQuantum,
    WithdrawalRequest,
)

# The classes a quantum body may have (a set lookup; the union's `in` is a Python call).
_BODY_TYPES = frozenset(QUANTUM_BODY.discriminant_of)


class QuantumMismatch(Exception):  # noqa: N818 - a condition, not an error of the caller
    """A quantum from alpha that this node computes differently: stop signing."""


@record
class Executed:
    """One executed quantum with its hashes and effects."""

    quantum: Quantum
    quantum_hash: bytes
    payload_hash: bytes
    groups: list[EffectsGroup]
    group_hashes: list[bytes]
    account_data: AccountDataInfo | None
    emitted: list[tuple[int, Effect]]
    # The XDR the hashes were computed from, kept so persistence does not encode it again.
    quantum_data: bytes
    group_data: list[bytes]

    @property
    def apex(self) -> int:
        """Returns the quantum's apex."""
        return self.quantum.apex


def verify_envelope(envelope: MessageEnvelope, constellation_id: bytes) -> None:
    """Raises Unauthorized unless the envelope is signed, for this constellation, by the
    account the request names."""
    message = envelope.message
    signer = envelope.signature.signer
    if getattr(message, "account", None) != signer:
        raise Unauthorized("the request must be signed by its account's key")
    digest = message_digest(constellation_id, encode(message, MESSAGE))
    if not verify_signature(signer, digest, envelope.signature.signature):
        raise Unauthorized("invalid signature")


ATTESTED_KEPT = 16
"""The most state hashes `Engine.attested` holds before the oldest are dropped."""


class Engine:
    """Executes quanta on a `ConstellationState`, one at a time."""

    def __init__(
        self,
        state: ConstellationState | None = None,
        *,
        validate_deposit: DepositValidator | None = None,
        validate_transaction: TransactionValidator | None = None,
        validate_rotation: RotationValidator | None = None,
    ) -> None:
        """Wraps `state` (a fresh, uninitialized one by default). An auditor hands in its
        payment providers' checks of alpha's deposit notifications, withdrawal transactions
        and vault rotations; alpha built those itself and needs none."""
        self.state = state if state is not None else ConstellationState()
        self.last_timestamp_ms = 0
        self.validate_transaction = validate_transaction
        self.validate_rotation = validate_rotation
        self.validate_deposit = validate_deposit
        # Every `attest_every` apexes (0: never) the state hash after the quantum is recorded
        # in `attested` for the node to sign (`quanta.core.state_snapshot`): one rule on every
        # node, so a majority signs one hash at one apex. Bounded: the worker takes them.
        self.attest_every = 0
        self.attested: list[tuple[int, bytes]] = []

    def next_stamp(self, now_ms: int) -> tuple[int, int]:
        """Returns the apex and the timestamp the next new quantum gets at wall clock `now_ms`.

        The one rule for both: a caller that must know them before executing (alpha builds a
        withdrawal's transaction for them) gets what `execute` then uses. Timestamps never go
        back, even when the clock does, so quanta stay ordered in time as in apex."""
        return self.state.apex + 1, max(now_ms, self.last_timestamp_ms)

    def execute(self, body: QuantumBody, now_ms: int, *, verified: bool = False) -> Executed:
        """Executes a new quantum at the next apex (alpha); raises ConstellationError if the
        request is rejected, leaving the state untouched."""
        if self.state.config is None and not isinstance(body, ConstellationQuantum):
            raise InvalidState("the constellation is not initialized")
        apex, timestamp_ms = self.next_stamp(now_ms)
        return self._run(body, apex, timestamp_ms, verified)

    def replay(self, quantum: Quantum, *, verified: bool = False) -> Executed:
        """Re-executes a quantum numbered by alpha; raises QuantumMismatch if it does not
        chain to this node's last quantum or its effects differ from alpha's proof."""
        state = self.state
        if quantum.apex != state.apex + 1:
            raise QuantumMismatch(f"expected apex {state.apex + 1}, got {quantum.apex}")
        if quantum.prev_hash != state.last_hash:
            raise QuantumMismatch(f"quantum {quantum.apex} does not chain to our last hash")
        try:
            executed = self._run(quantum.body, quantum.apex, quantum.timestamp, verified)
        except ConstellationError as error:
            raise QuantumMismatch(f"quantum {quantum.apex} rejected here: {error}") from None
        if executed.quantum.effects_proof != quantum.effects_proof:
            self.revert_last(executed)
            raise QuantumMismatch(f"quantum {quantum.apex}: effects proof differs from alpha's")
        return executed

    def _run(self, body: QuantumBody, apex: int, timestamp_ms: int, verified: bool) -> Executed:
        if body.__class__ not in _BODY_TYPES:
            raise BadRequest(f"{type(body).__name__} is not a quantum")
        ctx = QuantumContext(self.state, apex, timestamp_ms)
        try:
            account_data = self._dispatch(ctx, body, verified)
        except BaseException:
            ctx.rollback()
            raise
        groups = ctx.finish()
        proof, group_hashes, group_data = effects_proof_of(groups)
        state = self.state
        quantum = Quantum(apex, state.last_hash, proof, timestamp_ms, body)
        quantum_data = encode(quantum)
        quantum_hash = sha256(quantum_data)
        state.apex = apex
        state.last_hash = quantum_hash
        self.last_timestamp_ms = timestamp_ms
        assert state.config is not None, "every executed quantum leaves settings in force"
        payload = payload_hash(state.config.constellation_id, apex, quantum_hash, proof)
        if self.attest_every and apex % self.attest_every == 0:
            self.attested.append((apex, state.state_hash()))
            del self.attested[:-ATTESTED_KEPT]
        return Executed(
            quantum,
            quantum_hash,
            payload,
            groups,
            group_hashes,
            account_data,
            ctx.effects,
            quantum_data,
            group_data,
        )

    def _constellation_id(self) -> bytes:
        config = self.state.config
        if config is None:
            raise InvalidState("the constellation is not initialized")
        return config.constellation_id

    def _dispatch(
        self, ctx: QuantumContext, body: QuantumBody, verified: bool
    ) -> AccountDataInfo | None:
        if not isinstance(body, ConstellationQuantum):
            self._refuse_when_halted(ctx.apex)
        if isinstance(body, RequestQuantum):
            if not verified:
                verify_envelope(body.request, self._constellation_id())
            return self._dispatch_request(ctx, body.request.message)
        if isinstance(body, DepositQuantum):
            process_deposit(ctx, body, self.validate_deposit)
        elif isinstance(body, ConstellationQuantum):
            process_settings(ctx, body, self.validate_rotation)
        elif isinstance(body, WithdrawalQuantum):
            if not verified:
                verify_envelope(body.request, self._constellation_id())
            request = body.request.message
            if not isinstance(request, WithdrawalRequest):
                raise BadRequest("a withdrawal quantum must carry a WithdrawalRequest")
            process_withdrawal(ctx, body, request, self.validate_transaction)
        return None

    def _refuse_when_halted(self, apex: int) -> None:
        # Here, not at alpha's gateway: every node executes this rule, so an auditor refuses
        # to sign a quantum alpha ran past a scheduled halt, and the halt is one apex for all.
        config = self.state.config
        reason = None if config is None else config.halt_reason(apex)
        if reason is not None:
            raise InvalidState(reason)

    def _dispatch_request(self, ctx: QuantumContext, message: object) -> AccountDataInfo | None:
        if isinstance(message, OrderRequest):
            process_order(ctx, message)
        elif isinstance(message, OrderCancellationRequest):
            process_cancellation(ctx, message)
        elif isinstance(message, OrderBatchRequest):
            process_batch(ctx, message)
        elif isinstance(message, PaymentRequest):
            process_payment(ctx, message)
        elif isinstance(message, AccountDataRequest):
            return process_account_data(ctx, message)
        elif isinstance(message, WithdrawalRequest):
            raise BadRequest("withdrawals travel in a withdrawal quantum")
        else:
            raise BadRequest(f"{type(message).__name__} is not a client request")
        return None

    def revert_last(self, executed: Executed) -> None:
        """Undoes the last executed quantum (its effects, sequences and chain head)."""
        state = self.state
        assert state.apex == executed.apex, (state.apex, executed.apex)
        ctx = QuantumContext(state, executed.apex, executed.quantum.timestamp)
        ctx.unfinish(executed.groups)
        ctx.effects = list(executed.emitted)
        ctx.rollback()
        state.apex = executed.apex - 1
        state.last_hash = executed.quantum.prev_hash
        if self.attested and self.attested[-1][0] == executed.apex:
            self.attested.pop()  # That state is gone: nobody must sign its hash.
