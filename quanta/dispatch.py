"""Message dispatch for our consumers, without Channels' per-message database hop.

Channels' `AsyncConsumer.dispatch` runs `close_old_connections` through a thread-sensitive
`sync_to_async` before every message. Thread-sensitive calls share one executor thread, so in
the engine each incoming message waited behind whatever database transaction the flush loop
was running there, and every gateway frame paid a thread round trip. Our consumers touch the
database only through `database_sync_to_async`, which closes stale connections around each
call itself, so the hop protects nothing here.
"""

from __future__ import annotations

from typing import Any

from channels.consumer import get_handler_name


class DirectDispatchMixin:
    """Calls the handler of a message directly (put it before the Channels consumer base)."""

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Finds the handler for the message type and awaits it."""
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)
