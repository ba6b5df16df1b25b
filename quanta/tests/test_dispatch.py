"""DirectDispatchMixin: the consumer loop our WebSocket consumers run.

Goal: a consumer without a channel layer (the gateway) handles its messages in order, one
await each, and ends on StopConsumer as Channels' loop does; a consumer with a channel layer
still runs Channels' loop, so it also hears its channel.
Method: real Channels consumers on an asyncio queue standing in for daphne's ASGI receive.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from channels.consumer import AsyncConsumer
from channels.exceptions import StopConsumer

from quanta.dispatch import DirectDispatchMixin


class Recording(DirectDispatchMixin, AsyncConsumer):
    """Records each `test.message` and stops on `test.stop`."""

    channel_layer_alias = "none: not configured"

    def __init__(self) -> None:
        self.seen: list[int] = []

    async def test_message(self, message: dict[str, Any]) -> None:
        self.seen.append(message["n"])

    async def test_stop(self, message: dict[str, Any]) -> None:
        raise StopConsumer


async def test_a_consumer_without_a_channel_layer_handles_its_messages_in_order() -> None:
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    for n in range(5):
        queue.put_nowait({"type": "test.message", "n": n})
    queue.put_nowait({"type": "test.stop"})
    consumer = Recording()
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await asyncio.wait_for(consumer({"type": "test"}, queue.get, send), 5)
    assert consumer.seen == [0, 1, 2, 3, 4]
    assert consumer.channel_layer is None
    await consumer.send({"type": "out"})
    assert sent == [{"type": "out"}]


async def test_an_unknown_message_type_still_raises() -> None:
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    queue.put_nowait({"type": "test.unknown"})
    with pytest.raises(ValueError, match="test.unknown"):
        await asyncio.wait_for(Recording()({"type": "test"}, queue.get, queue.put), 5)


async def test_a_consumer_with_a_channel_layer_also_hears_its_channel(settings: Any) -> None:
    settings.CHANNEL_LAYERS = {"memory": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

    class Listening(Recording):
        channel_layer_alias = "memory"

        def __init__(self) -> None:
            super().__init__()
            self.ready, self.heard = asyncio.Event(), asyncio.Event()

        async def test_ready(self, message: dict[str, Any]) -> None:
            self.ready.set()  # dispatching anything means the consumer's channel exists

        async def test_message(self, message: dict[str, Any]) -> None:
            await super().test_message(message)
            self.heard.set()

    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    queue.put_nowait({"type": "test.ready"})
    consumer = Listening()
    running = asyncio.create_task(consumer({"type": "test"}, queue.get, queue.put))
    try:
        await asyncio.wait_for(consumer.ready.wait(), 5)
        await consumer.channel_layer.send(consumer.channel_name, {"type": "test.message", "n": 7})
        await asyncio.wait_for(consumer.heard.wait(), 5)
        assert consumer.seen == [7]
    finally:
        queue.put_nowait({"type": "test.stop"})
        await asyncio.wait_for(running, 5)
