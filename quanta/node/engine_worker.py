"""`EngineWorker` (`runworker quanta`): what the engine of every node does, whatever its role.

One instance handles every message of the `quanta` channel, one at a time (`AlphaWorker`
and `AuditorWorker` add their role's handlers; `quanta.routing` picks the one
CONSTELLATION_ROLE names). This base loads the node, runs the flush loop (final quanta and
snapshot batches to the database, evidence records, status and market data published), sends
results through `ResultOutbox`, and answers the requests that wait until their quantum is
final. Each tick of that loop also lets the role review its peers (`review`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Coroutine
from typing import Any

from channels.consumer import AsyncConsumer
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings

from chronicler.publisher import MarketPublisher
from quanta import events, gc_policy
from quanta.core.durable import PersistedPrefix
from quanta.core.evidence import EvidenceItem
from quanta.core.keys import encode_public_key
from quanta.core.pending import Batch
from quanta.core.results import Delivery
from quanta.core.xdr.schema import NodeState
from quanta.dispatch import DirectDispatchMixin
from quanta.events import EngineAnswer
from quanta.node.figures import EngineFigures, NodeReading, figures_json, figures_publish
from quanta.node.loader import RunningNode, node_status_publish
from quanta.node.outbox import ResultOutbox
from quanta.node.own_thread import OwnThread
from quanta.node.persistence import (
    attestations_persist,
    batch_persist,
    evidence_persist,
    quanta_persist,
)
from quanta.node.providers import NodeProviders
from quanta.node_identity import history_kept

logger = logging.getLogger(__name__)

Task = Coroutine[Any, Any, None]

TEST_HOLD_FLUSH_ENV = "CONSTELLATION_TEST_HOLD_FLUSH"
"""TEST-ONLY FAULT HOOK, inert unless this variable is set (never in production): the path of
a file; while that file exists, the node's flush persists nothing (no quanta, snapshot
batches or evidence; what is final waits in memory), so a test can hold a quantum final but
not on disk for as long as it likes and then kill -9 the engine in that window
(tests/cluster/test_payout_durability.py). Removing the file resumes persistence."""

_test_hold_flush = os.environ.get(TEST_HOLD_FLUSH_ENV)


def _test_flush_held() -> bool:
    """Tells whether the test-only hook above holds persistence now (False unless set)."""
    return _test_hold_flush is not None and os.path.exists(_test_hold_flush)


def next_tick(last: float, now: float, interval: float, rest_min: float) -> float:
    """Returns when a loop ticking every `interval` from the start of its `last` tick ticks
    next, seen at `now`: never sooner than `rest_min` from now (a tick that ran over does not
    start the next at once, nor try to catch up on the ticks it missed)."""
    return max(last + interval, now + rest_min)


def monotonic_ms() -> int:
    """Returns the monotonic clock in ms: what the cores' liveness bounds are measured in."""
    return time.monotonic_ns() // 1_000_000


class EngineWorker[N: RunningNode](DirectDispatchMixin, AsyncConsumer):  # type: ignore[misc]
    """The engine worker of a node `N`: loads it, persists and publishes what it produces."""

    FLUSH_INTERVAL_S = 0.05
    FLUSH_REST_MIN_S = 0.01
    """The least the flush loop sleeps between ticks, however long the last one took."""
    PUBLISH_INTERVAL_S = 0.2
    FIGURES_INTERVAL_S = 0.5
    """How often the figures for `/metrics` are published (a scrape is every few seconds)."""
    ROLE = "node"
    STOP_GRACE_S = 10.0
    """How long a stopping worker waits for its loops to end before its last flush."""

    node: N
    """Set by `start` (loaded from the database) before the first message is handled."""

    def __init__(self) -> None:
        """Prepares everything that does not need the database; `start` loads the node."""
        super().__init__()
        self.outbox = ResultOutbox()
        # Public market data (chronicler): none on a node that keeps no history (auditor
        # participation).
        self.market_data: MarketPublisher | None = None
        # Auditors execute batches in a thread (their providers read the ledger to check
        # alpha's deposit notifications); the lock keeps snapshot cuts out of that window.
        self._state_lock = asyncio.Lock()
        self._flush_lock = asyncio.Lock()
        self._stopping = False
        self._batches: list[Batch] = []
        # Replies owed once a quantum is final and persisted (apex -> reply channel, reply).
        self._replies_when_final: dict[int, tuple[str, EngineAnswer]] = {}
        self._last_cut = time.monotonic()
        self._last_publish = 0.0
        self._published: tuple[NodeState, int] = (NodeState.UNDEFINED, 0)
        self._published_vaults: dict[str, str] = {}
        # How far the rows this node handed out are on disk (alpha: its final quanta), known
        # from the flush loop itself, so readers (the payout tick) need no query.
        self.persisted = PersistedPrefix(0)
        self.figures = EngineFigures(self.ROLE)
        self._last_figures = 0.0
        self._own_threads: list[OwnThread] = []

    def own_thread(self, name: str) -> OwnThread:
        """Returns a thread of its own for database calls that must not wait behind the flush
        loop's persistence (quanta.node.own_thread); it ends with the worker."""
        thread = OwnThread(name)
        self._own_threads.append(thread)
        return thread

    def load(self) -> N:
        """Builds the node from the database (runs in a thread)."""
        raise NotImplementedError

    def background(self) -> list[Task]:
        """Returns the loops that run beside the message handlers."""
        return [self._flush_forever(), self.outbox.send_forever(get_channel_layer())]

    async def started(self) -> None:
        """Tells the other processes this engine started (once its loops run)."""

    async def stream_quanta(self) -> None:
        """Sends what must leave before each flush (alpha: new quanta to the auditors)."""

    def review(self) -> None:
        """Reviews the node's peers once per tick (alpha: can a majority sign? an auditor: is
        alpha still there?); a change of state is published by the same tick."""

    async def collect_evidence(self) -> list[EvidenceItem]:
        """Returns the evidence the node gathered since the last flush."""
        return self.node.take_evidence()

    def batch_is_final(self, batch: Batch) -> bool:
        """Tells whether every quantum of a snapshot batch is final (alpha waits for it)."""
        return True

    def reading(self) -> NodeReading:
        """Returns what the role's node shows of itself for the figures."""
        node = self.node
        apex = node.engine.state.apex
        return NodeReading(
            state=node.status.state,
            reason=node.status.reason,
            apex=apex,
            finalized_apex=self.persisted.apex,
            finalized_total=apex,
            unfinalized=0,
            outbox_depth=self.outbox.depth,
            payouts_pending=len(node.engine.state.withdrawals),
            rate_limited=0,
            alpha_apex=apex,
            auditors_connected=(),
        )

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Loads the node, starts the loops, then handles messages until stopped."""
        await self.start()
        tasks = [asyncio.create_task(loop) for loop in self.background()]
        await self.started()
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self._stop_loops(tasks)
            await self._flush(force=True)
            for thread in self._own_threads:
                thread.close()

    async def _stop_loops(self, tasks: list[asyncio.Task[None]]) -> None:
        """Stops the background loops and waits for them before the last flush, so that no
        loop still holds rows it took (or takes more) while the last flush runs; `_stopping`
        ends each loop at its next turn should a cancellation not reach it."""
        self._stopping = True
        for task in tasks:
            task.cancel()
        _, running = await asyncio.wait(tasks, timeout=self.STOP_GRACE_S)
        if running:
            logger.warning("%d background loops still running at stop", len(running))

    async def start(self) -> None:
        """Loads the node and publishes its state and (history kept) the market data."""
        self.node = await database_sync_to_async(self.load)()
        self.node.engine.attest_every = settings.STATE_ATTEST_EVERY
        # What `load` replayed is on disk; Rising adds nothing here until it is flushed.
        self.persisted = PersistedPrefix(self.node.engine.state.apex)
        await asyncio.to_thread(node_status_publish, self.node)
        self._last_cut = time.monotonic()
        if history_kept():
            # Rebuilt from the persisted trades, then published.
            layer = get_channel_layer()
            self.market_data = await database_sync_to_async(MarketPublisher.load)(layer)
            await self.market_data.publish_all(self.node.engine.state.exchange)
        # The state is loaded: the collector need not walk it again (gc_policy explains).
        gc_policy.settle()
        self._published = (self.node.status.state, self.node.engine.state.apex)

    def deliver(self, deliveries: list[Delivery]) -> None:
        """Queues results for the outbox's sender: the sequential engine never waits on Redis."""
        self.outbox.put(deliveries)

    async def quanta_account_of(self, event: events.QuantaAccountOf) -> None:
        """Answers a gateway's handshake with the key's account in memory: a key registered
        since the last snapshot has no row yet, and a client told "no account" would look
        for the quantum creating it and ignore every result of the account it has."""
        account = self.node.engine.state.accounts.get_by_key(event["public_key"])
        answer = events.account_of(0 if account is None else int(account.id))
        await self.channel_layer.send(event["reply"], answer)

    def reply_when_final(self, apex: int, channel: str, reply: EngineAnswer) -> None:
        """Answers `channel` once quantum `apex` is final and persisted."""
        self._replies_when_final[apex] = (channel, reply)

    async def _flush_forever(self) -> None:
        # Ticks FLUSH_INTERVAL_S after the start of the last tick, not after its end: a quantum
        # waits half an interval on average to be streamed and as much to be persisted, and a
        # fixed sleep after each tick's own work (a journal commit, a COPY) added that work to
        # both waits. A tick that ran over still rests FLUSH_REST_MIN_S.
        tick = time.monotonic()
        while not self._stopping:
            now = time.monotonic()
            tick = next_tick(tick, now, self.FLUSH_INTERVAL_S, self.FLUSH_REST_MIN_S)
            await asyncio.sleep(tick - now)
            try:
                self.review()
                await self.stream_quanta()
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
        await self.publish_status()
        if now - self._last_figures >= self.FIGURES_INTERVAL_S:
            self._last_figures = now
            payload = figures_json(self.figures, self.reading(), monotonic_ms())
            await asyncio.to_thread(figures_publish, payload)

    async def _flush(self, *, force: bool) -> None:
        # The flush loop and handlers (init) both flush; interleaved at their awaits they
        # would persist one snapshot batch twice and then drop the next one.
        async with self._flush_lock:
            await self._flush_locked(force=force)

    async def _flush_locked(self, *, force: bool) -> None:
        if _test_flush_held():
            return
        rows = self.node.take_final_rows()
        if rows:
            try:
                await database_sync_to_async(quanta_persist)(rows=rows)
            except BaseException:
                # Cancelled too (a stopping worker): asgiref then stops waiting for the call,
                # which may or may not have written them. The last flush writes them again
                # (quanta_persist skips rows on record), instead of dropping them.
                self.node.final_rows[:0] = rows
                raise
            self.outbox.finals_persisted(len(rows))
            self.persisted.persisted(row.apex for row in rows)
            await self._reply_final()
            if self.market_data is not None:
                self.market_data.fold_rows(rows)
        await self._persist_evidence()
        await self._persist_attestations()
        elapsed = time.monotonic() - self._last_cut
        pending = self.node.pending
        if pending.is_due(elapsed) or (force and pending.count):
            async with self._state_lock:
                self._batches.append(pending.cut(self.node.engine.state))
            self._last_cut = time.monotonic()
        while self._batches and self.batch_is_final(self._batches[0]):
            await database_sync_to_async(batch_persist)(batch=self._batches[0])
            self._batches.pop(0)
            await asyncio.to_thread(node_status_publish, self.node)

    async def _persist_evidence(self) -> None:
        evidence = await self.collect_evidence()
        if not evidence:
            return
        for item in evidence:
            logger.error("evidence against %s: %s", encode_public_key(item.signer), item.detail)
        try:
            await database_sync_to_async(evidence_persist)(items=evidence)
        except BaseException:  # Cancelled too (see `_flush_locked`): a duplicate at worst.
            self.node.evidence[:0] = evidence
            raise

    async def _persist_attestations(self) -> None:
        """Signs and keeps the state hashes the engine recorded at attested apexes, if this
        node is one of the auditors in force (only theirs count for a joining node)."""
        engine = self.node.engine
        if not engine.attested:
            return
        # The list is swapped, not cleared: an auditor's engine appends from its thread.
        attested, engine.attested = engine.attested, []
        config = engine.state.config
        key = self.node.keypair.public_key
        if config is None or all(a.public_key != key for a in config.settings.auditors):
            return
        await database_sync_to_async(attestations_persist)(
            keypair=self.node.keypair, constellation_id=config.constellation_id, attested=attested
        )

    async def _reply_final(self) -> None:
        """Answers those waiting for a quantum once every quantum up to it is final and
        persisted: the answer to an update tells the operator the auditors it removed may go,
        and until the quanta below it are final only those can sign them."""
        done = [apex for apex in self._replies_when_final if apex <= self.persisted.apex]
        for apex in done:
            channel, reply = self._replies_when_final.pop(apex)
            await self.channel_layer.send(channel, reply)

    async def publish_status(self) -> None:
        """Publishes the node's state and apex, and its vaults that do not answer to the
        settings in force, if any of them changed since last time."""
        current = (self.node.status.state, self.node.engine.state.apex)
        providers: NodeProviders | None = getattr(self, "providers", None)
        vaults = {} if providers is None else providers.mismatches()
        if current != self._published or vaults != self._published_vaults:
            self._published = current
            self._published_vaults = vaults
            await asyncio.to_thread(node_status_publish, self.node, vaults)
