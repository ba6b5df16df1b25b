"""`AlphaHerald`: what alpha's engine worker does with its auditors (through the herald).

It journals each quantum before it leaves (`journal`, group commit: a restarted alpha keeps
what it sent), streams each quantum to the auditors and heartbeats them (an empty QuantaBatch
carrying its apex, `HEARTBEAT_S` after the last batch), so an idle auditor knows both that
alpha lives and that it is in step; it sends again, once a heartbeat period, what stayed
unfinal a whole period (its signatures may have been lost in flight). It takes the auditors'
signatures (a withdrawal's transaction signature goes to the payout desk), their state reports
and their connections' comings and goings (`AlphaNode.review_finality` tells from them whether
a majority can sign), answers their catchups (from below the oldest unfinal quantum: what was
lost is asked for again) and, while Rising, takes what they hold above its apex. Signatures
that arrived after finality are checked here, in a thread, at each flush.
"""

from __future__ import annotations

import asyncio
import logging
import time

from channels.db import database_sync_to_async

from payments.payouts import PayoutDesk
from quanta import events
from quanta.core.alpha import AlphaNode, PendingQuantum
from quanta.core.evidence import EvidenceItem, late_signature_failures
from quanta.core.keys import encode_public_key
from quanta.core.rate_limits import RateLimiter
from quanta.core.results import Delivery
from quanta.core.xdr.codec import decode, encode
from quanta.core.xdr.schema import (
    MESSAGE,
    CatchupQuantaBatch,
    MessageEnvelope,
    NodeState,
    QuantaBatch,
    ResultsBatch,
    SignedQuantum,
)
from quanta.groups import HERALD_GROUP
from quanta.node.engine_worker import EngineWorker, monotonic_ms
from quanta.node.figures import NodeReading, wall_ms
from quanta.node.persistence import journal_persist, unfinal_settings_forget
from quanta.selectors import quanta_signed_after, quanta_signed_at

logger = logging.getLogger(__name__)


class AlphaHerald(EngineWorker[AlphaNode]):
    """The auditor-facing handlers and loop of alpha's engine worker."""

    CATCHUP_BATCH = 500
    HEARTBEAT_S = 1.0
    ROLE = "alpha"

    _last_streamed = 0.0
    _limiter_seen: RateLimiter | None = None
    _last_resend = 0.0  # when unfinal quanta were last looked at for sending again
    _journaled_apex = 0  # the highest apex on alpha's journal: nothing above it has left alpha
    _journal_lock: asyncio.Lock | None = None

    payouts: PayoutDesk
    """Set by the worker's `load`, with the node."""

    # --- the auditors ------------------------------------------------------------------------

    async def quanta_signatures(self, event: events.QuantaSignatures) -> None:
        """Adds the signatures an auditor returned (its frame kept for any evidence)."""
        frame = event["frame"]
        batch = decode(MessageEnvelope, frame).message
        assert isinstance(batch, ResultsBatch), type(batch)
        self.node.auditor_heard(event["auditor_key"], monotonic_ms())
        deliveries: list[Delivery] = []
        now_ms = wall_ms()
        for result in batch.results:
            # A vault rotation's signature proves itself (an old signer's key over the
            # rotation): taken even from an auditor the update removed, whose result carries
            # its index in the settings before it (it signs nothing after the update).
            for rotation_signature in result.rotation_signatures:
                self.payouts.rotation_offer(result.apex, rotation_signature)
            index = result.signature.auditor_index
            if self.node.signer_key(result.apex, index) != event["auditor_key"]:
                continue  # An auditor may only speak for itself (its key at that quantum).
            if result.tx_signature is not None:
                self.payouts.offer(result.apex, result.tx_signature)
            waiting = self.node.unfinalized.get(result.apex)
            deliveries += self.node.add_signature(
                result.apex, result.signature.auditor_index, result.signature.signature, frame
            )
            self._measure_signature(event["auditor_key"], result.apex, waiting, now_ms)
        self.deliver(deliveries)

    def _measure_signature(
        self, auditor: bytes, apex: int, waiting: PendingQuantum | None, now_ms: int
    ) -> None:
        """Counts an auditor's signature, and the quantum's finality if it made it final:
        latencies from the quantum's timestamp (alpha's clock at execution) to now."""
        if waiting is None:  # Final before this signature came: only its apex is news.
            self.figures.signed(auditor, apex, None)
            return
        latency_ms = now_ms - int(waiting.executed.quantum.timestamp)
        self.figures.signed(auditor, apex, latency_ms)
        if apex not in self.node.unfinalized:
            self.figures.finalized(latency_ms)

    def _auditors_heard(self) -> tuple[bytes, ...]:
        """Returns the auditors connected and heard from within the presence bound (a link
        cut without a close stays "connected" until the herald's pings give up)."""
        presence, now = self.node.presence, monotonic_ms()
        return tuple(
            key for key, seen in presence.seen.items() if now - seen.heard_ms <= presence.silence_ms
        )

    def reading(self) -> NodeReading:
        """Returns alpha's figures: finality, its auditors, the per-account refusals."""
        node = self.node
        apex = node.engine.state.apex
        unfinalized = node.unfinalized
        limiter = node.rate_limiter
        if limiter is not self._limiter_seen:
            # New settings, new limiter: keep the count of the old one in the total.
            if self._limiter_seen is not None:
                self.figures.rate_limited_before += self._limiter_seen.refused_count
            self._limiter_seen = limiter
        return NodeReading(
            state=node.status.state,
            reason=node.status.reason,
            apex=apex,
            finalized_apex=min(unfinalized) - 1 if unfinalized else apex,
            finalized_total=node.finalized_count,
            unfinalized=len(unfinalized),
            outbox_depth=self.outbox.depth,
            payouts_pending=len(node.engine.state.withdrawals),
            rate_limited=0 if limiter is None else limiter.refused_count,
            alpha_apex=apex,
            auditors_connected=self._auditors_heard(),
        )

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
        await self.journal(alpha.outgoing)  # What the catchup reads from memory may be unsent.
        cursor = alpha.catchup_start(int(event["cursor"]))
        if cursor >= alpha.engine.state.apex:
            # Nothing to send, but the auditor learns alpha's apex: it is in step, Ready.
            batch = events.herald_quanta(self._quanta_batch([]))
            await self.channel_layer.send(event["reply"], batch)
        while cursor < alpha.engine.state.apex:
            quanta = alpha.recent_after(cursor)
            if quanta is not None:
                quanta = [q for q in quanta if q.quantum.apex <= self._journaled_apex]
            else:
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
        before = self._settings_version()
        self.node.rising_offer(event["auditor_key"], batch.quanta, not batch.has_more)
        if self._settings_version() != before:
            await self.settings_recovered()
        forgotten = self.node.take_unfinal_forgotten()
        if forgotten:
            await database_sync_to_async(unfinal_settings_forget)(settings=forgotten)
        await self.publish_status()

    def _settings_version(self) -> int:
        config = self.node.engine.state.config
        return 0 if config is None else int(config.settings.version)

    async def settings_recovered(self) -> None:
        """Follows settings that recovery re-applied (a genesis, an update): the worker
        rebuilds what it derives from them."""

    async def quanta_batch(self, event: events.QuantaBatch) -> None:
        """Ignores a herald frame meant for an auditor's engine."""

    async def stream_quanta(self) -> None:
        """Streams the quanta executed since the last flush to every auditor, or a heartbeat
        (an empty batch) once nothing went out for `HEARTBEAT_S`."""
        quanta = self.node.take_outgoing()
        try:
            await self.journal(quanta)
        except Exception:
            self.node.outgoing[:0] = quanta  # Streamed at the next tick, once journaled.
            raise
        now = time.monotonic()
        if quanta:
            self._last_streamed = now
        for start in range(0, len(quanta), self.CATCHUP_BATCH):
            chunk = quanta[start : start + self.CATCHUP_BATCH]
            batch = events.herald_quanta(self._quanta_batch(chunk))
            await self.channel_layer.group_send(HERALD_GROUP, batch)
        if now - self._last_resend >= self.HEARTBEAT_S:
            self._last_resend = now
            again = self.node.unfinal_to_resend() + await self._withdrawals_to_sign_again()
            for start in range(0, len(again), self.CATCHUP_BATCH):
                chunk = again[start : start + self.CATCHUP_BATCH]
                await self.channel_layer.group_send(
                    HERALD_GROUP, events.herald_quanta(self._quanta_batch(chunk))
                )
        if now - self._last_streamed >= self.HEARTBEAT_S and self._alive():
            self._last_streamed = now
            heartbeat = events.herald_quanta(self._quanta_batch([]))
            await self.channel_layer.group_send(HERALD_GROUP, heartbeat)

    async def journal(self, quanta: list[SignedQuantum]) -> None:
        """Group commit: writes the quanta not yet journaled to alpha's journal, in one
        transaction, before any of them leaves (a restarted alpha keeps them, so it never
        executes another quantum where an auditor may hold one of these). The lock keeps
        `_journaled_apex` at what is committed while a stream and a catchup both write."""
        if self._journal_lock is None:
            self._journal_lock = asyncio.Lock()
        async with self._journal_lock:
            fresh = [q for q in quanta if q.quantum.apex > self._journaled_apex]
            if fresh:
                await database_sync_to_async(journal_persist)(quanta=fresh)
                self._journaled_apex = max(q.quantum.apex for q in fresh)

    async def _withdrawals_to_sign_again(self) -> list[SignedQuantum]:
        """Returns the withdrawal and settings quanta whose transaction or vault rotation
        signatures the payout desk lacks (a restart lost them): an auditor that gets a
        quantum it executed signs it again, its transaction and rotations included
        (`AuditorNode._sign_again`)."""
        if self.node.status.state != NodeState.READY:
            return []
        wanted = self.payouts.signatures_wanted(self.node.engine.state, self.persisted.apex)
        if not wanted:
            return []
        asked = set(wanted)
        in_memory = {q.quantum.apex: q for q in self.node.recent if q.quantum.apex in asked}
        missing = [apex for apex in wanted if apex not in in_memory]
        if missing:
            for signed in await database_sync_to_async(quanta_signed_at)(missing):
                in_memory[signed.quantum.apex] = signed
        return [in_memory[apex] for apex in sorted(in_memory)]

    def _alive(self) -> bool:
        # No heartbeat while Rising or Failed: the auditors must not take alpha as in step.
        node = self.node
        alive = node.status.state in (NodeState.READY, NodeState.RUNNING)
        return alive and node.engine.state.config is not None

    def _quanta_batch(self, quanta: list[SignedQuantum]) -> bytes:
        return encode(QuantaBatch(0, tuple(quanta), self.node.engine.state.apex), MESSAGE)
