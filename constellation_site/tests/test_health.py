"""`/healthz`, `/readyz` and `/metrics` of a web process, against the real PostgreSQL and
Redis (the test run's own prefix), with the engine's publications written as the engine
writes them (`quanta.node.figures`, `quanta.node_status`): readiness needs a fresh engine in
Ready; the scrape shows what was published and counts this process's own refusals."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from quanta import web_metrics
from quanta.core.xdr.schema import NodeState
from quanta.node.figures import EngineFigures, NodeReading, figures_json, figures_key
from quanta.node.figures import figures_publish as publish
from quanta.node_status import status_clear, status_publish
from quanta.redis_client import node_redis

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_engine() -> Iterator[None]:
    status_clear()
    node_redis().delete(figures_key())
    yield
    status_clear()
    node_redis().delete(figures_key())


def engine_publishes(state: NodeState, *, apex: int = 7, age_ms: int = 0) -> None:
    """Publishes a status and figures as an engine at `apex` would (`age_ms` ago)."""
    status_publish(state=state, apex=apex, reason="test")
    reading = NodeReading(state, "test", apex, apex - 1, apex, 1, 0, 0, 0, apex, (b"\1" * 32,))
    payload = figures_json(EngineFigures("alpha"), reading, 0)
    payload["published_ms"] = int(str(payload["published_ms"])) - age_ms
    publish(payload)


def test_healthz_answers_without_an_engine() -> None:
    assert Client().get("/healthz").json() == {"status": "ok"}


def test_readyz_is_503_until_a_running_engine_says_ready() -> None:
    response = Client().get("/readyz")
    assert response.status_code == 503
    assert "no figures" in str(response.json()["failures"])
    engine_publishes(NodeState.RISING)
    response = Client().get("/readyz")
    assert response.status_code == 503
    assert "Rising" in str(response.json()["failures"])
    engine_publishes(NodeState.READY)
    assert Client().get("/readyz").status_code == 200


def test_readyz_is_503_when_the_engine_stopped_publishing() -> None:
    engine_publishes(NodeState.READY, age_ms=60_000)
    response = Client().get("/readyz")
    assert response.status_code == 503
    assert "stalled" in str(response.json()["failures"])


def samples() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = Client().get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    found = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_metrics_show_what_the_engine_published_and_this_process_counted() -> None:
    engine_publishes(NodeState.READY, apex=41)
    before = web_metrics.REFUSALS[web_metrics.RefusalCause.HISTORY_PACE]
    web_metrics.refused(web_metrics.RefusalCause.HISTORY_PACE, 3)
    found = samples()
    assert found[("constellation_apex", ())] == 41
    assert found[("constellation_finalized_apex", ())] == 40
    assert found[("constellation_node_state", (("state", "Ready"),))] == 1
    assert found[("constellation_node_state", (("state", "Failed"),))] == 0
    assert found[("constellation_auditors_connected", ())] == 1
    cause = (("cause", "history_pace"),)
    assert found[("constellation_refusals_429_total", cause)] == before + 3
    assert found[("constellation_finality_latency_seconds_count", ())] == 0


def test_metrics_want_the_token_when_one_is_set(settings: Any) -> None:
    settings.METRICS_TOKEN = "scrape-token"
    refused = Client().get("/metrics")
    assert refused.status_code == 401 and refused["WWW-Authenticate"] == "Bearer"
    wrong = Client().get("/metrics", headers={"Authorization": "Bearer other"})
    assert wrong.status_code == 401
    right = Client().get("/metrics", headers={"Authorization": "Bearer scrape-token"})
    assert right.status_code == 200 and b"constellation_node_state" in right.content


def test_metrics_without_an_engine_still_show_the_web_process() -> None:
    found = samples()
    assert found[("constellation_node_state", (("state", "Undefined"),))] == 1
    assert ("constellation_finalized_apex", ()) not in found
    assert ("constellation_acknowledgement_latency_seconds_count", ()) in found
