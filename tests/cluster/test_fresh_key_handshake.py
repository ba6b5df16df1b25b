"""A key registered since the last snapshot is told its account at the handshake.

Goal: a client connecting with a key whose account exists in alpha's memory but has no row
yet (rows are written at each snapshot) must be told that account, and its requests' results
must be recognized. Before, the handshake read the persisted rows only: the client was told
account 0, waited for the quantum creating its account, and ignored every result ("result at
apex N proves nothing about this account"), so the CLI exited with "outcome unknown" (CI
found it: tests/cluster/test_order_types.py, the CLI run right after a faucet deposit).
Method: one real node whose snapshots are an hour apart, so the rows cannot catch up during
the test; the real client; a deposit through the local ledger's faucet. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from constellation_client import ConstellationClient
from quanta.core.keys import KeyPair
from tests.cluster.conftest import cluster_start, run
from tests.cluster.pins import pin
from tools.cluster import Cluster

UNIT = 10_000_000


@pytest.fixture(scope="module")
def unsnapshotted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """One node that cuts no snapshot during the test."""
    cluster = cluster_start(1, tmp_path_factory, CONSTELLATION_SNAPSHOT_INTERVAL_S="3600")
    yield cluster
    cluster.stop()


def test_a_key_registered_since_the_snapshot_is_told_its_account(
    unsnapshotted: Cluster,
) -> None:
    async def scenario() -> None:
        keypair = KeyPair.random()
        first = await ConstellationClient.connect(
            unsnapshotted.alpha.url, keypair, constellation_id=pin(unsnapshotted)
        )
        assert first.account_id == 0  # No account yet.
        await asyncio.to_thread(unsnapshotted.faucet, keypair.public_key_strkey, "USD", "100")
        notification = await first.next_notification(timeout_s=15)
        assert notification is not None and notification.finalized
        registered = first.account_id
        assert registered != 0  # Learnt from the quantum creating it.

        again = await ConstellationClient.connect(
            unsnapshotted.alpha.url, keypair, constellation_id=pin(unsnapshotted)
        )
        assert again.account_id == registered
        # Account data is a quantum of its own: its result must be recognized as this
        # account's (before, it was ignored and the request timed out).
        data = await again.account_data()
        assert data.ok and data.account_data is not None, (data.status, data.description)
        assert {b.asset: b.amount for b in data.account_data.balances} == {"USD": 100 * UNIT}
        for client in (first, again):
            await client.close()

    run(scenario())
