"""`AuditorWorker`: the engine of an auditor (CONSTELLATION_ROLE=auditor).

Re-executes and signs the quanta its herald link brings from alpha (`quanta.batch`) and sends
back the results, or a resend request when it saw a gap. Its engine judges alpha's deposit
notifications and withdrawal transactions through this node's own payment providers, and
signs each withdrawal's transaction (`quanta.node.providers`). A quantum the node cannot
confirm yet stays with the node, which checks it again after the delay it names
(`BatchOutcome.retry_after_ms`). Requests meant for alpha are refused, as a client or operator
that reached this node needs to hear.

It tells alpha its state (a `StateUpdate`) in answer to every frame that brought nothing to
sign (alpha's heartbeats) and whenever its state changed, and leaves Ready when it loses alpha:
its link says the connection dropped (`quanta.link_down`) or nothing came for a while
(`AuditorNode.review_alpha`, each tick).

A duplicate the node no longer holds in memory (it executed that quantum before it restarted)
is compared with the row it persisted, read from the database only then (`persisted_quanta`):
alpha resends the quanta whose signatures were lost, and only that record lets a restarted
auditor sign them again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection
from dataclasses import replace
from typing import Literal

from django.conf import settings
from django.utils.module_loading import import_string

from quanta import events
from quanta.alpha_designation import designation_read, designation_store
from quanta.core.alpha_replacement import alpha_address, is_replacement, replacement_check
from quanta.core.auditor import AuditorNode, BatchOutcome, KnownQuantum, known_from_record
from quanta.core.engine import Engine
from quanta.core.results import Delivery, ReplyTo, result_message
from quanta.core.status import ConstellationError, StatusCode
from quanta.core.xdr.codec import XdrError, decode, encode
from quanta.core.xdr.schema import (
    MESSAGE,
    ConstellationMessageEnvelope,
    ConstellationQuantum,
    Limits,
    MessageEnvelope,
    NodeState,
    ResultsBatch,
    StateUpdate,
)
from quanta.models import QuantumRecord
from quanta.node.engine_worker import EngineWorker, Task, monotonic_ms
from quanta.node.figures import NodeReading
from quanta.node.loader import node_pending, node_restore, node_status_publish
from quanta.node.providers import (
    NodeProviders,
    deposit_validator,
    rotation_signer,
    rotation_validator,
    transaction_signer,
    transaction_validator,
)
from quanta.node.snapshot import snapshot_load
from quanta.node_identity import genesis_pin, node_keypair

logger = logging.getLogger(__name__)

NOT_ALPHA_TEXT = "this node is an auditor: {}"

AnswerKind = Literal["init.result", "update.result"]


class AuditorWorker(EngineWorker[AuditorNode]):
    """An auditor's engine worker."""

    ROLE = "auditor"

    providers: NodeProviders
    """Set by `load`, with the node."""

    _retry: asyncio.Task[None] | None = None
    """The pending check of held quanta, if one is scheduled."""

    def __init__(self) -> None:
        super().__init__()
        # The engine and the providers, which read the ledger (quanta.node.own_thread says
        # why not in the shared database thread). One thread: they still run one call at a
        # time, in order.
        self.execution = self.own_thread("auditor-execution")

    def load(self) -> AuditorNode:
        """Builds the auditor from the database, its engine checking through its providers."""
        loaded = snapshot_load()
        keypair = node_keypair()
        self.providers = providers = NodeProviders(keypair, loaded.state)
        engine = Engine(
            loaded.state,
            validate_deposit=deposit_validator(providers),
            validate_transaction=transaction_validator(providers),
            validate_rotation=rotation_validator(providers),
        )
        signer = transaction_signer(providers)
        node = auditor_node_class()(
            keypair,
            engine,
            node_pending(),
            sign_transaction=signer,
            sign_rotation=rotation_signer(providers),
            genesis_pin=genesis_pin(),
            persisted=persisted_quanta,
        )
        if node_restore(node, loaded, is_alpha=False):
            node.status.set(NodeState.RUNNING, "loaded; waiting for alpha")
            _designation_restore(node)
        providers.check_vaults()
        return node

    VAULTS_LOOK_S = 1.0

    def background(self) -> list[Task]:
        """Adds the look at mismatched vaults: the constellation's rotation is seen (and the
        mismatch leaves the status) without waiting for a withdrawal to sign."""
        return [*super().background(), self._vaults_forever()]

    async def _vaults_forever(self) -> None:
        while not self._stopping:
            await asyncio.sleep(self.VAULTS_LOOK_S)
            if not self.providers.mismatches():
                continue
            try:  # I/O only every VAULT_RECHECK_MS (check_vault), a loop that never dies
                await self.execution.run(self.providers.check_vaults)
            except Exception:
                logger.exception("looking at the vaults again failed; will retry")

    async def quanta_batch(self, event: events.QuantaBatch) -> None:
        """Re-executes and signs the quanta alpha streamed."""
        batch = event["batch"]
        await self._handle(lambda: self.node.handle_frame(batch, monotonic_ms()), event["reply"])

    async def _handle(self, handle: Callable[[], BatchOutcome], reply: str) -> None:
        """Runs `handle` on the node, sends what it signed and, when there was nothing to sign
        or the node's state changed, its state to alpha."""
        node = self.node
        before = (node.status.state, node.status.reason)
        async with self._state_lock:
            outcome = await self.execution.run(handle)
            if any(isinstance(e.quantum.body, ConstellationQuantum) for e in outcome.executed):
                self.providers.rebuild()
                await self.execution.run(self.providers.check_vaults)
        if outcome.results:
            results = encode(ResultsBatch(0, tuple(outcome.results)), MESSAGE)
            await self.channel_layer.send(reply, events.herald_results(results))
        if not outcome.results or before != (node.status.state, node.status.reason):
            await self.channel_layer.send(reply, events.herald_results(self._report()))
        if outcome.resend_from is not None:
            resend = events.herald_resend(outcome.resend_from)
            await self.channel_layer.send(reply, resend)
        if outcome.retry_after_ms is not None and self._retry is None:
            self._retry = asyncio.create_task(self._retry_held(outcome.retry_after_ms, reply))

    async def _retry_held(self, delay_ms: int, reply: str) -> None:
        # A timer, not a synchronization: the provider's view or the clock must move on.
        await asyncio.sleep(delay_ms / 1000)
        self._retry = None
        try:
            await self._handle(self.node.retry_held, reply)
        except Exception:
            logger.exception("checking the held quanta again failed")

    def _report(self) -> bytes:
        status = self.node.status
        reason = status.reason.encode()[: Limits.DESCRIPTION_MAX].decode(errors="ignore")
        return encode(StateUpdate(0, status.state, self.node.apex, reason), MESSAGE)

    async def quanta_link_down(self, event: events.QuantaLinkDown) -> None:
        """Leaves Ready: the herald link lost alpha."""
        self.node.alpha_lost(event["reason"])
        await self.publish_status()

    def review(self) -> None:
        """Counts alpha as lost once it has been silent too long."""
        self.node.review_alpha(monotonic_ms())

    def reading(self) -> NodeReading:
        """Returns the auditor's figures: its quanta/s are the quanta it signed, its lag is
        behind the apex alpha last announced."""
        return replace(super().reading(), alpha_apex=self.node.alpha_apex)

    async def quanta_auditor_state(self, event: events.QuantaAuditorState) -> None:
        """Ignores an auditor's presence (alpha tracks it)."""

    # --- what only alpha does ----------------------------------------------------------------

    async def quanta_requests(self, event: events.QuantaRequests) -> None:
        """Refuses client requests: they go to alpha."""
        hub = event["hub"]
        self.outbox.put([_refusal(data, (hub, int(number))) for number, data in event["requests"]])
        self.outbox.credit(hub, int(event["batch"]))

    async def quanta_init(self, event: events.EngineAsk) -> None:
        """Refuses to initialize: that goes through alpha."""
        await self._flush(force=True)
        await self._refuse(event, "init.result", "initialize through alpha")

    async def quanta_update(self, event: events.EngineAsk) -> None:
        """Takes an alpha replacement (this node then follows the alpha it names, whose
        frames it takes from now on); refuses any other settings update: that goes through
        alpha."""
        data = event["envelope"]
        config = self.node.engine.state.config
        try:
            envelope = decode(ConstellationMessageEnvelope, data)
        except XdrError:
            envelope = None
        if envelope is None or config is None or not is_replacement(envelope, config):
            await self._refuse(event, "update.result", "update the settings through alpha")
            return
        reply = events.engine_answer("update.result", 200, "following the new alpha")
        try:
            brought = replacement_check(envelope, config)
            self.node.designate(brought.alpha)
            await asyncio.to_thread(designation_store, data)
            reply["description"] = f"following the new alpha at {alpha_address(brought)}"
        except ConstellationError as error:
            reply["status"] = int(error.status)
            reply["description"] = str(error)
        await self.channel_layer.send(event["reply"], reply)

    async def _refuse(self, event: events.EngineAsk, kind: AnswerKind, what: str) -> None:
        text = NOT_ALPHA_TEXT.format(what)
        reply = events.engine_answer(kind, int(StatusCode.INVALID_STATE), text)
        await asyncio.to_thread(node_status_publish, self.node)
        await self.channel_layer.send(event["reply"], reply)

    async def quanta_flush_ask(self, event: events.QuantaFlushAsk) -> None:
        """Persists every quantum signed so far, then tells the herald link, which answers a
        rising alpha from the database only then: a signature leaves before its row is
        flushed, and an answer without a quantum this node signed could let alpha replace
        a quantum that was final with that signature. Handled after every batch the link
        relayed before the ask (one channel, in order)."""
        await self._flush(force=False)
        await self.channel_layer.send(event["reply"], events.herald_flushed())

    async def quanta_signatures(self, event: events.QuantaSignatures) -> None:
        """Ignores auditor signatures (alpha collects them)."""

    async def herald_catchup(self, event: events.HeraldCatchup) -> None:
        """Ignores a catchup request (alpha serves them)."""

    async def quanta_catchup(self, event: events.QuantaCatchup) -> None:
        """Ignores quanta offered for a rising alpha."""


def persisted_quanta(apexes: Collection[int]) -> dict[int, KnownQuantum]:
    """Returns the quanta of `apexes` this node persisted, with the payload hash it signed:
    one query, called by the node (in the worker's execution thread) only for duplicates it no
    longer holds in memory, a bounded number per batch (`PERSISTED_LOOKUP_MAX`)."""
    records = QuantumRecord.objects.filter(apex__in=list(apexes))
    fields = records.values_list("apex", "data", "payload_hash", "signatures")
    return {
        int(apex): known_from_record(bytes(data), bytes(payload), bytes(signatures))
        for apex, data, payload, signatures in fields
    }


def _designation_restore(node: AuditorNode) -> None:
    """Takes again the replacement update this node was given before it restarted, if it is
    still valid and not yet in force."""
    envelope = designation_read()
    config = node.engine.state.config
    if envelope is None or config is None or not is_replacement(envelope, config):
        return
    try:
        node.designate(replacement_check(envelope, config).alpha)
    except ConstellationError:
        return


def auditor_node_class() -> type[AuditorNode]:
    """Returns the node class settings.AUDITOR_NODE_CLASS names (the tests' forging auditor
    in one cluster test, `AuditorNode` everywhere else)."""
    cls = import_string(settings.AUDITOR_NODE_CLASS)
    assert isinstance(cls, type) and issubclass(cls, AuditorNode), cls
    return cls


def _refusal(data: bytes, reply: ReplyTo) -> Delivery:
    try:
        envelope = decode(MessageEnvelope, data)
    except XdrError as error:  # The gateway checked it; answered as alpha would.
        logger.error("the gateway passed an undecodable request: %s", error)
        return Delivery(result_message(0, StatusCode.BAD_REQUEST, str(error)), None, reply)
    message_id = int(getattr(envelope.message, "message_id", 0))
    text = NOT_ALPHA_TEXT.format("send requests to alpha")
    return Delivery(result_message(message_id, StatusCode.INVALID_STATE, text), None, reply)
