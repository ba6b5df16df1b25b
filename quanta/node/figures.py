"""`EngineFigures`: what the engine worker measures of its node, published to the node's Redis
for the web process's `/metrics` and status page.

Why Redis and not prometheus_client's multiprocess mode: a node's processes already share its
Redis under the node's prefix (the status key, `quanta.node_status`); multiprocess mode needs
a directory shared by the processes, wiped at each restart, and files per process id that
outlive crashed engines. Here the engine, the one writer, replaces one JSON value a few times
a second (`publish`, from the flush loop's publication tick: no extra Redis round trips on the
hot path), and a scrape reads it once. A scrape also sees how old the figures are
(`published_ms`), so a stalled engine shows as stale, not as frozen numbers.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

from django.conf import settings

from quanta.core.keys import encode_public_key
from quanta.core.metrics import AuditorFigures, HistogramWindow, LatencyHistogram, RateWindow
from quanta.core.xdr.schema import NodeState
from quanta.redis_client import node_redis

FIGURES_TTL_S = 60
"""Figures an engine stopped publishing vanish after this long (the scrape says so)."""


def figures_key() -> str:
    """Returns the node's Redis key of the engine figures."""
    return f"{settings.REDIS_PREFIX}:engine-figures"


def wall_ms() -> int:
    """Returns the wall clock in ms (what quantum timestamps are in)."""
    return time.time_ns() // 1_000_000


@dataclass(slots=True)
class LastError:
    """The last reason the node gave for not being Ready, and when (wall ms)."""

    reason: str = ""
    at_ms: int = 0


@dataclass
class EngineFigures:
    """The engine's own measurements, kept in memory between publications."""

    role: str
    finality: LatencyHistogram = field(default_factory=LatencyHistogram)
    auditors: dict[bytes, AuditorFigures] = field(default_factory=dict)
    rate: RateWindow = field(default_factory=RateWindow)
    finality_window: HistogramWindow = field(default_factory=HistogramWindow)
    last_error: LastError = field(default_factory=LastError)
    # Requests alpha's per-account limiter refused under settings no longer in force.
    rate_limited_before = 0

    def finalized(self, latency_ms: int) -> None:
        """Records one quantum becoming final `latency_ms` after alpha executed it."""
        self.finality.observe(latency_ms)

    def signed(self, auditor: bytes, apex: int, latency_ms: int | None) -> None:
        """Records an auditor's signature of `apex`, `latency_ms` after execution."""
        figures = self.auditors.get(auditor)
        if figures is None:
            figures = self.auditors[auditor] = AuditorFigures()
        figures.signed(apex, latency_ms)

    def state_seen(self, state: NodeState, reason: str) -> None:
        """Remembers the reason of a state other than Ready (or Undefined: not initialized
        yet, which is no error) as the node's last error."""
        quiet = state in (NodeState.READY, NodeState.UNDEFINED)
        if not quiet and reason and reason != self.last_error.reason:
            self.last_error = LastError(reason, wall_ms())


@dataclass(frozen=True, slots=True)
class NodeReading:
    """What the worker reads of its node at a publication (besides `EngineFigures`)."""

    state: NodeState
    reason: str
    apex: int
    finalized_apex: int
    finalized_total: int
    unfinalized: int
    outbox_depth: int
    payouts_pending: int
    rate_limited: int
    alpha_apex: int
    auditors_connected: tuple[bytes, ...]


def figures_json(figures: EngineFigures, reading: NodeReading, now_ms: int) -> dict[str, object]:
    """Returns the JSON the web process reads (`constellation_site.metrics`)."""
    figures.state_seen(reading.state, reading.reason)
    connected = set(reading.auditors_connected)
    auditors = {
        encode_public_key(key): {
            "signed_apex": seen.signed_apex,
            "lag": max(0, reading.apex - seen.signed_apex),
            "connected": key in connected,
            "signing": seen.signing.to_json(),
        }
        for key, seen in figures.auditors.items()
    }
    for key in connected - figures.auditors.keys():
        auditors[encode_public_key(key)] = {
            "signed_apex": 0,
            "lag": reading.apex,
            "connected": True,
        }
    return {
        "published_ms": wall_ms(),
        "role": figures.role,
        "state": reading.state.name.capitalize(),
        "reason": reading.reason,
        "apex": reading.apex,
        "finalized_apex": reading.finalized_apex,
        "finalized_total": reading.finalized_total,
        "quanta_per_s": round(figures.rate.sample(now_ms, reading.finalized_total), 1),
        "unfinalized": reading.unfinalized,
        "outbox_depth": reading.outbox_depth,
        "payouts_pending": reading.payouts_pending,
        "rate_limited": figures.rate_limited_before + reading.rate_limited,
        "alpha_apex": reading.alpha_apex,
        "auditors_connected": len(connected),
        "auditors": auditors,
        "finality": figures.finality.to_json(),
        "finality_recent": figures.finality_window.sample(now_ms, figures.finality).to_json(),
        "last_error": {"reason": figures.last_error.reason, "at_ms": figures.last_error.at_ms},
    }


def figures_publish(payload: dict[str, object]) -> None:
    """Stores the figures in the node's Redis (blocking: the worker runs it in a thread)."""
    node_redis().set(figures_key(), json.dumps(payload), ex=FIGURES_TTL_S)


def figures_read() -> dict[str, object] | None:
    """Returns the figures the engine last published (None if none are fresh)."""
    raw = node_redis().get(figures_key())
    if raw is None:
        return None
    found = json.loads(raw)
    return found if isinstance(found, dict) else None
