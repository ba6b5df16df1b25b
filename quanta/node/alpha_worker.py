"""`AlphaWorker`: the engine of alpha (CONSTELLATION_ROLE=alpha).

Executes the client requests the gateway hubs batch (`quanta.requests`), the constellation's
initialization and settings updates, and the deposit notifications it polls from its payment
providers; streams each quantum to the auditors through the herald, finalizes it with their
signatures, and pays out withdrawals through the `PayoutDesk`, which its `AlphaNode` holds as
its transaction builder. While Rising it gathers what the auditors hold above its apex.

It heartbeats the auditors (an empty QuantaBatch carrying its apex, `HEARTBEAT_S` after the
last batch), so an idle auditor knows both that alpha lives and that it is in step; each
auditor answers with a `StateUpdate`, and its herald connection's comings and goings arrive
as `quanta.auditor_state`: from them `AlphaNode.review_finality` tells whether a majority
can sign. Signatures that arrived after finality are checked here, in a thread, at each flush.
"""

from __future__ import annotations

import asyncio
import logging
import time

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

from payments.payouts import PayoutDesk
from quanta import events
from quanta.core.alpha import AlphaNode
from quanta.core.engine import Engine
from quanta.core.evidence import EvidenceItem, late_signature_failures
from quanta.core.keys import encode_public_key
from quanta.core.pending import Batch
from quanta.core.results import Delivery, ReplyTo, result_message
from quanta.core.status import ConstellationError, StatusCode
from quanta.core.xdr.codec import XdrError, decode, encode
from quanta.core.xdr.schema import (
    MESSAGE,
    CatchupQuantaBatch,
    ConstellationMessageEnvelope,
    MessageEnvelope,
    NodeState,
    QuantaBatch,
    ResultsBatch,
    SignedQuantum,
)
from quanta.groups import GATEWAYS_GROUP, HERALD_GROUP
from quanta.node.deposits import DepositWatcher
from quanta.node.engine_worker import EngineWorker, Task, monotonic_ms
from quanta.node.loader import node_pending, node_restore, node_status_publish
from quanta.node.persistence import settings_record_persist
from quanta.node.providers import NodeProviders
from quanta.node.snapshot import snapshot_load
from quanta.node_identity import node_keypair, now_ms
from quanta.selectors import quanta_signed_after

logger = logging.getLogger(__name__)


class AlphaWorker(EngineWorker[AlphaNode]):
    """Alpha's engine worker."""

    DEPOSIT_POLL_S = 0.2
    CATCHUP_BATCH = 500
    HEARTBEAT_S = 1.0

    _last_streamed = 0.0
    _last_resend = 0.0  # when unfinal quanta were last looked at for sending again

    providers: NodeProviders
    payouts: PayoutDesk
    deposits: DepositWatcher
    """Set by `load`, with the node."""

    def load(self) -> AlphaNode:
        """Builds alpha from the database; Rising first if auditors may hold more."""
        loaded = snapshot_load()
        keypair = node_keypair()
        self.providers = NodeProviders(keypair, loaded.state)
        self.payouts = PayoutDesk(self.providers.current, now_ms)
        engine = Engine(loaded.state)
        node = AlphaNode(keypair, engine, node_pending(), transactions=self.payouts)
        self.deposits = DepositWatcher(node, self.providers, self.deliver)
        if node_restore(node, loaded, is_alpha=True):
            # Rising first: once Ready, alpha would execute requests on top of a chain the
            # auditors may have finalized further than this node persisted.
            if engine.state.require_config().majority > 1:
                node.begin_rising()
            node.settings_changed()
        return node

    def background(self) -> list[Task]:
        """Adds deposit polling and payouts to the base loops."""
        return [*super().background(), self._poll_deposits_forever(), self._payouts_forever()]

    async def started(self) -> None:
        """Tells the hubs to forget what a predecessor took; asks auditors for quanta if
        Rising (those still connected to the web process do not know the engine restarted)."""
        # AsyncConsumer sets self.channel_layer only once it runs its loop.
        layer = get_channel_layer()
        assert layer is not None
        await layer.group_send(GATEWAYS_GROUP, events.hub_engine_started())
        if self.node.status.state == NodeState.RISING:
            await layer.group_send(HERALD_GROUP, events.herald_rising(self.node.engine.state.apex))

    # --- client requests ---------------------------------------------------------------------

    async def quanta_requests(self, event: events.QuantaRequests) -> None:
        """Executes a batch of client requests a gateway hub verified, in order."""
        hub = event["hub"]
        deliveries: list[Delivery] = []
        for number, data in event["requests"]:
            deliveries += self._request(data, (hub, int(number)))
        self.outbox.put(deliveries)
        self.outbox.credit(hub, int(event["batch"]))

    def _request(self, data: bytes, reply: ReplyTo) -> list[Delivery]:
        try:
            envelope = decode(MessageEnvelope, data)
        except XdrError as error:  # The gateway checked it; a bug must not stop the batch.
            logger.error("the gateway passed an undecodable request: %s", error)
            return [Delivery(result_message(0, StatusCode.BAD_REQUEST, str(error)), None, reply)]
        message_id = int(getattr(envelope.message, "message_id", 0))
        try:
            return self.node.submit(envelope, now_ms(), reply)
        except Exception:  # One request's bug must not lose the rest of the batch.
            logger.exception("executing request %d failed", message_id)
            text = "the request could not be executed"
            return [
                Delivery(result_message(message_id, StatusCode.INTERNAL_ERROR, text), None, reply)
            ]

    # --- settings ----------------------------------------------------------------------------

    async def quanta_init(self, event: events.EngineAsk) -> None:
        """Initializes the constellation with a signed ConstellationUpdate."""
        reply = events.engine_answer("init.result", 200, "initialized")
        try:
            envelope = decode(ConstellationMessageEnvelope, event["envelope"])
            executed = self.node.initialize(envelope, now_ms())
            self.providers.rebuild()
            reply["apex"] = executed.apex
            # The web processes (info, herald handshakes) read the settings from the database
            # and auditors can only connect (and finalize this very quantum) once they can.
            settings = self.node.engine.state.require_config().settings
            await database_sync_to_async(settings_record_persist)(
                apex=executed.apex, settings=settings
            )
        except (ConstellationError, ValueError) as error:
            _refused(reply, error)
        await self._flush(force=True)
        await asyncio.to_thread(node_status_publish, self.node)
        await self.channel_layer.send(event["reply"], reply)

    async def quanta_update(self, event: events.EngineAsk) -> None:
        """Puts a later ConstellationUpdate signed by a majority of the auditors in force."""
        reply = events.engine_answer("update.result", 200, "settings updated")
        try:
            envelope = decode(ConstellationMessageEnvelope, event["envelope"])
            executed = self.node.update_settings(envelope, now_ms(), monotonic_ms())
            self.providers.rebuild()
            reply["apex"] = executed.apex
            # Answered once final and persisted (with its settings record, quanta_persist):
            # a 200 then survives any crash of alpha, and no node shows undoable settings.
            self.reply_when_final(executed.apex, event["reply"], reply)
            return
        except (ConstellationError, ValueError) as error:
            _refused(reply, error)
        await asyncio.to_thread(node_status_publish, self.node)
        await self.channel_layer.send(event["reply"], reply)

    # --- the auditors ------------------------------------------------------------------------

    async def quanta_signatures(self, event: events.QuantaSignatures) -> None:
        """Adds the signatures an auditor returned (its frame kept for any evidence)."""
        frame = event["frame"]
        batch = decode(MessageEnvelope, frame).message
        assert isinstance(batch, ResultsBatch), type(batch)
        self.node.auditor_heard(event["auditor_key"], monotonic_ms())
        deliveries: list[Delivery] = []
        for result in batch.results:
            index = result.signature.auditor_index
            if self.node.signer_key(result.apex, index) != event["auditor_key"]:
                continue  # An auditor may only speak for itself (its key at that quantum).
            if result.tx_signature is not None:
                self.payouts.offer(result.apex, result.tx_signature)
            deliveries += self.node.add_signature(
                result.apex, result.signature.auditor_index, result.signature.signature, frame
            )
        self.deliver(deliveries)

    async def quanta_auditor_state(self, event: events.QuantaAuditorState) -> None:
        """Records an auditor's connection, state report or disconnection."""
        key, channel, now = event["auditor_key"], event["channel"], monotonic_ms()
        if event["connected"]:
            state = NodeState(int(event["state"]))
            if state == NodeState.FAILED and self.node.presence.failed(key) is None:
                name = encode_public_key(key)
                logger.warning("auditor %s reports Failed: %s", name, event["reason"])
            self.node.auditor_report(key, channel, state, event["reason"], now)
        else:
            self.node.auditor_gone(key, channel, now)
        await self.publish_status()

    async def quanta_link_down(self, event: events.QuantaLinkDown) -> None:
        """Ignores an auditor's link event (alpha has no link)."""

    def review(self) -> None:
        """Leaves or regains Ready as a majority of auditors can sign or not."""
        self.node.review_finality(monotonic_ms())

    async def collect_evidence(self) -> list[EvidenceItem]:
        """Checks the signatures that came after finality (in a thread: the verifications
        release the GIL), then returns all the evidence gathered."""
        late = self.node.take_late()
        if late:
            self.node.late_refused(await asyncio.to_thread(late_signature_failures, late))
        return self.node.take_evidence()

    async def herald_catchup(self, event: events.HeraldCatchup) -> None:
        """Sends an auditor the quanta above its cursor."""
        alpha = self.node
        if alpha.status.state == NodeState.RISING:
            rising = events.herald_rising(alpha.engine.state.apex)
            await self.channel_layer.send(event["reply"], rising)
            return
        cursor = alpha.catchup_start(int(event["cursor"]))
        if cursor >= alpha.engine.state.apex:
            # Nothing to send, but the auditor learns alpha's apex: it is in step, Ready.
            batch = events.herald_quanta(self._quanta_batch([]))
            await self.channel_layer.send(event["reply"], batch)
        while cursor < alpha.engine.state.apex:
            quanta = alpha.recent_after(cursor)
            if quanta is None:
                quanta = await database_sync_to_async(quanta_signed_after)(
                    cursor, self.CATCHUP_BATCH
                )
            quanta = quanta[: self.CATCHUP_BATCH]
            if not quanta:
                break
            batch = events.herald_quanta(self._quanta_batch(quanta))
            await self.channel_layer.send(event["reply"], batch)
            cursor = quanta[-1].quantum.apex

    async def quanta_catchup(self, event: events.QuantaCatchup) -> None:
        """Takes the quanta an auditor holds above alpha's apex (Rising)."""
        self.node.auditor_heard(event["auditor_key"], monotonic_ms())
        batch = decode(CatchupQuantaBatch, event["batch"])
        self.node.rising_offer(event["auditor_key"], batch.quanta, not batch.has_more)
        await self.publish_status()

    async def quanta_batch(self, event: events.QuantaBatch) -> None:
        """Ignores a herald frame meant for an auditor's engine."""

    async def stream_quanta(self) -> None:
        """Streams the quanta executed since the last flush to every auditor, or a heartbeat
        (an empty batch) once nothing went out for `HEARTBEAT_S`."""
        quanta = self.node.take_outgoing()
        now = time.monotonic()
        if quanta:
            self._last_streamed = now
        for start in range(0, len(quanta), self.CATCHUP_BATCH):
            chunk = quanta[start : start + self.CATCHUP_BATCH]
            batch = events.herald_quanta(self._quanta_batch(chunk))
            await self.channel_layer.group_send(HERALD_GROUP, batch)
        if now - self._last_resend >= self.HEARTBEAT_S:
            self._last_resend = now
            again = self.node.unfinal_to_resend()
            for start in range(0, len(again), self.CATCHUP_BATCH):
                chunk = again[start : start + self.CATCHUP_BATCH]
                await self.channel_layer.group_send(
                    HERALD_GROUP, events.herald_quanta(self._quanta_batch(chunk))
                )
        if now - self._last_streamed >= self.HEARTBEAT_S and self._alive():
            self._last_streamed = now
            heartbeat = events.herald_quanta(self._quanta_batch([]))
            await self.channel_layer.group_send(HERALD_GROUP, heartbeat)

    def _alive(self) -> bool:
        # No heartbeat while Rising or Failed: the auditors must not take alpha as in step.
        node = self.node
        alive = node.status.state in (NodeState.READY, NodeState.RUNNING)
        return alive and node.engine.state.config is not None

    def _quanta_batch(self, quanta: list[SignedQuantum]) -> bytes:
        return encode(QuantaBatch(0, tuple(quanta), self.node.engine.state.apex), MESSAGE)

    def batch_is_final(self, batch: Batch) -> bool:
        """Tells whether every quantum of the batch is final (it may be persisted)."""
        unfinalized = self.node.unfinalized
        return not unfinalized or min(unfinalized) > batch.apex

    # --- payment providers -------------------------------------------------------------------

    async def _poll_deposits_forever(self) -> None:
        while True:
            await asyncio.sleep(self.DEPOSIT_POLL_S)
            try:
                await self.deposits.poll()
            except Exception:
                logger.exception("polling the payment providers failed; will retry")

    async def _payouts_forever(self) -> None:
        while True:
            await asyncio.sleep(self.DEPOSIT_POLL_S)
            try:
                node = self.node
                await self.payouts.tick(node.engine.state, node.status.state, self.persisted.apex)
            except Exception:
                logger.exception("paying out withdrawals failed; will retry")


def _refused(reply: events.EngineAnswer, error: ConstellationError | ValueError) -> None:
    status = error.status if isinstance(error, ConstellationError) else StatusCode.BAD_REQUEST
    reply["status"] = int(status)
    reply["description"] = str(error)
