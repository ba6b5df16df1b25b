"""A restarted alpha never replaces a quantum an auditor signed, with real processes.

Goal: the issue's fork, on real processes. Alpha and auditor A sign quanta (a majority of
three); alpha is killed before it persisted them; on restart the lagging auditor B answers
first (it holds none of them) while A is not reachable yet. Deciding on alpha + B (a bare
majority counting alpha, the rule before) made alpha Ready at the older apex, and the next
request became a different quantum at an apex A had signed: A went Failed. Now alpha stays
Rising until both auditors answered, then re-applies A's quanta.
Method: B's herald link is stopped (SIGSTOP) so it lags; a test transaction holds a lock on
alpha's quantum table so alpha cannot persist what it finalizes; alpha's engine is killed
(SIGKILL); A is stopped, B resumed, alpha restarted; then A resumed. Bounded waits; the one
window in which alpha must *not* go Ready is observed for a bounded time.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Iterator

import psycopg
import pytest

from tests.cluster.conftest import cluster_start, run
from tests.cluster.test_consensus import converged_state_hashes, funded_pair
from tools.cluster import PG_ADMIN_URL, Cluster, wait_for_restart, wait_for_state

pytestmark = pytest.mark.cluster

UNIT = 10_000_000
PAYMENTS = 3
NOT_READY_WINDOW_S = 4.0
"""How long alpha is watched staying Rising while only the lagging auditor can answer."""


@pytest.fixture(scope="module")
def three(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    cluster = cluster_start(3, tmp_path_factory, CONSTELLATION_SNAPSHOT_INTERVAL_S="1")
    yield cluster
    cluster.stop()


def apex_reaches(cluster: Cluster, index: int, apex: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while int(cluster.info(cluster.nodes[index])["apex"]) < apex:
        assert time.monotonic() < deadline, f"node {index} did not reach apex {apex}"
        time.sleep(0.05)


def stays_rising(cluster: Cluster, window_s: float) -> bool:
    deadline = time.monotonic() + window_s
    while time.monotonic() < deadline:
        if cluster.info()["state"] == "Ready":
            return False
        time.sleep(0.1)
    return True


def processes(cluster: Cluster, index: int, sig: int, *names: str) -> None:
    for name in names:
        cluster.signal_process(cluster.nodes[index], name, sig)


def test_a_restarted_alpha_waits_for_the_auditor_that_holds_its_unpersisted_quanta(
    three: Cluster,
) -> None:
    lock_url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{three.alpha.database}"

    async def sign_unpersisted() -> list[int]:
        alice, bob = await funded_pair(three)
        processes(three, 2, signal.SIGSTOP, "herald")  # B lags from here on
        apexes = []
        with psycopg.connect(lock_url) as lock:
            lock.execute("LOCK TABLE quanta_quantumrecord IN EXCLUSIVE MODE")
            for _ in range(PAYMENTS):
                result = await alice.pay(bob.public_key, "USD", UNIT)
                assert result.ok, result.description
                apexes.append(result.apex)
            # A signed them: alpha holds a majority (itself and A) but cannot persist.
            await asyncio.to_thread(apex_reaches, three, 1, max(apexes), 15)
            await asyncio.to_thread(three.kill_process, three.alpha, "engine")
            lock.rollback()
        await alice.close()
        await bob.close()
        return apexes

    apexes = run(sign_unpersisted())
    processes(three, 1, signal.SIGSTOP, "herald", "engine")  # A unreachable for now
    processes(three, 2, signal.SIGCONT, "herald")  # the lagging B answers first
    restarted_ms = time.time_ns() // 1_000_000
    three.start_process(three.alpha, "engine")
    wait_for_restart(three, restarted_ms, "Rising", 60)
    assert stays_rising(three, NOT_READY_WINDOW_S), "alpha decided without A's quanta"

    processes(three, 1, signal.SIGCONT, "engine", "herald")
    info = wait_for_state(three, "Ready", 60)
    assert int(info["apex"]) >= max(apexes), (info, apexes)

    async def carry_on() -> None:
        alice, bob = await funded_pair(three)
        result = await alice.pay(bob.public_key, "USD", UNIT)
        assert result.ok and await result.wait_final(10), result.description
        await alice.close()
        await bob.close()

    run(carry_on())
    for node in three.nodes[1:]:
        wait_for_state(three, "Ready", 30, node)  # A was never handed a different quantum
    assert len(converged_state_hashes(three)) == 1
