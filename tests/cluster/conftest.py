"""Fixtures of the cluster tests: real alpha/auditor processes on loopback ports.

Each cluster gets its own databases, Redis prefixes and ports (from a per-run counter), and is
stopped at the end of its scope whatever happened. The client is the real Python client.
"""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest

from quanta.core.testing import default_settings
from quanta.core.xdr.schema import ConstellationSettings
from tools.cluster import Cluster, Node, free_base_port, wait_for_state

# Each test process starts its search at its own offset and moves past every range it handed
# out; free_base_port skips ports something else (another run, a benchmark) holds.
_next_port = 18_100 + (os.getpid() % 50) * 200
_names = itertools.count(1)


def cluster_new(
    size: int,
    tmp_path_factory: pytest.TempPathFactory,
    node_env: dict[int, dict[str, str]] | None = None,
    **env: str,
) -> Cluster:
    """Describes a cluster of `size` nodes on free ports with its own names and workdir (not
    started). `env` goes to every process, `node_env` to the processes of one node (by
    index)."""
    name = f"t{os.getpid()}n{next(_names)}"
    workdir: Path = tmp_path_factory.mktemp(name)
    global _next_port
    base_port = free_base_port(size, _next_port)
    _next_port = base_port + 10 * ((size + 9) // 10)
    return Cluster(
        size,
        name=name,
        base_port=base_port,
        workdir=workdir,
        extra_env=env,
        node_env=node_env,
    )


def cluster_start(
    size: int,
    tmp_path_factory: pytest.TempPathFactory,
    node_env: dict[int, dict[str, str]] | None = None,
    **env: str,
) -> Cluster:
    """Starts and initializes a cluster of `size` nodes; the caller stops it. `env` goes to
    every process, `node_env` to the processes of one node (by index)."""
    cluster = cluster_new(size, tmp_path_factory, node_env, **env)
    try:
        cluster.start()
        answer = cluster.initialize()
        assert answer.get("status") == 200, answer
        for node in cluster.nodes:
            wait_for_state(cluster, "Ready", 60, node)
    except BaseException:
        cluster.stop()
        raise
    return cluster


def genesis_started(
    cluster: Cluster, genesis: list[Node], settings: ConstellationSettings | None = None
) -> Iterator[Cluster]:
    """Starts every node of `cluster`, initializes it with `genesis` as the auditors (the
    first is alpha, the others wait to be added by a settings update; `settings`: those
    genesis settings instead of the defaults), waits until those are Ready, yields the
    cluster and stops it whatever happened: a module fixture's body."""
    try:
        cluster.start()
        settings = settings or default_settings(
            [n.keypair for n in genesis], addresses=[n.url for n in genesis]
        )
        answer = cluster.initialize(settings)
        assert answer.get("status") == 200, answer
        for node in genesis:
            wait_for_state(cluster, "Ready", 60, node)
    except BaseException:
        cluster.stop()
        raise
    yield cluster
    cluster.stop()


@pytest.fixture(scope="module")
def single_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A constellation of one node (alpha alone: acknowledged is final)."""
    cluster = cluster_start(1, tmp_path_factory, CONSTELLATION_SNAPSHOT_INTERVAL_S="1")
    yield cluster
    cluster.stop()


def run[T](coroutine: Coroutine[Any, Any, T]) -> T:
    """Runs a coroutine to completion with a bound on its time."""
    return asyncio.run(asyncio.wait_for(coroutine, 120))
