"""`EngineConsumer` (`runworker quanta`): the one sequential engine of a node.

Adapts the plain `AlphaNode` / `AuditorNode` objects to the channel layer; one instance
handles every message of the `quanta` channel, one at a time. Persistence, streaming to the
auditors and status publishing run in a flush loop; results leave through `ResultOutbox`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from channels.consumer import AsyncConsumer
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

from chronicler.publisher import MarketPublisher
from chronicler.services import history_kept
from constellation_site import gc_policy
from payments.core.provider import PaymentProvider
from payments.payouts import PayoutDesk
from quanta import worker
from quanta.consumers.outbox import ResultOutbox
from quanta.core.alpha import AlphaNode
from quanta.core.auditor import AuditorNode
from quanta.core.pending import Batch, QuantumRow
from quanta.core.results import Delivery, ReplyTo, result_message
from quanta.core.status import ConstellationError, InvalidState, StatusCode
from quanta.core.xdr.codec import XdrError, decode, encode
from quanta.core.xdr.schema import (
    MESSAGE,
    CatchupQuantaBatch,
    ConstellationMessageEnvelope,
    ConstellationQuantum,
    DepositQuantum,
    MessageEnvelope,
    NodeState,
    QuantaBatch,
    ResultsBatch,
    SignedQuantum,
    WithdrawalOutcome,
    WithdrawalRequest,
)
from quanta.dispatch import DirectDispatchMixin
from quanta.groups import GATEWAYS_GROUP, HERALD_GROUP
from quanta.selectors import quanta_signed_after

logger = logging.getLogger(__name__)


class EngineConsumer(DirectDispatchMixin, AsyncConsumer):
    """The engine worker: executes quanta one at a time and persists them.

    At alpha it executes client requests and provider notifications, streams the quanta to
    the auditors through the herald and finalizes them with their signatures; at an auditor
    it re-executes and signs the quanta its herald link brings.
    """

    FLUSH_INTERVAL_S = 0.05
    PUBLISH_INTERVAL_S = 0.2
    DEPOSIT_POLL_S = 0.2
    CATCHUP_BATCH = 500

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.node: worker.Node = await database_sync_to_async(worker.node_load)()
        await asyncio.to_thread(worker.node_status_publish, self.node)
        self._last_cut = time.monotonic()
        self._last_publish = 0.0
        self._batches: list[Batch] = []
        self.providers = worker.providers_for(self.node)
        # Public market data (chronicler): rebuilt from the persisted trades, then published;
        # none on a node that keeps no history (auditor participation).
        self.market_data: MarketPublisher | None = None
        if history_kept():
            layer = get_channel_layer()
            self.market_data = await database_sync_to_async(MarketPublisher.load)(layer)
            await self.market_data.publish_all(self.node.engine.state.exchange)
        # The state is loaded: the collector need not walk it again (gc_policy explains).
        gc_policy.settle()
        # Auditors execute batches in a thread (their providers read the ledger to check
        # alpha's deposit notifications); the lock keeps snapshot cuts out of that window.
        self._state_lock = asyncio.Lock()
        self._flush_lock = asyncio.Lock()
        # Replies owed once a quantum is final and persisted (apex -> reply channel, reply).
        self._replies_when_final: dict[int, tuple[str, dict[str, Any]]] = {}
        self._published = (self.node.status.state, self.node.engine.state.apex)
        worker.deposit_validation_install(self.node, self._current_providers)
        worker.withdrawal_validation_install(self.node, self._current_providers)
        self.payouts = PayoutDesk(self._current_providers, worker.now_ms)
        self.outbox = ResultOutbox()
        tasks = [
            asyncio.create_task(self._flush_forever()),
            asyncio.create_task(self.outbox.send_forever(get_channel_layer())),
        ]
        if isinstance(self.node, AlphaNode):
            # AsyncConsumer sets self.channel_layer only in super().__call__ (below).
            layer = get_channel_layer()
            assert layer is not None
            await layer.group_send(GATEWAYS_GROUP, {"type": "hub.engine_started"})
            tasks.append(asyncio.create_task(self._poll_deposits_forever()))
            tasks.append(asyncio.create_task(self._payouts_forever()))
            if self.node.status.state == NodeState.RISING:
                # Auditors still connected to this node's web process do not know the engine
                # restarted: ask each of them for what it holds above our apex.
                rising = {"type": "herald.rising", "apex": self.node.engine.state.apex}
                await layer.group_send(HERALD_GROUP, rising)
        try:
            await super().__call__(scope, receive, send)
        finally:
            for task in tasks:
                task.cancel()
            await self._flush(force=True)

    def _current_providers(self) -> dict[str, PaymentProvider]:
        # An auditor catching up from scratch meets the settings quantum and the payments
        # that need its providers in one batch: build them as soon as settings exist.
        if not self.providers and self.node.engine.state.config is not None:
            self.providers = worker.providers_for(self.node)
        return self.providers

    def _alpha(self) -> AlphaNode | None:
        return self.node if isinstance(self.node, AlphaNode) else None

    async def quanta_requests(self, event: dict[str, Any]) -> None:
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
        alpha = self._alpha()
        if alpha is None:
            text = "this node is an auditor: send requests to alpha"
            return [
                Delivery(result_message(message_id, StatusCode.INVALID_STATE, text), None, reply)
            ]
        try:
            if isinstance(envelope.message, WithdrawalRequest):
                return self._withdraw(alpha, envelope, reply)
            return alpha.submit(envelope, worker.now_ms(), reply)
        except Exception:  # One request's bug must not lose the rest of the batch.
            logger.exception("executing request %d failed", message_id)
            text = "the request could not be executed"
            return [
                Delivery(result_message(message_id, StatusCode.INTERNAL_ERROR, text), None, reply)
            ]

    def _withdraw(
        self, alpha: AlphaNode, envelope: MessageEnvelope, reply: ReplyTo
    ) -> list[Delivery]:
        # Built and executed without awaiting in between, so the apex and timestamp the
        # transaction was built for are the quantum's.
        request = envelope.message
        assert isinstance(request, WithdrawalRequest)
        try:
            apex, timestamp_ms, transaction = self.payouts.build(alpha, request)
        except ConstellationError as error:
            text = str(error)
            return [Delivery(result_message(request.message_id, error.status, text), None, reply)]
        except Exception:  # A provider's bug must not stop the engine.
            logger.exception("building withdrawal transaction failed")
            status, text = StatusCode.INTERNAL_ERROR, "the provider could not build the payout"
            return [Delivery(result_message(request.message_id, status, text), None, reply)]
        deliveries = alpha.submit(envelope, timestamp_ms, reply, transaction)
        self.payouts.accepted(alpha, apex, request, transaction)
        return deliveries

    async def _payouts_forever(self) -> None:
        alpha = self._alpha()
        assert alpha is not None
        while True:
            await asyncio.sleep(self.DEPOSIT_POLL_S)
            try:
                await self.payouts.tick(alpha)
            except Exception:
                logger.exception("paying out withdrawals failed; will retry")

    async def quanta_init(self, event: dict[str, Any]) -> None:
        """Initializes the constellation with a signed ConstellationUpdate."""
        reply = {"type": "init.result", "status": 200, "description": "initialized"}
        alpha = self._alpha()
        try:
            if alpha is None:
                raise InvalidState("this node is an auditor: initialize through alpha")
            envelope = decode(ConstellationMessageEnvelope, event["envelope"])
            executed = alpha.initialize(envelope, worker.now_ms())
            self.providers = worker.providers_for(self.node)
            reply["apex"] = executed.apex
            # The web processes (info, herald handshakes) read the settings from the database
            # and auditors can only connect (and finalize this very quantum) once they can.
            config = alpha.engine.state.require_config()
            await database_sync_to_async(worker.settings_persist)(executed.apex, config.settings)
        except ConstellationError as error:
            reply.update(status=int(error.status), description=str(error))
        except ValueError as error:
            reply.update(status=int(StatusCode.BAD_REQUEST), description=str(error))
        await self._flush(force=True)
        await asyncio.to_thread(worker.node_status_publish, self.node)
        await self.channel_layer.send(event["reply"], reply)

    async def quanta_update(self, event: dict[str, Any]) -> None:
        """Puts a later ConstellationUpdate signed by a majority of the auditors in force."""
        reply = {"type": "update.result", "status": 200, "description": "settings updated"}
        alpha = self._alpha()
        try:
            if alpha is None:
                raise InvalidState("this node is an auditor: update the settings through alpha")
            envelope = decode(ConstellationMessageEnvelope, event["envelope"])
            executed = alpha.update_settings(envelope, worker.now_ms())
            self.providers = worker.providers_for(self.node)
            reply["apex"] = executed.apex
            # Answered once final and persisted (with its settings record, quanta_persist):
            # a 200 then survives any crash of alpha, and no node shows undoable settings.
            self._replies_when_final[executed.apex] = (event["reply"], reply)
            return
        except ConstellationError as error:
            reply.update(status=int(error.status), description=str(error))
        except ValueError as error:
            reply.update(status=int(StatusCode.BAD_REQUEST), description=str(error))
        await asyncio.to_thread(worker.node_status_publish, self.node)
        await self.channel_layer.send(event["reply"], reply)

    async def quanta_signatures(self, event: dict[str, Any]) -> None:
        """Adds the signatures an auditor returned (alpha)."""
        alpha = self._alpha()
        if alpha is None:
            return
        batch = decode(ResultsBatch, event["results"])
        deliveries: list[Delivery] = []
        for result in batch.results:
            if result.signature.auditor_index != event["auditor_index"]:
                continue  # An auditor may only speak for itself.
            if result.tx_signature is not None:
                self.payouts.offer(result.apex, result.tx_signature)
            deliveries += alpha.add_signature(
                result.apex, result.signature.auditor_index, result.signature.signature
            )
        await self._deliver(deliveries)

    async def herald_catchup(self, event: dict[str, Any]) -> None:
        """Sends an auditor the quanta above its cursor (alpha)."""
        alpha = self._alpha()
        if alpha is None:
            return
        if alpha.status.state == NodeState.RISING:
            rising = {"type": "herald.rising", "apex": alpha.engine.state.apex}
            await self.channel_layer.send(event["reply"], rising)
            return
        cursor = int(event["cursor"])
        while cursor < alpha.engine.state.apex:
            quanta = alpha.recent_after(cursor)
            if quanta is None:
                quanta = await database_sync_to_async(quanta_signed_after)(
                    cursor, self.CATCHUP_BATCH
                )
            quanta = quanta[: self.CATCHUP_BATCH]
            if not quanta:
                break
            await self.channel_layer.send(
                event["reply"], {"type": "herald.quanta", "batch": self._quanta_batch(quanta)}
            )
            cursor = quanta[-1].quantum.apex

    async def quanta_catchup(self, event: dict[str, Any]) -> None:
        """Takes the quanta an auditor holds above alpha's apex (alpha, Rising)."""
        alpha = self._alpha()
        if alpha is None:
            return
        batch = decode(CatchupQuantaBatch, event["batch"])
        alpha.rising_offer(int(event["auditor_index"]), batch.quanta, not batch.has_more)
        await self._publish_status()

    async def quanta_batch(self, event: dict[str, Any]) -> None:
        """Re-executes and signs the quanta alpha streamed (auditor)."""
        node = self.node
        if not isinstance(node, AuditorNode):
            return
        async with self._state_lock:
            outcome = await database_sync_to_async(node.handle_frame)(event["batch"])
            settings_changed = any(
                isinstance(e.quantum.body, ConstellationQuantum) for e in outcome.executed
            )
            if node.engine.state.config is not None and (settings_changed or not self.providers):
                self.providers = worker.providers_for(node)
        if outcome.results:
            results = encode(ResultsBatch(0, tuple(outcome.results)), MESSAGE)
            await self.channel_layer.send(
                event["reply"], {"type": "herald.results", "message": results}
            )
        if outcome.resend_from is not None:
            await self.channel_layer.send(
                event["reply"], {"type": "herald.resend", "apex": outcome.resend_from}
            )

    def _quanta_batch(self, quanta: list[SignedQuantum]) -> bytes:
        return encode(QuantaBatch(0, tuple(quanta), self.node.engine.state.apex), MESSAGE)

    async def _deliver(self, deliveries: list[Delivery]) -> None:
        """Queues results for the outbox's sender: the sequential engine never waits on Redis."""
        self.outbox.put(deliveries)

    async def _flush_forever(self) -> None:
        while True:
            await asyncio.sleep(self.FLUSH_INTERVAL_S)
            try:
                await self._stream_quanta()
                await self._flush(force=False)
                await self._publish_when_due()
            except Exception:
                logger.exception("persisting failed; will retry")

    async def _publish_when_due(self) -> None:
        # Market feeds and the node's apex change with every flush; readers (the chronicler's
        # subscribers, /api/constellation/info) need them a few times a second, and each
        # publication costs Redis round trips. A change of state is published at once.
        now = time.monotonic()
        if now - self._last_publish < self.PUBLISH_INTERVAL_S:
            if self.node.status.state == self._published[0]:
                return
        self._last_publish = now
        if self.market_data is not None:
            await self.market_data.publish_pending(self.node.engine.state.exchange)
        await self._publish_status()

    async def _stream_quanta(self) -> None:
        alpha = self._alpha()
        if alpha is None:
            return
        quanta = alpha.take_outgoing()
        for start in range(0, len(quanta), self.CATCHUP_BATCH):
            chunk = quanta[start : start + self.CATCHUP_BATCH]
            await self.channel_layer.group_send(
                HERALD_GROUP, {"type": "herald.quanta", "batch": self._quanta_batch(chunk)}
            )

    async def _poll_deposits_forever(self) -> None:
        while True:
            await asyncio.sleep(self.DEPOSIT_POLL_S)
            try:
                await self._poll_deposits()
            except Exception:
                logger.exception("polling the payment providers failed; will retry")

    async def _poll_deposits(self) -> None:
        alpha = self._alpha()
        if alpha is None or alpha.status.state != NodeState.READY:
            return
        for provider_id, provider in self.providers.items():
            initial = provider.settings.init_cursor
            cursor = alpha.engine.state.cursors.get(provider_id, initial)
            expired = await self._expired_outcomes(alpha, provider_id, provider)
            seen = await database_sync_to_async(provider.notification_after)(
                cursor, worker.now_ms()
            )
            # The cursor may have moved while the provider was read: only a notification that
            # still starts at the current cursor may become a quantum.
            moved = alpha.engine.state.cursors.get(provider_id, initial) != cursor
            if moved or (seen.is_empty and not expired):
                continue
            # Outcomes are kept for the withdrawals pending now, as auditors will judge them.
            pending = worker.pending_transactions(alpha, provider_id)
            seen = seen.keeping(provider.pending_hashes(pending))
            kept = {o.withdrawal_id for o in seen.withdrawals}
            extra = tuple(o for o in expired if o.withdrawal_id in pending.keys() - kept)
            outcomes = seen.withdrawals + extra
            body = DepositQuantum(provider_id, seen.cursor, seen.items, outcomes)
            try:
                deliveries = alpha.notify(body, worker.now_ms())
            except ConstellationError as error:
                logger.error("provider %s notification refused: %s", provider_id, error)
                continue
            await self._deliver(deliveries)

    async def _expired_outcomes(
        self, alpha: AlphaNode, provider_id: str, provider: PaymentProvider
    ) -> tuple[WithdrawalOutcome, ...]:
        pending = worker.pending_transactions(alpha, provider_id)
        if not pending:
            return ()
        return await database_sync_to_async(provider.expired_outcomes)(pending, worker.now_ms())

    async def _flush(self, *, force: bool) -> None:
        # The flush loop and handlers (init) both flush; interleaved at their awaits they
        # would persist one snapshot batch twice and then drop the next one.
        async with self._flush_lock:
            await self._flush_locked(force=force)

    async def _flush_locked(self, *, force: bool) -> None:
        rows = self.node.take_final_rows()
        if rows:
            try:
                await database_sync_to_async(worker.rows_persist)(rows)
            except Exception:
                self.node.final_rows[:0] = rows
                raise
            self.outbox.finals_persisted(len(rows))
            await self._reply_final(rows)
            if self.market_data is not None:
                self.market_data.fold_rows(rows)
        elapsed = time.monotonic() - self._last_cut
        if self.node.pending.is_due(elapsed) or (force and self.node.pending.count):
            async with self._state_lock:
                self._batches.append(self.node.pending.cut(self.node.engine.state))
            self._last_cut = time.monotonic()
        while self._batches and self._batch_is_final(self._batches[0]):
            await database_sync_to_async(worker.snapshot_persist)(self._batches[0])
            self._batches.pop(0)
            await asyncio.to_thread(worker.node_status_publish, self.node)

    async def _reply_final(self, rows: list[QuantumRow]) -> None:
        for row in rows:
            waiting = self._replies_when_final.pop(row.apex, None)
            if waiting is not None:
                channel, reply = waiting
                await self.channel_layer.send(channel, reply)

    async def _publish_status(self) -> None:
        current = (self.node.status.state, self.node.engine.state.apex)
        if current != self._published:
            self._published = current
            await asyncio.to_thread(worker.node_status_publish, self.node)

    def _batch_is_final(self, batch: Batch) -> bool:
        alpha = self._alpha()
        if alpha is None or not alpha.unfinalized:
            return True
        return min(alpha.unfinalized) > batch.apex
