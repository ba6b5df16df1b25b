"""The figures a node's engine keeps about itself for monitoring: latency histograms and a
throughput window, as plain values.

Why plain values and not prometheus_client objects: a node is several processes (web, engine,
herald link) and only the web process answers `/metrics`. The engine keeps these figures in
its own memory, publishes them to the node's Redis as JSON a few times a second
(`quanta.node.figures`), and the web process turns them into Prometheus metric families
when scraped (`constellation_site.metrics`). Nothing here touches a clock: callers pass the
times in, so the figures are testable without a node.
"""

from __future__ import annotations

import bisect
from collections import deque
from dataclasses import dataclass, field

LATENCY_BOUNDS_MS: tuple[int, ...] = (5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000)
"""Upper bounds (ms) of the latency buckets; one more bucket (+Inf) takes the rest."""

RATE_WINDOW_MS = 5_000
"""How far back `RateWindow` looks to tell quanta per second."""
RATE_SAMPLES_MAX = 256
"""Most samples `RateWindow` keeps (a bound: it is fed once per publication)."""


@dataclass(slots=True)
class LatencyHistogram:
    """Counts of observed latencies per bucket (not cumulative) and their sum."""

    bounds_ms: tuple[int, ...] = LATENCY_BOUNDS_MS
    counts: list[int] = field(default_factory=list)
    sum_ms: int = 0

    def __post_init__(self) -> None:
        if not self.counts:
            self.counts = [0] * (len(self.bounds_ms) + 1)
        assert len(self.counts) == len(self.bounds_ms) + 1

    @property
    def count(self) -> int:
        """Returns how many latencies were observed."""
        return sum(self.counts)

    def observe(self, latency_ms: int, times: int = 1) -> None:
        """Counts a latency `times` times (a negative one, from clocks apart, counts as 0)."""
        latency_ms = max(0, latency_ms)
        self.counts[bisect.bisect_left(self.bounds_ms, latency_ms)] += times
        self.sum_ms += latency_ms * times

    def quantile_ms(self, fraction: float) -> int | None:
        """Returns the upper bound of the bucket holding the `fraction` quantile (None when
        empty; the last finite bound when it falls in +Inf): coarse, as any histogram."""
        total = self.count
        if total == 0:
            return None
        rank = fraction * total
        seen = 0
        for index, count in enumerate(self.counts):
            seen += count
            if seen >= rank and count:
                return self.bounds_ms[min(index, len(self.bounds_ms) - 1)]
        return self.bounds_ms[-1]

    def to_json(self) -> dict[str, object]:
        """Returns the histogram as JSON-ready values."""
        return {
            "bounds_ms": list(self.bounds_ms),
            "counts": list(self.counts),
            "sum_ms": self.sum_ms,
        }

    @classmethod
    def from_json(cls, data: dict[str, object]) -> LatencyHistogram:
        """Rebuilds a histogram `to_json` wrote."""
        bounds = data.get("bounds_ms", [])
        counts = data.get("counts", [])
        assert isinstance(bounds, list) and isinstance(counts, list)
        return cls(
            tuple(int(b) for b in bounds), [int(c) for c in counts], int(str(data["sum_ms"]))
        )


class RateWindow:
    """Tells how fast a running total grows, over the last RATE_WINDOW_MS."""

    def __init__(self) -> None:
        """Starts with no sample."""
        self._samples: deque[tuple[int, int]] = deque(maxlen=RATE_SAMPLES_MAX)

    def sample(self, now_ms: int, total: int) -> float:
        """Records `total` at `now_ms` (monotonic) and returns its growth per second over the
        window (0 until two samples lie apart in time)."""
        self._samples.append((now_ms, total))
        while len(self._samples) > 2 and now_ms - self._samples[1][0] >= RATE_WINDOW_MS:
            self._samples.popleft()
        first_ms, first_total = self._samples[0]
        if now_ms <= first_ms:
            return 0.0
        return (total - first_total) * 1000 / (now_ms - first_ms)


class HistogramWindow:
    """Tells what a growing histogram counted over the last RATE_WINDOW_MS (a status page's
    "finality now", where the histogram itself holds everything since the engine started)."""

    def __init__(self) -> None:
        """Starts with no sample."""
        self._samples: deque[tuple[int, list[int], int]] = deque(maxlen=RATE_SAMPLES_MAX)

    def sample(self, now_ms: int, histogram: LatencyHistogram) -> LatencyHistogram:
        """Records the histogram at `now_ms` (monotonic); returns its growth over the window."""
        self._samples.append((now_ms, list(histogram.counts), histogram.sum_ms))
        while len(self._samples) > 2 and now_ms - self._samples[1][0] >= RATE_WINDOW_MS:
            self._samples.popleft()
        _, counts, sum_ms = self._samples[0]
        grown = [now - then for now, then in zip(histogram.counts, counts, strict=True)]
        return LatencyHistogram(histogram.bounds_ms, grown, histogram.sum_ms - sum_ms)


@dataclass(slots=True)
class AuditorFigures:
    """What alpha measured of one auditor: the highest apex it signed and how long its
    signatures took (from the quantum's execution at alpha to the signature's arrival)."""

    signed_apex: int = 0
    signing: LatencyHistogram = field(default_factory=LatencyHistogram)

    def signed(self, apex: int, latency_ms: int | None) -> None:
        """Records one signature of quantum `apex` that took `latency_ms` (None: not known,
        the quantum was final and forgotten before the signature came)."""
        self.signed_apex = max(self.signed_apex, apex)
        if latency_ms is not None:
            self.signing.observe(latency_ms)
