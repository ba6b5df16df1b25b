"""Consensus with real auditor processes: majority finality, crashes, recovery, tampering.

Goal: show that a quantum is final only with a majority of valid signatures (alpha's
included), that the constellation keeps finalizing when a minority of auditors is down, that a
restarted auditor catches up (Chasing -> Ready), that alpha killed with -9 recovers every
finalized quantum from the auditors (Rising), that all nodes end with the same state hash, and
that a tampering auditor neither counts nor blocks the honest majority, and leaves evidence
at alpha (counted in its info, each record re-verifying, all against the tamperer's key).
Method: clusters of 3 and 5 nodes from tools/cluster.py; the real client checks signatures
against the auditor keys from /api/constellation/info. Bounded waits throughout.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from constellation_client import ConstellationClient
from quanta.core.keys import KeyPair
from tests.cluster.conftest import cluster_start, run
from tests.cluster.pins import pin
from tools.cluster import Cluster, wait_for_restart, wait_for_state

UNIT = 10_000_000


async def funded_pair(cluster: Cluster) -> tuple[ConstellationClient, ConstellationClient]:
    """Two registered clients with 100 USD each."""
    clients = []
    for _ in range(2):
        keypair = KeyPair.random()
        client = await ConstellationClient.connect(
            cluster.alpha.url, keypair, constellation_id=pin(cluster)
        )
        await asyncio.to_thread(cluster.faucet, keypair.public_key_strkey, "USD", "100")
        notification = await client.next_notification(timeout_s=20)
        assert notification is not None
        assert await notification.wait_final(10)
        clients.append(client)
    return clients[0], clients[1]


def converged_state_hashes(cluster: Cluster, timeout_s: float = 60) -> set[str]:
    """Waits until every node's snapshot reached alpha's apex; returns their state hashes."""
    deadline = time.monotonic() + timeout_s
    while True:
        infos = [cluster.info(node) for node in cluster.nodes]
        apex = infos[0]["apex"]
        if all(info.get("snapshot_apex") == apex for info in infos):
            return {str(info["snapshot_state_hash"]) for info in infos}
        if time.monotonic() > deadline:
            raise TimeoutError(f"snapshots did not converge: {infos}")
        time.sleep(0.2)


@pytest.fixture(scope="module")
def three(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    cluster = cluster_start(3, tmp_path_factory, CONSTELLATION_SNAPSHOT_INTERVAL_S="1")
    yield cluster
    cluster.stop()


def test_two_of_three_finalize_with_verified_signatures(three: Cluster) -> None:
    async def scenario() -> None:
        alice, bob = await funded_pair(three)
        result = await alice.pay(bob.public_key, "USD", UNIT)
        assert result.ok, result.description
        assert await result.wait_final(5)
        assert result.signatures_verified >= 2
        assert result.auditor_count == 3
        await alice.close()
        await bob.close()

    run(scenario())
    assert len(converged_state_hashes(three)) == 1


def test_one_auditor_down_keeps_finalizing_and_it_rejoins(three: Cluster) -> None:
    auditor = three.nodes[2]

    async def scenario() -> None:
        alice, bob = await funded_pair(three)
        for process in ("herald", "engine", "web"):
            await asyncio.to_thread(three.kill_process, auditor, process)
        for _ in range(20):
            result = await alice.pay(bob.public_key, "USD", UNIT // 10)
            assert await result.wait_final(5), "a minority down must not stop finality"
        for process in ("web", "engine", "herald"):
            await asyncio.to_thread(three.start_process, auditor, process)
        await alice.close()
        await bob.close()

    run(scenario())
    wait_for_state(three, "Ready", 60, auditor)
    assert len(converged_state_hashes(three)) == 1


def test_alpha_killed_under_load_loses_no_final_quantum(three: Cluster) -> None:
    async def scenario() -> list[int]:
        alice, bob = await funded_pair(three)
        finals: list[int] = []
        stop = asyncio.Event()

        async def load() -> None:
            while not stop.is_set():
                try:
                    result = await alice.pay(bob.public_key, "USD", UNIT // 100)
                except Exception:
                    return  # The connection died with alpha.
                if result.ok and await result.wait_final(2):
                    finals.append(result.apex)

        task = asyncio.create_task(load())
        while len(finals) < 30:
            await asyncio.sleep(0.05)
        # The whole alpha node crashes: its engine and its web process (gateway and herald
        # endpoint), so the auditors' links drop too and must find the restarted alpha.
        for process in ("engine", "web"):
            await asyncio.to_thread(three.kill_process, three.alpha, process)
        stop.set()
        await asyncio.wait_for(task, 30)
        return finals

    finals = run(scenario())
    restarted_ms = time.time_ns() // 1_000_000
    three.start_process(three.alpha, "web")
    three.start_process(three.alpha, "engine")
    info = wait_for_restart(three, restarted_ms, "Ready", 90)
    assert "recovered" in str(info["reason"]), info
    assert int(info["apex"]) >= max(finals), (info, max(finals))

    async def after() -> None:
        alice, bob = await funded_pair(three)
        result = await alice.pay(bob.public_key, "USD", UNIT)
        assert await result.wait_final(5)
        history = await alice.history(limit=10)
        assert history.items
        await alice.close()
        await bob.close()

    run(after())
    assert len(converged_state_hashes(three)) == 1


def test_three_of_five_and_a_tampering_auditor(tmp_path_factory: pytest.TempPathFactory) -> None:
    cluster = cluster_start(
        5,
        tmp_path_factory,
        node_env={4: {"DJANGO_SETTINGS_MODULE": "tests.cluster.settings_tampering"}},
        CONSTELLATION_SNAPSHOT_INTERVAL_S="1",
        # Alpha checks every late signature here (it samples 1 in 16 by default), so the
        # count of evidence records below does not depend on the draw.
        CONSTELLATION_LATE_SIGNATURES_CHECK_ONE_IN="1",
    )
    try:

        async def scenario() -> None:
            alice, bob = await funded_pair(cluster)
            for _ in range(5):
                result = await alice.pay(bob.public_key, "USD", UNIT)
                assert await result.wait_final(5)
                assert 3 <= result.signatures_verified <= 4
                assert result.message is not None
                signers = {s.auditor_index for s in result.message.payload_proof.signatures}
                assert 4 not in signers, "the tampering auditor's signature was counted"
            await alice.close()
            await bob.close()

        run(scenario())
        _assert_evidence_against(cluster, cluster.nodes[4].keypair.public_key_strkey, 7)
    finally:
        cluster.stop()


EVIDENCE_CHECK = (
    "from quanta.admin import evidence_item; from quanta.core.evidence import evidence_holds; "
    "from quanta.core.keys import encode_public_key; from quanta.models import EvidenceRecord; "
    "from quanta.selectors import constellation_id; "
    "records = list(EvidenceRecord.objects.all()); cid = constellation_id(); "
    "print(all(evidence_holds(evidence_item(r), cid) for r in records), "
    "*sorted({encode_public_key(bytes(r.signer)) for r in records}))"
)


def _assert_evidence_against(cluster: Cluster, signer: str, at_least: int) -> None:
    """Waits until alpha counts `at_least` evidence records; checks them all on its database."""
    deadline = time.monotonic() + 20
    while int(str(cluster.info()["evidence_count"])) < at_least:
        assert time.monotonic() < deadline, cluster.info()
        time.sleep(0.2)
    assert cluster.manage(cluster.alpha, "shell", "-v", "0", "-c", EVIDENCE_CHECK).split() == [
        "True",
        signer,
    ]
    for auditor in cluster.nodes[1:]:
        assert cluster.info(auditor)["evidence_count"] == 0
