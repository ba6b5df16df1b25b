"""`AlphaWorker`: the engine of alpha (CONSTELLATION_ROLE=alpha).

Executes the client requests the gateway hubs batch (`quanta.requests`), the constellation's
initialization and settings updates, and the deposit notifications it polls from its payment
providers, and pays out withdrawals through the `PayoutDesk`, which its `AlphaNode` holds as
its transaction builder. Everything it does with the auditors (streaming, heartbeats,
signatures, catchups, Rising) is its base class's, `quanta.node.alpha_herald.AlphaHerald`.
"""

from __future__ import annotations

import asyncio
import logging

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings

from payments.payouts import PayoutDesk
from payments.rotations import DatabaseRotationStore, rotation_records_load
from quanta import events
from quanta.alpha_designation import designation_forward, designation_store
from quanta.core.alpha import AlphaNode
from quanta.core.alpha_replacement import alpha_address, is_replacement, replacement_check
from quanta.core.config import Config
from quanta.core.engine import Engine
from quanta.core.pending import Batch
from quanta.core.results import Delivery, ReplyTo, result_message
from quanta.core.status import ConstellationError, StatusCode
from quanta.core.xdr.codec import XdrError, decode
from quanta.core.xdr.schema import (
    ConstellationMessageEnvelope,
    ConstellationQuantum,
    ConstellationUpdate,
    MessageEnvelope,
    NodeState,
)
from quanta.groups import GATEWAYS_GROUP, HERALD_GROUP
from quanta.init_token import init_token_clear, init_token_set
from quanta.node.alpha_herald import AlphaHerald
from quanta.node.deposits import DepositWatcher
from quanta.node.engine_worker import Task, monotonic_ms
from quanta.node.loader import node_pending, node_restore, node_status_publish
from quanta.node.persistence import settings_record_persist, unfinal_settings_persist
from quanta.node.providers import NodeProviders
from quanta.node.snapshot import LoadedNode, snapshot_load
from quanta.node_identity import genesis_pin, node_keypair, now_ms
from quanta.selectors import settings_update_at

logger = logging.getLogger(__name__)


class AlphaWorker(AlphaHerald):
    """Alpha's engine worker: requests, settings, deposits and payouts; what it does with the
    auditors is `AlphaHerald`'s."""

    DEPOSIT_POLL_S = 0.2

    providers: NodeProviders
    deposits: DepositWatcher
    """Set by `load`, with the node (and `payouts`, declared by `AlphaHerald`)."""

    _designation: events.EngineAsk | None = None
    """An alpha designate's update, kept until Rising completed (`_designation_take`)."""
    _forwarded: bytes | None = None
    """The replacement update last handed to the other nodes (the web process retries an
    update every UPDATE_RETRY_S: each is handed over once, not at every retry)."""
    _forwarding: asyncio.Task[None] | None = None

    def load(self) -> AlphaNode:
        """Builds alpha from the database; Rising first if auditors may hold more."""
        loaded = snapshot_load()
        keypair = node_keypair()
        self.providers = NodeProviders(keypair, loaded.state)
        self.payouts = PayoutDesk(self.providers.current, now_ms, DatabaseRotationStore())
        # A rotation not submitted before a restart, with the old signers' signatures: a
        # removed auditor would not sign it again.
        self.payouts.rotations_restore(rotation_records_load())
        engine = Engine(loaded.state)
        node = AlphaNode(
            keypair,
            engine,
            node_pending(),
            transactions=self.payouts,
            rotations=self.payouts,
            genesis_pin=genesis_pin(),
            late_check_one_in=settings.LATE_SIGNATURES_CHECK_ONE_IN,
        )
        self.deposits = DepositWatcher(node, self.providers, self.deliver)
        restored = node_restore(node, loaded, is_alpha=True)
        if engine.state.config is None:
            init_token_set()  # Only the operator holding it may post the genesis.
        else:
            init_token_clear()  # In case the engine stopped between initializing and this.
        if restored:
            # Rising first: once Ready, alpha would execute requests on top of a chain the
            # auditors may have finalized further than this node persisted.
            if engine.state.require_config().majority > 1:
                # Its journal above the replayed rows is what it sent: an auditor may hold
                # any of it, so it is kept (re-executed), never replaced (group commit).
                own = loaded.above_hole + loaded.journal_above(engine.state.apex)
                node.begin_rising(loaded.unfinal_settings, own)
            node.settings_changed()
        elif _lost_its_genesis(node, loaded):
            # It executed the genesis and crashed before the genesis quantum was final and
            # persisted: the auditors may hold it (`initialize` waits for the recovery).
            own = loaded.above_hole + loaded.journal_above(0)
            node.begin_rising(own=own, genesis=loaded.genesis)
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

    async def settings_recovered(self) -> None:
        """Rebuilds the payment providers for the settings Rising re-applied (they were built
        from the loaded ones); a recovered genesis also ends the initialization window."""
        self.providers.rebuild()
        await asyncio.to_thread(init_token_clear)

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
            await asyncio.to_thread(init_token_clear)
        except (ConstellationError, ValueError) as error:
            _refused(reply, error)
        await self._flush(force=True)
        await asyncio.to_thread(node_status_publish, self.node)
        await self.channel_layer.send(event["reply"], reply)

    async def quanta_update(self, event: events.EngineAsk) -> None:
        """Puts a later ConstellationUpdate signed by a majority of the auditors in force (an
        alpha designate: the one naming it, once Rising completed)."""
        if self.node.is_designate:
            await self._designation_take(event)
        elif _replaces_alpha(event["envelope"], self.node):
            await self._stop_replaced(event)
        else:
            await self._update(event)

    async def _stop_replaced(self, event: events.EngineAsk) -> None:
        """Stops this alpha for good: a valid update names another (its operator restarts
        the node as an auditor, which then follows the new alpha: the update is kept)."""
        reply = events.engine_answer("update.result", 200, "")
        try:
            envelope = decode(ConstellationMessageEnvelope, event["envelope"])
            update = envelope.message
            assert isinstance(update, ConstellationUpdate)  # `_replaces_alpha` checked it
            self.node.stop_replaced(envelope, alpha_address(update.settings))
            await asyncio.to_thread(designation_store, event["envelope"])
            reply["description"] = self.node.status.reason
        except (ConstellationError, ValueError) as error:
            _refused(reply, error)
        await self.publish_status()
        await self.channel_layer.send(event["reply"], reply)

    async def _designation_take(self, event: events.EngineAsk) -> None:
        """Keeps the update that names this alpha designate, hands it to the other nodes
        (their herald links then come here) and executes it once Rising completed."""
        try:
            envelope = decode(ConstellationMessageEnvelope, event["envelope"])
            brought = replacement_check(envelope, self.node.engine.state.require_config())
        except (ConstellationError, ValueError) as error:
            reply = events.engine_answer("update.result", 200, "")
            _refused(reply, error)
            await self.channel_layer.send(event["reply"], reply)
            return
        if event["envelope"] != self._forwarded:
            self._forwarded = event["envelope"]
            forward = asyncio.to_thread(
                designation_forward, event["envelope"], brought, self.node.keypair.public_key
            )
            self._forwarding = asyncio.create_task(forward)
        superseded = self._designation
        self._designation = event
        if superseded is not None:  # its sender hears now rather than at its timeout
            reply = events.engine_answer("update.result", 409, "superseded by a later submission")
            await self.channel_layer.send(superseded["reply"], reply)
        await self._designation_execute()

    async def _designation_execute(self) -> None:
        """Executes the update kept by `_designation_take` once Rising completed."""
        event = self._designation
        if event is None or not self.node.is_designate:
            return
        if self.node.status.state == NodeState.RUNNING:
            self._designation = None
            await self._update(event)

    async def quanta_catchup(self, event: events.QuantaCatchup) -> None:
        """Takes an auditor's Rising answer; an alpha designate then executes its update."""
        await super().quanta_catchup(event)
        await self._designation_execute()

    async def _update(self, event: events.EngineAsk) -> None:
        reply = events.engine_answer("update.result", 200, "settings updated")
        try:
            envelope = decode(ConstellationMessageEnvelope, event["envelope"])
            presence_ms = monotonic_ms()
            brought = self.node.update_check(envelope, presence_ms)
            current = self.node.engine.state.require_config()
            bringing = Config.from_settings(brought, current.constellation_id)
            self.payouts.rotations_check(current, bringing)  # before any record of it
            await self.payouts.prepare_rotating(current, bringing)
            # On disk before the update can leave for the auditors (`begin_rising`).
            await database_sync_to_async(unfinal_settings_persist)(settings=brought)
            prev = self.node.engine.state.require_config()
            executed = self.node.update_settings(envelope, now_ms(), presence_ms)
            self.providers.rebuild()
            # The vaults answer to the old auditors: the rotations the quantum carries,
            # signed by them with their results for it, are submitted once it is final and
            # persisted.
            body = executed.quantum.body
            assert isinstance(body, ConstellationQuantum)
            self.payouts.rotation_begin(prev, executed.apex, body.rotations, self.node.keypair)
            try:
                await self.payouts.rotations_persist()
            except Exception:  # Still marked unwritten: the payout tick writes it first.
                logger.exception("persisting the vault rotation failed; will retry")
            reply["apex"] = executed.apex
            # Answered once final and persisted (with its settings record, quanta_persist):
            # a 200 then survives any crash of alpha, and no node shows undoable settings.
            self.reply_when_final(executed.apex, event["reply"], reply)
            return
        except (ConstellationError, ValueError) as error:
            _refused(reply, error)
        await asyncio.to_thread(node_status_publish, self.node)
        await self.channel_layer.send(event["reply"], reply)

    def batch_is_final(self, batch: Batch) -> bool:
        """Tells whether every quantum of the batch is final (it may be persisted)."""
        unfinalized = self.node.unfinalized
        return not unfinalized or min(unfinalized) > batch.apex

    # --- payment providers -------------------------------------------------------------------

    async def _poll_deposits_forever(self) -> None:
        while not self._stopping:
            await asyncio.sleep(self.DEPOSIT_POLL_S)
            try:
                await self.deposits.poll()
            except Exception:
                logger.exception("polling the payment providers failed; will retry")

    async def _payouts_forever(self) -> None:
        while not self._stopping:
            await asyncio.sleep(self.DEPOSIT_POLL_S)
            try:
                node = self.node
                if not self._rotations_recovered:
                    await self._rotations_recover()
                await self.payouts.tick(node.engine.state, node.status.state, self.persisted.apex)
            except Exception:
                logger.exception("paying out withdrawals failed; will retry")

    _rotations_recovered = False
    """Whether the latest settings update's rotations were looked at since this start."""

    async def _rotations_recover(self) -> None:
        """Once Ready after a start, once the latest settings update is persisted: registers
        again the vault rotations its quantum carries that no row kept and whose vault still
        answers to other signers (`PayoutDesk.rotations_recover`)."""
        node = self.node
        config = node.engine.state.config
        if node.status.state != NodeState.READY or config is None:
            return
        version = int(config.settings.version)
        found = await database_sync_to_async(settings_update_at)(version)
        if found is None:
            return  # Not persisted yet: looked at again next tick.
        self._rotations_recovered = True
        prev, signed = found
        if prev is None or signed is None:
            return  # The genesis, or an update below the snapshot this node joined from.
        body = signed.quantum.body
        if isinstance(body, ConstellationQuantum) and body.rotations:
            before = Config.from_settings(prev, config.constellation_id)
            apex = int(signed.quantum.apex)
            await self.payouts.rotations_recover(before, apex, body.rotations, node.keypair)


def _lost_its_genesis(node: AlphaNode, loaded: LoadedNode) -> bool:
    """Tells whether alpha has its genesis settings on record but no state (see `load`)."""
    genesis = loaded.genesis
    if node.engine.state.config is not None or genesis is None:
        return False
    if node.status.state == NodeState.FAILED or genesis.alpha != node.keypair.public_key:
        return False
    return len(genesis.auditors) > 1


def _replaces_alpha(data: bytes, node: AlphaNode) -> bool:
    """Tells whether the update (valid or not) names an alpha other than this one."""
    try:
        envelope = decode(ConstellationMessageEnvelope, data)
    except XdrError:
        return False
    return isinstance(envelope.message, ConstellationUpdate) and is_replacement(
        envelope, node.engine.state.config
    )


def _refused(reply: events.EngineAnswer, error: ConstellationError | ValueError) -> None:
    status = error.status if isinstance(error, ConstellationError) else StatusCode.BAD_REQUEST
    reply["status"] = int(status)
    reply["description"] = str(error)
