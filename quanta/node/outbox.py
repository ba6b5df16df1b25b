"""The engine's outgoing results: queued by the sequential engine, sent by a task of their own.

The engine must never wait on Redis between two quanta, so it only appends deliveries here.
`send_forever` drains the queue, in the original order, into few channel messages
(quanta/consumers/hub.py; their types in quanta/events.py): one `hub.replies` per gateway hub
with the answers to single connections and the credits for the request batches the engine
took, and one `hub.accounts` to every hub with the results for account keys. A finalization
is held back until its quantum is persisted (`Delivery.finals_persisted_min`): a client is
never told "final" about something a crash of alpha alone could still undo.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from quanta import events
from quanta.core.results import Delivery
from quanta.groups import GATEWAYS_GROUP

logger = logging.getLogger(__name__)

DELIVERY_BATCH_MAX = 500
"""Results per channel message, well under what channels_redis carries comfortably."""


LINGER_S = 0.005
"""How long the sender gathers results after a wake-up: the engine answers each batch of
requests and each auditor's signatures separately, and without it every one of those would
cost channel messages of its own."""


class ResultOutbox:
    """Results waiting to leave the engine, and how many final quanta are on disk."""

    def __init__(self) -> None:
        self._queue: list[Delivery] = []
        self._credits: dict[str, list[int]] = {}
        self._ready = asyncio.Event()
        self._finals_persisted = 0  # Final rows of this process persisted so far.

    @property
    def depth(self) -> int:
        """Returns how many deliveries wait to leave (the node's metrics show it)."""
        return len(self._queue)

    def put(self, deliveries: list[Delivery]) -> None:
        """Queues deliveries (never waits)."""
        if deliveries:
            self._queue.extend(deliveries)
            self._ready.set()

    def credit(self, hub: str, batch_id: int) -> None:
        """Queues the news that the engine took request batch `batch_id` of `hub`."""
        self._credits.setdefault(hub, []).append(batch_id)
        self._ready.set()

    def finals_persisted(self, count: int) -> None:
        """Records that `count` more final quanta are persisted; wakes the sender."""
        self._finals_persisted += count
        self._ready.set()

    def take_deliverable(self) -> list[Delivery]:
        """Returns (and removes) what may leave now, in order.

        Holds only finalizations whose quantum is not persisted yet. That keeps each request's
        acknowledgement ahead of its finalization (the acknowledgement was queued first and
        never waits), and finalizations become durable in the order they were made, so they
        stay in order among themselves."""
        durable = self._finals_persisted
        if all(d.finals_persisted_min <= durable for d in self._queue):
            deliverable, self._queue = self._queue, []
            return deliverable
        deliverable = [d for d in self._queue if d.finals_persisted_min <= durable]
        self._queue = [d for d in self._queue if d.finals_persisted_min > durable]
        return deliverable

    def take_credits(self) -> dict[str, list[int]]:
        """Returns (and forgets) the batch credits not yet sent, per hub."""
        credits, self._credits = self._credits, {}
        return credits

    async def send_forever(self, layer: Any) -> None:
        """Sends whatever may leave, each time something was queued or became durable."""
        while True:
            await self._ready.wait()
            # What the engine produces meanwhile leaves in the same messages (see LINGER_S).
            await asyncio.sleep(LINGER_S)
            self._ready.clear()
            deliveries = self.take_deliverable()
            credits = self.take_credits()
            try:
                await send_batched(layer, deliveries, credits)
            except Exception:
                logger.exception("delivering %d results failed", len(deliveries))


async def send_batched(
    layer: Any, deliveries: list[Delivery], credits: dict[str, list[int]] | None = None
) -> None:
    """Sends the deliveries in order: replies and credits to their hub, then account results
    to every hub. Credits first: once a client sees its acknowledgement, the hub already
    knows the engine took the request."""
    accounts: list[tuple[bytes, bytes, bool]] = []
    replies: dict[str, list[events.Pair]] = {hub: [] for hub in credits or {}}
    for delivery in deliveries:
        if delivery.reply_to is not None:
            hub, number = delivery.reply_to
            replies.setdefault(hub, []).append((number, delivery.message))
        else:
            assert delivery.public_key is not None
            accounts.append((delivery.public_key, delivery.message, delivery.signed))
    for hub, answers in replies.items():
        consumed = (credits or {}).get(hub, [])
        for start in range(0, max(1, len(answers)), DELIVERY_BATCH_MAX):
            chunk = answers[start : start + DELIVERY_BATCH_MAX]
            event = events.hub_replies(chunk, consumed)
            consumed = []
            await layer.send(hub, event)
    for start in range(0, len(accounts), DELIVERY_BATCH_MAX):
        messages = accounts[start : start + DELIVERY_BATCH_MAX]
        await layer.group_send(GATEWAYS_GROUP, events.hub_accounts(messages))
