"""Fixtures of the engine workers' in-process tests: a node of one process on an in-memory layer.

Each test gets Channels' in-memory channel layer (shared by the worker and the test, which
plays the hubs, the herald and the web views), a Redis prefix of its own for the published
node status and market feeds, and the real test databases (the node's and the local
ledger's). `RunningWorker` runs an engine worker as `runworker quanta` would, through
asgiref's `ApplicationCommunicator`: `start` loads the node and starts its loops, `send` hands
it one message of the `quanta` channel, `stop` cancels it and waits for its last flush.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from contextlib import suppress
from typing import Any

import pytest
from asgiref.testing import ApplicationCommunicator
from channels.layers import get_channel_layer

from quanta.groups import ENGINE_CHANNEL
from quanta.node.engine_worker import EngineWorker
from quanta.tests.db_threads import thread_connections_closed  # noqa: F401 (autouse)

TIMEOUT_S = 5.0
"""Bound of every wait in these tests (the worker answers in milliseconds)."""

IN_MEMORY_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}


@pytest.fixture
def node_settings(settings: Any) -> Iterator[Any]:
    """The in-memory channel layer and a fresh Redis prefix; set the node key and role."""
    settings.CHANNEL_LAYERS = IN_MEMORY_LAYERS
    settings.REDIS_PREFIX = f"node-test-{uuid.uuid4().hex[:12]}"
    settings.NODE_PARTICIPATION = "prime"
    settings.SNAPSHOT_INTERVAL_S = 3600  # Snapshot batches are not what these tests look at.
    yield settings
    from chronicler.publisher import snapshots_clear
    from quanta.node_status import status_clear

    status_clear()
    snapshots_clear()


@pytest.fixture
def layer(node_settings: Any) -> Any:
    """The channel layer the worker uses (the same in-memory instance)."""
    return get_channel_layer()


class RunningWorker:
    """An engine worker run as the `quanta` channel's application."""

    def __init__(self, worker: EngineWorker[Any]) -> None:
        self.worker = worker
        scope = {"type": "channel", "channel": ENGINE_CHANNEL}
        self.communicator = ApplicationCommunicator(worker, scope)

    def start(self) -> None:
        """Starts the worker (it loads the node before it takes the first message)."""
        assert not self.communicator.future.done()

    async def send(self, event: Any) -> None:
        """Hands the worker one message of the engine channel."""
        await self.communicator.send_input(event)

    async def stop(self) -> None:
        """Cancels the worker and waits until it has flushed for the last time."""
        future = self.communicator.future
        if future.done():
            if not future.cancelled():
                future.result()  # A worker that died says why.
            return
        future.cancel()
        with suppress(asyncio.CancelledError):
            async with asyncio.timeout(TIMEOUT_S):
                await future


async def receive(layer: Any, channel: str, wanted: Callable[[dict[str, Any]], bool]) -> Any:
    """Returns the first message on `channel` for which `wanted` holds (bounded wait); the
    others before it are dropped."""
    async with asyncio.timeout(TIMEOUT_S):
        while True:
            message = await layer.receive(channel)
            if wanted(message):
                return message


def of_type(kind: str) -> Callable[[dict[str, Any]], bool]:
    """Returns a test for `receive`: the message is of type `kind`."""
    return lambda message: message["type"] == kind
