"""`/metrics`, `/healthz`, `/readyz` and the status JSON of real nodes (alpha + 2 auditors).

Goal: the figures a node exposes are its real ones, from every process that holds them: the
engine's (apex, finality, per-auditor lag and signing latency, connected auditors, outbox)
reach the web process's scrape through Redis, the web process's own (429s by cause,
acknowledgement latency, open connections) are counted where they happen, and readiness
follows the node's state. Method: a 3-node cluster of real processes; the real client pays;
one key opens a connection more than allowed (a 429 of its cause); one auditor's herald link
is killed (it leaves Ready: its `/readyz` turns 503, alpha's lag of it grows) and restarted.
Waits poll with bounds; nothing sleeps to synchronize.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator

import pytest

from constellation_client import ConstellationClient
from quanta.core.status import StatusCode
from tests.cluster.conftest import cluster_start, run
from tests.cluster.pins import pin
from tests.cluster.test_consensus import UNIT, funded_pair
from tools.cluster import Cluster, wait_for_state
from tools.metrics_scrape import Samples, histogram_quantile_s, labelled, scrape, value

pytestmark = pytest.mark.cluster

PAYMENTS = 20
INFLIGHT = 5
FLOOD = 12


@pytest.fixture(scope="module")
def three(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    # One connection per key, so a second one is a 429 of cause key_connections; room for
    # INFLIGHT requests at the engine, so a flood of a frozen engine is 429 engine_busy.
    cluster = cluster_start(
        3,
        tmp_path_factory,
        CONSTELLATION_GATEWAY_KEY_CONNECTIONS="1",
        CONSTELLATION_GATEWAY_INFLIGHT=str(INFLIGHT),
    )
    yield cluster
    cluster.stop()


def get(url: str) -> tuple[int, dict[str, object]]:
    """Returns an endpoint's HTTP status and JSON body."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def scrape_until(url: str, done: Callable[[Samples], bool], timeout_s: float = 30) -> Samples:
    """Scrapes until `done` holds for the samples (the engine publishes twice a second)."""
    deadline = time.monotonic() + timeout_s
    while True:
        samples = scrape(url)
        if done(samples):
            return samples
        if time.monotonic() > deadline:
            raise TimeoutError(f"metrics of {url} never satisfied the test: {samples}")
        time.sleep(0.2)


def test_metrics_show_the_engines_figures_and_the_web_processes_counters(three: Cluster) -> None:
    alpha = three.alpha
    auditors = [node.keypair.public_key_strkey for node in three.nodes[1:]]

    async def scenario() -> int:
        alice, bob = await funded_pair(three)
        last = 0
        for _ in range(PAYMENTS):
            result = await alice.pay(bob.public_key, "USD", UNIT // 10)
            assert await result.wait_final(5)
            last = result.apex
        # A second connection of alice's key is one too many: refused with 429.
        with pytest.raises(Exception, match="429|connections already"):
            await ConstellationClient.connect(
                alpha.url, alice._keypair, constellation_id=pin(three)
            )
        await alice.close()
        await bob.close()
        return last

    last_apex = run(scenario())
    samples = scrape_until(
        alpha.url,
        lambda s: (
            value(s, "constellation_finalized_apex") >= last_apex
            and all(
                v == 0 for v in labelled(s, "constellation_auditor_lag_quanta", "auditor").values()
            )
        ),
    )
    assert value(samples, "constellation_node_state", state="Ready") == 1
    assert value(samples, "constellation_apex") >= last_apex
    # Two deposits and the payments became final at this engine, each measured.
    assert value(samples, "constellation_quanta_finalized_total") >= PAYMENTS + 2
    assert value(samples, "constellation_finality_latency_seconds_count") >= PAYMENTS + 2
    assert value(samples, "constellation_acknowledgement_latency_seconds_count") >= PAYMENTS
    assert value(samples, "constellation_auditors_connected") == 2
    assert sorted(labelled(samples, "constellation_auditor_connected", "auditor")) == sorted(
        auditors
    )
    for key in auditors:
        assert (
            value(samples, "constellation_auditor_signing_latency_seconds_count", auditor=key) > 0
        )
        assert (
            histogram_quantile_s(
                samples, "constellation_auditor_signing_latency_seconds", 0.5, auditor=key
            )
            <= 5.0
        )
    assert value(samples, "constellation_refusals_429_total", cause="key_connections") >= 1
    assert value(samples, "constellation_refusals_429_total", cause="engine_busy") == 0
    assert value(samples, "constellation_websocket_connections", route="herald") == 2
    assert value(samples, "constellation_evidence_records") == 0
    assert value(samples, "constellation_engine_figures_age_seconds") < 10
    for gauge in ("outbox_depth", "engine_channel_depth", "payouts_pending", "unfinalized_quanta"):
        assert value(samples, f"constellation_{gauge}") >= 0
    # An auditor's own /metrics: its apex and what it heard of alpha's.
    # What it heard of alpha's apex comes with alpha's frames, published with the engine's
    # figures: it may trail the auditor's own apex by one publication, so both are awaited.
    auditor_samples = scrape_until(
        three.nodes[1].url,
        lambda s: (
            value(s, "constellation_apex") >= last_apex
            and value(s, "constellation_alpha_apex") >= last_apex
        ),
    )
    assert value(auditor_samples, "constellation_alpha_apex") >= last_apex


def test_health_and_readiness_follow_the_node(three: Cluster) -> None:
    auditor = three.nodes[2]
    key = auditor.keypair.public_key_strkey
    for node in three.nodes:
        assert get(f"{node.url}/healthz") == (200, {"status": "ok"})
        assert get(f"{node.url}/readyz") == (200, {"status": "ready"})
    three.kill_process(auditor, "herald")
    try:
        wait_for_state(three, "Running", 30, auditor)
        status, body = get(f"{auditor.url}/readyz")
        assert status == 503, body
        assert any("Running" in str(f) for f in body["failures"]), body  # type: ignore[union-attr]
        assert get(f"{auditor.url}/healthz")[0] == 200  # Alive all the same.

        async def pay_while_down() -> None:
            alice, bob = await funded_pair(three)
            for _ in range(5):
                result = await alice.pay(bob.public_key, "USD", UNIT // 10)
                assert await result.wait_final(5), "one auditor down must not stop finality"
            await alice.close()
            await bob.close()

        run(pay_while_down())
        samples = scrape_until(
            three.alpha.url,
            lambda s: value(s, "constellation_auditor_lag_quanta", auditor=key) >= 5,
        )
        assert value(samples, "constellation_auditors_connected") == 1
        assert get(f"{three.alpha.url}/readyz")[0] == 200  # Alpha and one auditor: a majority.
        status_all = get(f"{three.alpha.url}/api/constellation/status/all")[1]
        nodes = status_all["nodes"]
        assert isinstance(nodes, list)
        down = nodes[2]
        assert down["state"] == "Running", down
        assert "alpha" in str(down["last_error"]), down
    finally:
        three.start_process(auditor, "herald")
    wait_for_state(three, "Ready", 60, auditor)
    scrape_until(
        three.alpha.url, lambda s: value(s, "constellation_auditor_lag_quanta", auditor=key) == 0
    )
    assert get(f"{auditor.url}/readyz")[0] == 200


def test_status_of_one_node_carries_recent_finality(three: Cluster) -> None:
    async def pay() -> None:
        alice, bob = await funded_pair(three)
        result = await alice.pay(bob.public_key, "USD", UNIT)
        assert await result.wait_final(5)
        await alice.close()
        await bob.close()

    run(pay())
    status, summary = get(f"{three.alpha.url}/api/constellation/status")
    assert status == 200
    assert summary["role"] == "alpha" and summary["state"] == "Ready", summary
    assert int(str(summary["finality_count"])) >= 1
    assert summary["finality_p50_ms"] is not None


def test_a_flooded_frozen_engine_counts_its_refusals_as_engine_busy(three: Cluster) -> None:
    before = value(scrape(three.alpha.url), "constellation_refusals_429_total", cause="engine_busy")

    async def flood() -> int:
        alice, bob = await funded_pair(three)
        three.signal_process(three.alpha, "engine", signal.SIGSTOP)
        try:
            tasks = [
                asyncio.create_task(alice.pay(bob.public_key, "USD", UNIT // 100))
                for _ in range(FLOOD)
            ]
            # What is beyond the admission limit is refused while the engine is frozen.
            while sum(task.done() for task in tasks) < FLOOD - INFLIGHT:
                await asyncio.wait(tasks, timeout=10, return_when=asyncio.FIRST_COMPLETED)
        finally:
            three.signal_process(three.alpha, "engine", signal.SIGCONT)
        results = await asyncio.wait_for(asyncio.gather(*tasks), 60)
        await alice.close()
        await bob.close()
        return sum(result.status == StatusCode.TOO_MANY_REQUESTS for result in results)

    refused = run(flood())
    assert refused == FLOOD - INFLIGHT
    after = value(scrape(three.alpha.url), "constellation_refusals_429_total", cause="engine_busy")
    assert after - before == refused
