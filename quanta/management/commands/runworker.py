"""`runworker`, with the application started as soon as the worker starts.

Channels' worker creates a channel's application instance only when the first message arrives.
The engine must not wait for one: a restarted engine has to load its snapshot, publish its
state and (alpha) start recovering from the auditors before any client writes to it, because
clients only write to a node that says it is Ready. It also skips Django's system checks at start
(see `Command`); everything else is channels' own command.
"""

from __future__ import annotations

from typing import Any

from channels.management.commands.runworker import Command as ChannelsRunworker
from channels.worker import Worker


class EagerWorker(Worker):  # type: ignore[misc]
    """A channels Worker that starts each channel's application instance immediately."""

    async def listener(self, channel: str) -> Any:
        """Starts the channel's application, then relays its messages as channels does."""
        self.get_or_create_application_instance(channel, {"type": "channel", "channel": channel})
        return await super().listener(channel)


class Command(ChannelsRunworker):  # type: ignore[misc]
    """Runs a worker for the named channels, starting their applications at once."""

    worker_class = EagerWorker
    # Django's system checks import and walk the URL configuration: a quarter of the engine's
    # start-up CPU, paid again at every restart for the same code. `migrate`, which every
    # install and upgrade runs first (docs/deploy.md), runs them; so does `manage.py check`.
    requires_system_checks: list[str] = []
