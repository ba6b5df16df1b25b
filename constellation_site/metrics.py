"""`/metrics`: the node's figures in Prometheus' text format, built when scraped.

Three sources meet here, because a node is several processes: the engine's figures (published
to the node's Redis, `quanta.node.figures`), this web process's own counters (429s by cause,
acknowledgement latency: `quanta.web_metrics`; open WebSocket connections: the edge's
`ConnectionCaps`), and two reads at scrape time (the engine channel's depth in Redis, the
evidence records in PostgreSQL). A collector builds fresh metric families from them at each
scrape, so nothing here keeps state between scrapes and no global registry is involved.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterator

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from constellation_site.edge import PROCESS_CAPS
from quanta import web_metrics
from quanta.core.metrics import LatencyHistogram
from quanta.core.xdr.schema import NodeState
from quanta.groups import ENGINE_CHANNEL
from quanta.models import EvidenceRecord
from quanta.node.figures import figures_read, wall_ms
from quanta.node_status import status_read
from quanta.redis_client import node_redis

NODE_STATES = tuple(state.name.capitalize() for state in NodeState)
"""Every state, as the engine publishes it (`quanta.node_status`)."""
PREFIX = "constellation"


def histogram_family(
    name: str,
    doc: str,
    histogram: LatencyHistogram,
    labels: dict[str, str] | None = None,
    family: HistogramMetricFamily | None = None,
) -> HistogramMetricFamily:
    """Returns (or adds to `family`) a histogram in seconds from a LatencyHistogram in ms."""
    labels = labels or {}
    family = family or HistogramMetricFamily(name, doc, labels=list(labels))
    buckets: list[tuple[str, float]] = []
    cumulative = 0
    for bound_ms, count in zip(histogram.bounds_ms, histogram.counts, strict=False):
        cumulative += count
        buckets.append((repr(bound_ms / 1000), cumulative))
    buckets.append(("+Inf", histogram.count))
    family.add_metric(list(labels.values()), buckets, histogram.sum_ms / 1000)
    return family


def gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    """Returns a gauge with one unlabelled sample."""
    return GaugeMetricFamily(f"{PREFIX}_{name}", doc, value=value)


class NodeCollector(Collector):
    """Builds every metric family of the node at each scrape."""

    def collect(self) -> Iterator[Metric]:
        """Yields the engine's figures, the web process's counters and the scrape-time reads."""
        yield from self._node_state()
        figures = figures_read()
        if figures is not None:
            yield from engine_families(figures)
        yield from self._web_families(figures or {})
        depth = node_redis().zcard(f"{settings.REDIS_PREFIX}{ENGINE_CHANNEL}")
        yield gauge("engine_channel_depth", "Messages waiting in the engine's channel.", depth)
        yield gauge(
            "evidence_records", "Evidence records this node keeps.", EvidenceRecord.objects.count()
        )

    def _node_state(self) -> Iterator[Metric]:
        status = status_read()
        family = GaugeMetricFamily(
            f"{PREFIX}_node_state", "The node's state (1 for the current one).", labels=["state"]
        )
        for state in NODE_STATES:
            family.add_metric([state], 1.0 if state == status.state else 0.0)
        yield family
        yield gauge("apex", "The node's apex (its last executed quantum).", status.apex)

    def _web_families(self, figures: dict[str, object]) -> Iterator[Metric]:
        refusals = CounterMetricFamily(
            f"{PREFIX}_refusals_429",
            "Requests and connections answered 429, by cause.",
            labels=["cause"],
        )
        for cause in web_metrics.RefusalCause:
            refusals.add_metric([cause.value], web_metrics.REFUSALS[cause])
        # Alpha's per-account limit refuses in the engine: its count comes with the figures.
        refusals.add_metric(["account_rate_limit"], float(str(figures.get("rate_limited", 0))))
        yield refusals
        yield histogram_family(
            f"{PREFIX}_acknowledgement_latency_seconds",
            "Time from a request leaving this web process for the engine to its acknowledgement.",
            web_metrics.ACKNOWLEDGEMENT,
        )
        connections = GaugeMetricFamily(
            f"{PREFIX}_websocket_connections",
            "Open WebSocket connections of this web process, by route (client, herald).",
            labels=["route"],
        )
        for route, count in connection_counts().items():
            connections.add_metric([route], count)
        yield connections


def engine_families(figures: dict[str, object]) -> Iterator[Metric]:
    """Yields the families of the figures the engine published."""

    def number(key: str) -> float:
        return float(str(figures.get(key, 0)))

    age_s = (wall_ms() - number("published_ms")) / 1000
    yield gauge("engine_figures_age_seconds", "How old the engine's last figures are.", age_s)
    yield gauge(
        "finalized_apex", "Every quantum up to this apex is final.", number("finalized_apex")
    )
    yield gauge("alpha_apex", "Alpha's apex as this node last heard it.", number("alpha_apex"))
    yield CounterMetricFamily(
        f"{PREFIX}_quanta_finalized",
        "Quanta finalized (auditor: signed) since the engine started.",
        value=number("finalized_total"),
    )
    yield gauge(
        "quanta_per_second", "Quanta finalized per second, last 5 s.", number("quanta_per_s")
    )
    yield gauge("unfinalized_quanta", "Quanta waiting for signatures.", number("unfinalized"))
    yield gauge("outbox_depth", "Results waiting to leave the engine.", number("outbox_depth"))
    yield gauge(
        "payouts_pending", "Withdrawals not yet paid out or cancelled.", number("payouts_pending")
    )
    yield gauge("auditors_connected", "Auditors alpha hears from.", number("auditors_connected"))
    finality = figures.get("finality")
    if isinstance(finality, dict):
        yield histogram_family(
            f"{PREFIX}_finality_latency_seconds",
            "Time from a quantum's execution at alpha to its finality.",
            LatencyHistogram.from_json(finality),
        )
    auditors = figures.get("auditors")
    if isinstance(auditors, dict) and auditors:
        yield from auditor_families(auditors)


def auditor_families(auditors: dict[str, object]) -> Iterator[Metric]:
    """Yields the per-auditor lag, connection and signing latency alpha measured."""
    lag = GaugeMetricFamily(
        f"{PREFIX}_auditor_lag_quanta",
        "Alpha's apex minus the auditor's last signed apex.",
        labels=["auditor"],
    )
    connected = GaugeMetricFamily(
        f"{PREFIX}_auditor_connected", "1 while alpha hears from the auditor.", labels=["auditor"]
    )
    signing: HistogramMetricFamily | None = None
    for key, seen in sorted(auditors.items()):
        if not isinstance(seen, dict):
            continue
        lag.add_metric([key], float(seen.get("lag", 0)))
        connected.add_metric([key], 1.0 if seen.get("connected") else 0.0)
        latency = seen.get("signing")
        if isinstance(latency, dict):
            signing = histogram_family(
                f"{PREFIX}_auditor_signing_latency_seconds",
                "Time from a quantum's execution at alpha to this auditor's signature.",
                LatencyHistogram.from_json(latency),
                {"auditor": key},
                signing,
            )
    yield lag
    yield connected
    if signing is not None:
        yield signing


def connection_counts() -> dict[str, int]:
    """Returns the open WebSocket connections per route of this process (counted by the edge
    when it runs as `constellation_site.server`)."""
    counts = {"client": 0, "herald": 0}
    for (route, _address), count in PROCESS_CAPS.open.items():
        counts[route] = counts.get(route, 0) + count
    return counts


_REGISTRY = CollectorRegistry(auto_describe=False)
_REGISTRY.register(NodeCollector())


def _token_refusal(request: HttpRequest) -> HttpResponse | None:
    """Returns 401 unless the request presents settings.METRICS_TOKEN (when one is set) as
    `Authorization: Bearer TOKEN` (Prometheus' `authorization` / `bearer_token_file`)."""
    expected = settings.METRICS_TOKEN
    if not expected:
        return None
    presented = request.headers.get("Authorization", "").removeprefix("Bearer ")
    if hmac.compare_digest(presented.encode(), expected.encode()):
        return None
    refusal = HttpResponse("a bearer token is required\n", status=401, content_type="text/plain")
    refusal["WWW-Authenticate"] = "Bearer"
    return refusal


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """Returns every metric of the node in Prometheus' text format."""
    refusal = _token_refusal(request)
    if refusal is not None:
        return refusal
    return HttpResponse(generate_latest(_REGISTRY), content_type=CONTENT_TYPE_LATEST)
