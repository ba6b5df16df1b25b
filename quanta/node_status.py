"""The node's state as published by the engine and read by the web process (in Redis).

The engine is the only writer; the info endpoint and the gateway read it. Redis is the
natural place: every process of a node already shares it under the node's key prefix.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field

from django.conf import settings

from quanta.core.xdr.schema import NodeState
from quanta.redis_client import node_redis


@dataclass(frozen=True, slots=True)
class PublishedStatus:
    """What the engine last said about itself."""

    state: str
    apex: int
    reason: str
    started_ms: int = 0
    vaults: dict[str, str] = field(default_factory=dict)
    """Provider id -> why its vault does not answer to the settings in force (the node signs
    nothing for it)."""


def _key() -> str:
    return f"{settings.REDIS_PREFIX}:node-status"


_STARTED_MS = time.time_ns() // 1_000_000


def status_publish(
    *, state: NodeState, apex: int, reason: str, vaults: dict[str, str] | None = None
) -> None:
    """Stores the node's state, apex and reason, when this engine process started, and its
    vault mismatches."""
    payload = PublishedStatus(state.name.capitalize(), apex, reason, _STARTED_MS, vaults or {})
    node_redis().set(_key(), json.dumps(asdict(payload)))


def status_read() -> PublishedStatus:
    """Returns the last published status (Undefined if the engine never ran)."""
    raw = node_redis().get(_key())
    if raw is None:
        return PublishedStatus("Undefined", 0, "engine not started")
    return PublishedStatus(**json.loads(raw))


def status_clear() -> None:
    """Forgets the published status (tests, fresh nodes)."""
    node_redis().delete(_key())
