"""Backing up an auditor and restoring it on another host, with real processes.

Goal: an operator can back up a running node (`backup_node`), lose it, and restore the backup
into an empty database elsewhere (`restore_node`): the restored node starts at the backup's
apex, catches up from alpha, signs again and reaches the same state hash, and no node keeps
evidence against it (it signed nothing different at an apex it had signed). Restoring is
refused, changing nothing, for a backup of another node and over a database holding a chain.
Method: a 3-node constellation; "another host" is a new, empty PostgreSQL database and a
cleared Redis prefix for the auditor, whose processes are killed and restarted. Bounded waits.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster.conftest import cluster_start, run
from tests.cluster.test_consensus import UNIT, converged_state_hashes, funded_pair
from tools.cluster import Cluster, _admin_execute, redis_prefix_clear, wait_for_state

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def three(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    cluster = cluster_start(3, tmp_path_factory, CONSTELLATION_SNAPSHOT_INTERVAL_S="1")
    yield cluster
    cluster.stop()


def payments(cluster: Cluster, count: int) -> None:
    """Makes `count` final payments between two fresh funded accounts."""

    async def scenario() -> None:
        alice, bob = await funded_pair(cluster)
        for _ in range(count):
            result = await alice.pay(bob.public_key, "USD", UNIT)
            assert result.ok, result.description
            assert await result.wait_final(10)
        await alice.close()
        await bob.close()

    run(scenario())


def refused(cluster: Cluster, node_index: int, *args: str) -> str:
    """Runs a management command expected to fail; returns what it said."""
    with pytest.raises(subprocess.CalledProcessError) as error:
        cluster.manage(cluster.nodes[node_index], *args)
    return str(error.value.stderr)


def test_a_restored_auditor_catches_up_and_signs_nothing_different(
    three: Cluster, tmp_path: Path
) -> None:
    payments(three, 2)
    auditor = three.nodes[2]
    backup = tmp_path / "backup"
    said = three.manage(auditor, "backup_node", "--out", str(backup))
    assert "backed up node" in said, said
    manifest = json.loads((backup / "manifest.json").read_text())
    assert manifest["node"] == auditor.keypair.public_key_strkey
    assert manifest["apex"] > 0
    payments(three, 3)  # the backup is old now

    assert "is not empty" in refused(three, 2, "backup_node", "--out", str(backup))
    assert "the backup is of node" in refused(three, 1, "restore_node", "--from", str(backup))
    assert "holds quanta up to apex" in refused(three, 2, "restore_node", "--from", str(backup))

    # The auditor's host is lost; a new one gets an empty database and Redis.
    for process in list(auditor.processes):
        three.kill_process(auditor, process)
    auditor.database = f"{auditor.database}_restored"
    _admin_execute(f'DROP DATABASE IF EXISTS "{auditor.database}" WITH (FORCE)')
    _admin_execute(f'CREATE DATABASE "{auditor.database}"')
    redis_prefix_clear(auditor.redis_prefix)
    said = three.manage(auditor, "restore_node", "--from", str(backup))
    assert f"at apex {manifest['apex']}" in said, said
    for process in ("web", "engine", "herald"):
        three.start_process(auditor, process)
    wait_for_state(three, "Ready", 90, auditor)

    payments(three, 2)
    assert len(converged_state_hashes(three)) == 1
    for node in three.nodes:
        info = three.info(node)
        assert info["evidence_count"] == 0, (node.index, info)
