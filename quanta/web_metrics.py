"""What one web process counts of its own for `/metrics`: 429 refusals by cause and how long
requests waited at the engine for their acknowledgement.

These happen in the web process (the gateway, its hub, the edge, the admin login), and the web
process is the one that answers a scrape, so they stay in its memory: plain counters, read by
`constellation_site.metrics` when scraped (the engine's figures come through Redis instead,
`quanta.node.figures`). A node runs one web process; with more than one, each must be
scraped on its own port (docs/deploy.md).
"""

from __future__ import annotations

from collections import Counter
from enum import StrEnum

from quanta.core.metrics import LatencyHistogram


class RefusalCause(StrEnum):
    """Why a request or connection was answered 429 (the `cause` label)."""

    ENGINE_BUSY = "engine_busy"
    ENGINE_CHANNEL_FULL = "engine_channel_full"
    KEY_CONNECTIONS = "key_connections"
    UNREGISTERED_PACE = "unregistered_pace"
    HISTORY_PACE = "history_pace"
    CLIENT_CONNECTIONS_PER_ADDRESS = "client_connections_per_address"
    HERALD_CONNECTIONS_PER_ADDRESS = "herald_connections_per_address"
    ADMIN_LOGIN = "admin_login"


REFUSALS: Counter[RefusalCause] = Counter()
"""429s this process answered, by cause (alpha's per-account limit is the engine's figure)."""

ACKNOWLEDGEMENT = LatencyHistogram()
"""Time from a request's batch leaving this process's hub to the engine's credit for it,
which comes with the batch's acknowledgements."""


def refused(cause: RefusalCause, times: int = 1) -> None:
    """Counts `times` refusals of `cause`."""
    REFUSALS[cause] += times


def acknowledged(latency_ms: int, requests: int) -> None:
    """Counts `requests` acknowledged `latency_ms` after they left for the engine."""
    ACKNOWLEDGEMENT.observe(latency_ms, requests)
