"""The local cluster harness's node environment (tools/cluster.py), without starting nodes."""

from __future__ import annotations

from pathlib import Path

from tools.cluster import Cluster


def test_every_auditor_of_a_local_cluster_may_link_from_loopback(tmp_path: Path) -> None:
    """All nodes link from 127.0.0.1: with the production cap of 4 herald links per address,
    the 5th and 6th auditors of a 7-node cluster were refused (HTTP 429) until the harness's
    Ready wait timed out (bench/cluster.py --auditors 6 failed so)."""
    cluster = Cluster(7, name="envtest", workdir=tmp_path)
    caps = {
        cluster.process_env(node)["CONSTELLATION_WS_HERALD_PER_ADDRESS_MAX"]
        for node in cluster.nodes
    }
    assert caps == {"7"}
    small = Cluster(3, name="envtest3", workdir=tmp_path)
    assert small.process_env(small.alpha)["CONSTELLATION_WS_HERALD_PER_ADDRESS_MAX"] == "4"
    override = {"CONSTELLATION_WS_HERALD_PER_ADDRESS_MAX": "2"}
    pinned = Cluster(7, name="envtest7", workdir=tmp_path, extra_env=override)
    assert pinned.process_env(pinned.alpha)["CONSTELLATION_WS_HERALD_PER_ADDRESS_MAX"] == "2"
