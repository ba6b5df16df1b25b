"""Limits at the edge of the web process, applied before a WebSocket message is buffered.

Why here: the gateway refuses a client frame above 64 KiB and the herald a batch above
16 MiB, but only after daphne has buffered the whole message; daphne's own limit is one size
for every route (1 MiB by default). The server (`constellation_site.server`) asks `route_of`
for the route's message limit when a handshake arrives, so a frame above it is refused while
it streams in (close 1009), and asks `ConnectionCaps` whether the peer's address may open one
more connection on that route (refused with HTTP 429 otherwise). The herald's limit is large
(its batches), so its per-address cap is small: auditors connect from their own machines,
one link each. Pure: no Django, no Twisted.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from quanta.core.xdr.schema import Limits

HERALD_PATH = "/ws/herald/"
ENVELOPE_SLACK_BYTES = 1024
"""Room above a payload limit for the envelope around it (signature, XDR framing)."""


@dataclass(frozen=True, slots=True)
class Route:
    """One WebSocket route's name, largest message and connections allowed per address."""

    name: str
    message_bytes_max: int
    per_address_max: int


def routes(per_address_max: int, herald_per_address_max: int) -> tuple[Route, Route]:
    """Returns the client route (gateway, chronicler, anything else) and the herald route."""
    client = Route("client", Limits.ENVELOPE_BYTES_MAX + ENVELOPE_SLACK_BYTES, per_address_max)
    herald = Route("herald", Limits.BATCH_BYTES_MAX + ENVELOPE_SLACK_BYTES, herald_per_address_max)
    return client, herald


def route_of(path: str, client: Route, herald: Route) -> Route:
    """Returns the route a handshake's path belongs to."""
    return herald if path.rstrip("/") == HERALD_PATH.rstrip("/") else client


class ConnectionCaps:
    """Counts open WebSocket connections per (route, address) of one web process."""

    def __init__(self) -> None:
        """Starts with no connection."""
        self.open: Counter[tuple[str, str]] = Counter()

    def admit(self, route: Route, address: str) -> bool:
        """Counts one more connection if the address has room on the route; tells whether."""
        key = (route.name, address)
        if self.open[key] >= route.per_address_max:
            return False
        self.open[key] += 1
        return True

    def release(self, route: Route, address: str) -> None:
        """Forgets one connection of the address on the route."""
        key = (route.name, address)
        self.open[key] -= 1
        if self.open[key] <= 0:
            del self.open[key]


PROCESS_CAPS = ConnectionCaps()
"""The web process's one count (`constellation_site.server` admits through it; `/metrics`
reads it: the server runs as `__main__`, so the count lives here, in a module both import)."""
