"""Many deposits at once into a real local constellation (alpha + 2 auditors).

Goal: show that concurrent payments into the local-ledger vault are each credited exactly
once and that every node stays Ready with one state: the ledger's entries reach alpha and
the auditors in commit order, so none is skipped by alpha's cursor and no auditor sees a
deposit quantum differently from alpha (before the commit-ordered journal, ten concurrent
faucet calls lost deposits and made both auditors Failed).
Method: 16 faucet payments on parallel threads (each its own process and ledger transaction),
then each payer's account read through the real client; bounded waits throughout.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from constellation_client import ConstellationClient, StatusCode
from quanta.core.keys import KeyPair
from tests.cluster.conftest import cluster_start, run
from tests.cluster.pins import pin
from tests.cluster.test_consensus import converged_state_hashes
from tests.cluster.test_payments import ledger_balance
from tools.cluster import Cluster, wait_for_state

pytestmark = pytest.mark.cluster

UNIT = 10_000_000
PAYERS = 16
CREDIT_TIMEOUT_S = 90


@pytest.fixture(scope="module")
def trio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Alpha and two auditors (majority 2), snapshots every second."""
    cluster = cluster_start(3, tmp_path_factory, CONSTELLATION_SNAPSHOT_INTERVAL_S="1")
    yield cluster
    cluster.stop()


def _states(cluster: Cluster) -> list[str]:
    return [f"{info['state']}: {info.get('reason')}" for info in map(cluster.info, cluster.nodes)]


async def _credited(client: ConstellationClient) -> int | None:
    """Returns the client's USD balance, None while its account does not exist."""
    result = await client.account_data()
    if result.status == StatusCode.UNAUTHORIZED:
        return None
    assert result.ok and result.account_data is not None, result.description
    return sum(b.amount for b in result.account_data.balances if b.asset == "USD")


def test_concurrent_faucet_payments_are_each_credited_once_and_every_node_stays_ready(
    trio: Cluster,
) -> None:
    payers = [KeyPair.random() for _ in range(PAYERS)]
    amounts = {p.public_key_strkey: (10 + i) * UNIT for i, p in enumerate(payers)}
    vault_before = ledger_balance(trio, "VAULT", "USD")
    with ThreadPoolExecutor(PAYERS) as pool:
        calls = [
            pool.submit(trio.faucet, key, "USD", str(amount // UNIT))
            for key, amount in amounts.items()
        ]
        for call in calls:
            call.result(timeout=120)
    assert ledger_balance(trio, "VAULT", "USD") - vault_before == sum(amounts.values())

    async def scenario() -> dict[str, int | None]:
        clients = [
            await ConstellationClient.connect(trio.alpha.url, p, constellation_id=pin(trio))
            for p in payers
        ]
        credited: dict[str, int | None] = {}
        deadline = time.monotonic() + CREDIT_TIMEOUT_S
        while time.monotonic() < deadline:
            credited = {c.public_key: await _credited(c) for c in clients}
            if all(v is not None for v in credited.values()):
                break
            states = await asyncio.to_thread(_states, trio)
            assert not any(s.startswith("Failed") for s in states), states
            await asyncio.sleep(0.5)
        for client in clients:
            await client.close()
        return credited

    credited = run(scenario())
    assert credited == amounts, [k for k in amounts if credited.get(k) != amounts[k]]
    # An auditor whose view of the ledger trails alpha's is Chasing ("cannot confirm yet")
    # until it catches up: every node must end Ready, none ever Failed (checked above).
    for node in trio.nodes:
        wait_for_state(trio, "Ready", 30, node)
    assert len(converged_state_hashes(trio)) == 1
