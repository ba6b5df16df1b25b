"""Message dispatch for our consumers, without Channels' per-message database hop.

Channels' `AsyncConsumer.dispatch` runs `close_old_connections` through a thread-sensitive
`sync_to_async` before every message. Thread-sensitive calls share one executor thread, so in
the engine each incoming message waited behind whatever database transaction the flush loop
was running there, and every gateway frame paid a thread round trip. Our consumers touch the
database only through `database_sync_to_async`, which closes stale connections around each
call itself, so the hop protects nothing here.

Channels' consumer loop (`await_many_dispatch`) also wraps every receive in a new task and an
`asyncio.wait`, even for a consumer with a single source. A consumer without a channel layer
(the gateway: its web process's hub holds the channel) reads its one source directly instead:
that loop ran once per client frame.
"""

from __future__ import annotations

from typing import Any

from channels.consumer import get_handler_name
from channels.exceptions import StopConsumer
from channels.layers import get_channel_layer


class DirectDispatchMixin:
    """Calls the handler of a message directly (put it before the Channels consumer base)."""

    channel_layer_alias: str
    channel_layer: Any
    """Set by Channels (a layer), or None here for a consumer without one."""

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Runs the consumer: Channels' loop when it has a channel layer to read as well,
        else one await per message from its only source."""
        if get_channel_layer(self.channel_layer_alias) is not None:
            await super().__call__(scope, receive, send)  # type: ignore[misc]
            return
        self.scope = scope
        self.channel_layer = None
        self.base_send = send
        try:
            while True:
                await self.dispatch(await receive())
        except StopConsumer:
            pass  # the connection ended: the consumer's normal exit, as in Channels

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Finds the handler for the message type and awaits it."""
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)
