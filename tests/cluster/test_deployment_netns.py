"""A constellation deployed across "hosts": each node in a network namespace of its own.

Goal: what docs/deploy.md describes works between machines: every node on its own address,
its web process on TLS only (daphne's TLS endpoint, a certificate of a test CA), auditors
reaching alpha over `wss://` (checked against that CA: CONSTELLATION_ALPHA_CA_FILE), each node
with its own Redis, PostgreSQL over its Unix socket, secrets from files, and a client on a
third host (the CLI, `ip netns exec`). Then one auditor's link is cut (`ip link set down`):
alpha and the other auditor keep finalizing the client's payments; restored, the cut auditor
catches up and every node ends with the same state hash.
Method: tools/netns.py (namespaces, bridge, veth; created and removed here; no traffic leaves
them but to the test process's own bridge address) and tools/test_ca.py. Skips with the
reason where namespaces cannot be made; runs as root here. Bounded polls, no sleeps.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from quanta.core.keys import KeyPair
from tools.cluster import Cluster, wait_for_state
from tools.metrics_scrape import scrape
from tools.netns import NamespacedCluster, TestNetwork, netns_unavailable

pytestmark = pytest.mark.cluster

ROOT = Path(__file__).resolve().parents[2]
CLI_TIMEOUT_S = 60


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NamespacedCluster]:
    reason = netns_unavailable()
    if reason is not None:
        pytest.skip(f"network namespaces unavailable: {reason}")
    network = TestNetwork(["node0", "node1", "node2", "client"]).create()
    workdir = tmp_path_factory.mktemp("netns")
    cluster = NamespacedCluster(3, network, name=f"ns{network.tag}", workdir=workdir)
    mp = pytest.MonkeyPatch()
    # The test process is the operator's host: it checks the nodes' certificates by the CA.
    mp.setenv("SSL_CERT_FILE", str(cluster.ca.certificate))
    try:
        cluster.start()
        answer = cluster.initialize()
        assert answer.get("status") == 200, answer
        for node in cluster.nodes:
            wait_for_state(cluster, "Ready", 90, node)
        yield cluster
    finally:
        cluster.stop()
        network.remove()
        mp.undo()


def cli(cluster: NamespacedCluster, secret: Path, *args: str) -> dict[str, object]:
    """Runs the client CLI on the client's host against alpha; returns its JSON output (a
    refusal too: its status says so)."""
    command = [
        *cluster.network.hosts["client"].exec_prefix(),
        sys.executable,
        "-m",
        "constellation_client",
        "--node",
        cluster.alpha.url,
        "--secret-file",
        str(secret),
        "--constellation",
        cluster.constellation_id().hex(),
        "--json",
        *args,
    ]
    env = {"SSL_CERT_FILE": str(cluster.ca.certificate), "PATH": "/usr/bin:/bin", "HOME": "/root"}
    done = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=CLI_TIMEOUT_S
    )
    assert done.stdout.startswith("{"), (done.stdout, done.stderr)
    found = json.loads(done.stdout)
    assert isinstance(found, dict)
    return found


def funded_client(cluster: NamespacedCluster, tmp_path: Path) -> tuple[Path, KeyPair]:
    """A client key (in a file) with 100 USD, its deposit final."""
    keypair = KeyPair.random()
    secret = tmp_path / f"{keypair.public_key_strkey[:8]}.secret"
    secret.write_text(keypair.secret + "\n")
    cluster.faucet(keypair.public_key_strkey, "USD", "100")
    deadline = time.monotonic() + 60
    while True:
        balance = cli(cluster, secret, "balance")
        if balance.get("status") == 200 and balance.get("finalized"):
            return secret, keypair
        if time.monotonic() > deadline:
            raise TimeoutError(f"the deposit never registered the client: {balance}")
        time.sleep(0.5)  # The deposit is polled by alpha; nothing to await from here.


def pay_final(cluster: NamespacedCluster, secret: Path, to: KeyPair) -> int:
    """Pays 1 USD from the client's host; returns the apex once final."""
    result = cli(cluster, secret, "pay", to.public_key_strkey, "USD", "1")
    assert result["status"] == 200, result["description"]
    assert result["finalized"], result
    return int(str(result["apex"]))


def converged(cluster: Cluster, timeout_s: float = 60) -> set[str]:
    """Waits until every node's snapshot reached alpha's apex; returns their state hashes."""
    deadline = time.monotonic() + timeout_s
    while True:
        infos = [cluster.info(node) for node in cluster.nodes]
        if all(info.get("snapshot_apex") == infos[0]["apex"] for info in infos):
            return {str(info["snapshot_state_hash"]) for info in infos}
        if time.monotonic() > deadline:
            raise TimeoutError(f"snapshots did not converge: {infos}")
        time.sleep(0.2)


def test_nodes_on_separate_hosts_over_tls_survive_a_cut_auditor_link(
    deployed: NamespacedCluster, tmp_path: Path
) -> None:
    cluster = deployed
    assert cluster.alpha.url.startswith("https://")
    info = cluster.info()
    assert all(str(a["address"]).startswith("https://") for a in info["auditors"])  # type: ignore[union-attr]
    payer, _ = funded_client(cluster, tmp_path)
    _, payee = funded_client(cluster, tmp_path)
    pay_final(cluster, payer, payee)
    cut = cluster.nodes[2]
    cut_key = cut.keypair.public_key_strkey
    cluster.network.cut("node2")
    try:
        # Alpha stops hearing the cut auditor (its presence bound, 5 s); alpha and auditor 1
        # are still a majority: the client's payments keep finalizing.
        auditor_connected(cluster, cut_key, expected=0)
        apexes = [pay_final(cluster, payer, payee) for _ in range(3)]
        assert apexes == sorted(apexes)
        assert cluster.info()["state"] == "Ready"
    finally:
        cluster.network.restore("node2")
    info = wait_for_state(cluster, "Ready", 90, cut)
    assert int(str(info["apex"])) >= max(apexes)
    auditor_connected(cluster, cut_key, expected=1)
    assert len(converged(cluster)) == 1


def auditor_connected(cluster: Cluster, key: str, *, expected: int, timeout_s: float = 60) -> None:
    """Waits until alpha's /metrics show the auditor connected (1) or not (0)."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = scrape(cluster.alpha.url).get(
            ("constellation_auditor_connected", (("auditor", key),))
        )
        if found == expected:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"alpha never showed auditor {key} connected={expected}: {found}")
        time.sleep(0.2)
