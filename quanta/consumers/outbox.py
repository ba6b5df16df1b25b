"""The engine's outgoing results: queued by the sequential engine, sent by a task of their own.

The engine must never wait on Redis between two quanta, so it only appends deliveries here.
`send_forever` drains the queue into one channel message per destination (a reply channel or
an account's group) and drain, messages in their original order. A finalization is held back
until its quantum is persisted (`Delivery.finals_persisted_min`): a client is never told
"final" about something a crash of alpha alone could still undo.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from quanta.core.alpha import Delivery
from quanta.groups import account_group

logger = logging.getLogger(__name__)

DELIVERY_BATCH_MAX = 200
"""Results per channel message, well under what channels_redis carries comfortably."""


class ResultOutbox:
    """Results waiting to leave the engine, and how many final quanta are on disk."""

    def __init__(self) -> None:
        self._queue: list[Delivery] = []
        self._ready = asyncio.Event()
        self._finals_persisted = 0  # Final rows of this process persisted so far.

    def put(self, deliveries: list[Delivery]) -> None:
        """Queues deliveries (never waits)."""
        if deliveries:
            self._queue.extend(deliveries)
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
        deliverable = [d for d in self._queue if d.finals_persisted_min <= durable]
        self._queue = [d for d in self._queue if d.finals_persisted_min > durable]
        return deliverable

    async def send_forever(self, layer: Any) -> None:
        """Sends whatever may leave, each time something was queued or became durable."""
        while True:
            await self._ready.wait()
            self._ready.clear()
            deliveries = self.take_deliverable()
            try:
                await send_batched(layer, deliveries)
            except Exception:
                logger.exception("delivering %d results failed", len(deliveries))


async def send_batched(layer: Any, deliveries: list[Delivery]) -> None:
    """Sends one `quanta.results` message per destination (chunked), in the given order."""
    batches: dict[tuple[str, str], list[bytes]] = {}
    for delivery in deliveries:
        batches.setdefault(destination(delivery), []).append(delivery.message)
    for (kind, name), messages in batches.items():
        for start in range(0, len(messages), DELIVERY_BATCH_MAX):
            event = {
                "type": "quanta.results",
                "messages": messages[start : start + DELIVERY_BATCH_MAX],
            }
            if kind == "channel":
                await layer.send(name, event)
            else:
                await layer.group_send(name, event)


def destination(delivery: Delivery) -> tuple[str, str]:
    """Returns where a delivery goes: ("channel", reply channel) or ("group", account group)."""
    if delivery.reply_to is not None:
        return ("channel", delivery.reply_to)
    assert delivery.public_key is not None
    return ("group", account_group(delivery.public_key))
