"""Node states tell the truth, with real processes (issue 15, item 7).

Goal: an auditor leaves Ready when it loses alpha, and becomes Ready once in step with alpha
even when the constellation is idle; alpha leaves Ready (Running, "cannot finalize: ...") while
no majority of auditors can sign, answers client requests 450 with that reason instead of
acknowledging them, and finalizes again once the auditors are back.
Method: one cluster of 3 nodes from tools/cluster.py; processes killed with -9 and restarted;
states read from /api/constellation/info with bounded waits. No quantum is executed between
an auditor's restart and its Ready.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from quanta.core.status import StatusCode
from tests.cluster.conftest import cluster_start, run
from tests.cluster.test_consensus import UNIT, funded_pair
from tools.cluster import Cluster, Node, wait_for_restart, wait_for_state

LOST_BOUND_S = 10.0
"""An auditor must notice alpha is gone within this (its silence bound is 3 s)."""


@pytest.fixture(scope="module")
def three(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    cluster = cluster_start(3, tmp_path_factory, CONSTELLATION_SNAPSHOT_INTERVAL_S="1")
    yield cluster
    cluster.stop()


def _all_ready(cluster: Cluster) -> None:
    for node in cluster.nodes:
        wait_for_state(cluster, "Ready", 60, node)


def _restart(cluster: Cluster, node: Node, processes: tuple[str, ...]) -> None:
    for process in processes:
        cluster.kill_process(node, process)
    for process in reversed(processes):
        cluster.start_process(node, process)


def test_auditors_leave_ready_when_alpha_dies(three: Cluster) -> None:
    _all_ready(three)
    for process in ("engine", "web"):
        three.kill_process(three.alpha, process)
    killed = time.monotonic()
    for auditor in three.nodes[1:]:
        left = max(0.1, LOST_BOUND_S - (time.monotonic() - killed))
        info = wait_for_state(three, "Running", left, auditor)
        assert "lost alpha" in str(info["reason"]), info
    three.start_process(three.alpha, "web")
    three.start_process(three.alpha, "engine")
    _all_ready(three)


def test_auditor_restarted_while_idle_becomes_ready(three: Cluster) -> None:
    _all_ready(three)
    auditor = three.nodes[2]
    apex = int(str(three.info()["apex"]))
    restarted_ms = time.time_ns() // 1_000_000
    _restart(three, auditor, ("herald", "engine", "web"))
    info = wait_for_restart(three, restarted_ms, "Ready", 30, auditor)
    assert int(str(info["apex"])) == apex, "no quantum was needed to get there"
    assert int(str(three.info()["apex"])) == apex


def test_alpha_refuses_what_it_cannot_finalize(three: Cluster) -> None:
    _all_ready(three)

    async def scenario() -> None:
        alice, bob = await funded_pair(three)
        for auditor in three.nodes[1:]:
            await asyncio.to_thread(three.kill_process, auditor, "herald")
        info = await asyncio.to_thread(wait_for_state, three, "Running", 15, three.alpha)
        assert str(info["reason"]).startswith("cannot finalize"), info
        refused = await alice.pay(bob.public_key, "USD", UNIT)
        assert refused.status == StatusCode.INVALID_STATE, refused
        assert "cannot finalize" in refused.description, refused.description
        for auditor in three.nodes[1:]:
            await asyncio.to_thread(three.start_process, auditor, "herald")
        await asyncio.to_thread(wait_for_state, three, "Ready", 30, three.alpha)
        result = await alice.pay(bob.public_key, "USD", UNIT)
        assert result.ok, result.description
        assert await result.wait_final(10)
        await alice.close()
        await bob.close()

    run(scenario())
    _all_ready(three)


def test_info_counts_no_evidence_among_honest_nodes(three: Cluster) -> None:
    for node in three.nodes:
        assert three.info(node)["evidence_count"] == 0
