"""A dead alpha is replaced by an auditor through a majority-signed settings update.

Goal: issue 20, deliverable 1, with real processes. Alpha is killed for good (SIGKILL of its
web and engine); the two surviving auditors' operators sign, offline (`sign_settings_update
--message`), an update naming auditor 1 as alpha; auditor 1's operator restarts its engine as
alpha (CONSTELLATION_ROLE=alpha: an alpha designate) and submits the update to it. The
designate hands the update to auditor 2, whose herald link then follows the address the
update gives the new alpha; the designate rises (its own chain and auditor 2's answer),
executes the update, and trading goes on through it. No finalized quantum is lost (every row
the old alpha persisted is on both survivors with the same hashes) and the survivors end with
equal state hashes.
Method: a 3-node cluster from tools/cluster.py, the real Python client, bounded waits.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import psycopg
import pytest

from constellation_client import ConstellationClient
from constellation_client.wire import node_urls
from quanta.core.keys import KeyPair
from tests.cluster.conftest import cluster_start, run
from tests.cluster.pins import pin
from tools.cluster import (
    PG_ADMIN_URL,
    Cluster,
    Node,
    http_post_json,
    wait_for_restart,
    wait_for_state,
)

pytestmark = pytest.mark.cluster

UNIT = 10_000_000
T = TypeVar("T")


class LoopThread:
    """An event loop in a thread: a client lives on in it across the test's blocking steps
    (the replacement's commands), as in an application that stays connected."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T], timeout_s: float = 120) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout_s)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def following_client(
    loop: LoopThread, asked: list[Node], key: KeyPair, constellation: bytes
) -> ConstellationClient:
    """A client made by `connect_to_alpha` before the replacement (it follows on its own)."""
    urls = [node.url for node in asked]
    return loop.run(ConstellationClient.connect_to_alpha(urls, key, constellation_id=constellation))


async def pay_followed(client: ConstellationClient, to: KeyPair, alpha: Node) -> list[str]:
    """Pays until a payment is final (at most twice: a "replaced" answer is returned, not
    re-sent); checks it went through `alpha` and returns the refusals seen before."""
    refused: list[str] = []
    for _ in range(2):
        result = await client.pay(to.public_key, "USD", UNIT)
        if result.ok:
            assert await result.wait_final(10), result.description
            assert client._info_url == node_urls(alpha.url)[1]  # it followed to the new alpha
            return refused
        refused.append(result.description)
    raise AssertionError(f"never paid through the new alpha: {refused}")


@pytest.fixture
def three(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A fresh cluster per test: each one replaces its alpha."""
    cluster = cluster_start(3, tmp_path_factory, CONSTELLATION_SNAPSHOT_INTERVAL_S="1")
    yield cluster
    cluster.stop()


def chain_rows(node: Node) -> dict[int, tuple[bytes, bytes]]:
    """Returns the node's persisted quanta: apex -> (quantum hash, payload hash)."""
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{node.database}"
    with psycopg.connect(url) as connection:
        rows = connection.execute(
            "SELECT apex, quantum_hash, payload_hash FROM quanta_quantumrecord"
        ).fetchall()
    return {int(apex): (bytes(q), bytes(p)) for apex, q, p in rows}


def last_line(output: str) -> str:
    return output.strip().splitlines()[-1]


def offline_signature(cluster: Cluster, node: Node, message: str, constellation: bytes) -> str:
    """Signs the update the way an auditor's operator does it offline (docs/admin.md): the
    bytes, the constellation id and the node's key, no database."""
    signing = ["sign_settings_update", "--message", message, "--constellation", constellation.hex()]
    return last_line(cluster.manage(node, *signing))


def converged(cluster: Cluster, nodes: list[Node], timeout_s: float = 60) -> set[str]:
    """Waits until the nodes' snapshots reached the first one's apex; returns their hashes."""
    deadline = time.monotonic() + timeout_s
    while True:
        infos = [cluster.info(node) for node in nodes]
        if all(info.get("snapshot_apex") == infos[0]["apex"] for info in infos):
            return {str(info["snapshot_state_hash"]) for info in infos}
        assert time.monotonic() < deadline, f"snapshots did not converge: {infos}"
        time.sleep(0.2)


async def funded_keys(cluster: Cluster, constellation: bytes) -> tuple[KeyPair, KeyPair]:
    """Two accounts funded with 100 USD each and a payment between them, through alpha."""
    keys = KeyPair.random(), KeyPair.random()
    alice, bob = [
        await ConstellationClient.connect(cluster.alpha.url, key, constellation_id=constellation)
        for key in keys
    ]
    for key, client in zip(keys, (alice, bob), strict=True):
        await asyncio.to_thread(cluster.faucet, key.public_key_strkey, "USD", "100")
        notification = await client.next_notification(timeout_s=20)
        assert notification is not None and await notification.wait_final(10)
    result = await alice.pay(bob.public_key, "USD", UNIT)
    assert result.ok and await result.wait_final(10), result.description
    await alice.close()
    await bob.close()
    return keys


def replacement(cluster: Cluster, new: Node, signers: list[Node], constellation: bytes) -> str:
    """Runs the runbook's offline steps (docs/admin.md, "Replacing alpha"): draft on `new`,
    each signer signs offline, assembled; returns the envelope (base64)."""
    draft = cluster.manage(new, "replace_alpha", "draft", "--alpha", new.keypair.public_key_strkey)
    message = last_line(draft)
    assembled = ["replace_alpha", "envelope", "--message", message]
    for node in signers:
        assembled += ["--signature", offline_signature(cluster, node, message, constellation)]
    return last_line(cluster.manage(new, *assembled))


def restart_as_alpha(cluster: Cluster, node: Node) -> None:
    """The new alpha's operator restarts it as alpha (an alpha has no herald link)."""
    cluster.kill_process(node, "herald")
    cluster.kill_process(node, "engine")
    cluster.node_env[node.index] = {"CONSTELLATION_ROLE": "alpha"}
    cluster.start_process(node, "engine")
    wait_for_state(cluster, "Rising", 60, node)


def submit(node: Node, envelope: str) -> dict[str, object]:
    return http_post_json(
        f"{node.url}/api/constellation/update", json.dumps({"envelope": envelope})
    )


async def pay_through_alpha(
    asked: list[Node], keys: tuple[KeyPair, KeyPair], constellation: bytes, alpha: Node
) -> None:
    """The clients ask the nodes they know where alpha is (verified settings, newest wins)
    and a payment is finalized through it."""
    urls = [node.url for node in asked]
    alice, bob = [
        await ConstellationClient.connect_to_alpha(urls, key, constellation_id=constellation)
        for key in keys
    ]
    assert alice._info_url == node_urls(alpha.url)[1]  # connected to the new alpha
    result = await alice.pay(bob.public_key, "USD", UNIT)
    assert result.ok and await result.wait_final(10), result.description
    await alice.close()
    await bob.close()


def wait_for_new_alpha(cluster: Cluster, new: Node, nodes: list[Node], version: int) -> None:
    for node in nodes:
        info = wait_for_state(cluster, "Ready", 60, node)
        assert info.get("settings_version") == version, info
        # Every node says who alpha is and where.
        assert (info["alpha"], info["alpha_address"]) == (new.keypair.public_key_strkey, new.url)


def restart_as_auditor(
    cluster: Cluster, node: Node, processes: tuple[str, ...]
) -> dict[str, object]:
    cluster.node_env[node.index] = {"CONSTELLATION_ROLE": "auditor"}
    restarted_ms = time.time_ns() // 1_000_000
    for process in processes:
        cluster.start_process(node, process)
    return wait_for_restart(cluster, restarted_ms, "Ready", 60, node)


def assert_nothing_final_lost(before: dict[int, tuple[bytes, bytes]], nodes: list[Node]) -> None:
    for node in nodes:
        rows = chain_rows(node)
        lost = {apex for apex, hashes in before.items() if rows.get(apex) != hashes}
        assert not lost, f"node {node.index} lost or changed final quanta {sorted(lost)}"


def test_a_dead_alpha_is_replaced_by_an_auditor_and_trading_goes_on(three: Cluster) -> None:
    old, new, other = three.nodes
    constellation = pin(three)
    keys = run(funded_keys(three, constellation))
    converged(three, three.nodes)  # everything final is on alpha's disk
    before = chain_rows(old)
    assert before
    loop = LoopThread()
    follower = following_client(loop, [old, other], keys[0], constellation)

    for process in ("engine", "web"):  # alpha dies for good
        three.kill_process(old, process)
    envelope = replacement(three, new, [new, other], constellation)
    version = int(str(three.info(new)["settings_version"])) + 1
    restart_as_alpha(three, new)
    answer = submit(new, envelope)
    assert answer.get("status") == 200, answer
    wait_for_new_alpha(three, new, [new, other], version)

    run(pay_through_alpha([old, other], keys, constellation, new))  # old: dead, unanswered
    # The client connected before lost its connection with alpha's death; it follows the
    # settings to the new alpha by itself (no new connect_to_alpha).
    assert loop.run(pay_followed(follower, keys[1], new)) == []
    loop.run(follower.close())
    loop.stop()
    assert len(converged(three, [new, other])) == 1
    cli = subprocess.run(
        [sys.executable, "-m", "constellation_client", "--node", f"{old.url},{other.url}"]
        + ["--follow-alpha", "--constellation", constellation.hex()]
        + ["--secret", keys[0].secret, "--json", "balance"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert cli.returncode == 0, cli.stderr

    # The old alpha's host comes back: its operator makes it follow the new alpha and
    # restarts it as an auditor; it catches up and signs (it is an auditor of the update).
    follow = three.manage(old, "replace_alpha", "follow", "--envelope", envelope)
    assert new.url in follow, follow
    info = restart_as_auditor(three, old, ("web", "engine", "herald"))
    assert info.get("settings_version") == version, info
    run(pay_through_alpha([old], keys, constellation, new))  # it says who alpha is now, too
    assert len(converged(three, [new, other, old])) == 1
    assert_nothing_final_lost(before, [new, other, old])


def test_a_live_alpha_handed_its_replacement_stops_and_returns_as_an_auditor(
    three: Cluster,
) -> None:
    old, new, other = three.nodes
    constellation = pin(three)
    keys = run(funded_keys(three, constellation))
    converged(three, three.nodes)
    before = chain_rows(old)
    loop = LoopThread()
    follower = following_client(loop, [old, other], keys[0], constellation)

    envelope = replacement(three, new, [new, other], constellation)
    version = int(str(three.info(new)["settings_version"])) + 1
    restart_as_alpha(three, new)
    answer = submit(new, envelope)  # the new alpha hands it to the old one too
    assert answer.get("status") == 200, answer
    wait_for_new_alpha(three, new, [new, other], version)
    stopped = wait_for_state(three, "Running", 30, old)
    assert f"replaced by the alpha at {new.url}" in str(stopped["reason"]), stopped

    async def refused_by_the_old_alpha() -> None:
        client = await ConstellationClient.connect(old.url, keys[0], constellation_id=constellation)
        result = await client.pay(keys[1].public_key_strkey, "USD", UNIT)
        assert not result.ok and "replaced" in result.description, result.description
        await client.close()

    run(refused_by_the_old_alpha())
    # The client connected before is told "replaced" (returned, not re-sent) or loses its
    # connection; either way it follows the settings to the new alpha by itself.
    refused = loop.run(pay_followed(follower, keys[1], new))
    assert all("replaced" in why for why in refused), refused
    loop.run(follower.close())
    loop.stop()
    run(pay_through_alpha([old, other], keys, constellation, new))

    # Its operator restarts its engine as an auditor (it kept the update: no follow needed).
    three.kill_process(old, "engine")
    info = restart_as_auditor(three, old, ("engine", "herald"))
    assert info.get("settings_version") == version, info
    run(pay_through_alpha([old], keys, constellation, new))
    assert len(converged(three, [new, other, old])) == 1
    assert_nothing_final_lost(before, [new, other, old])
