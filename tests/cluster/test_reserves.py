"""Proof of reserves on a real constellation: after a random session the audit of every node
shows liabilities = vault balance, at one finalized apex with one state hash.

Goal: the fee account closes the books (before it, a paid withdrawal fee left the accounts
and reached nobody: every audit showed the vault above the liabilities by exactly the fees),
and `python -m constellation_client audit` shows it from outside with real processes.
Method: alpha + 2 auditors on the local ledger (and N1), demo faucet on; four accounts
funded, then a seeded random session (`tools/reserves_session.py`: deposits, payments, orders
that trade, withdrawals with fees) with a settings update in the middle replacing one
auditor (A2 by N1: the local vault rotates as a constellation operation, signed by the old
set). Once alpha's fee account holds exactly the fees of every accepted withdrawal (all paid)
and the snapshot of every node in force reached alpha's apex, the CLI `audit` runs as a
process against each of them. The session has CONSTELLATION_RESERVES_OPERATIONS operations
(default 150; the issue's long mode: 1000).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from constellation_client import ConstellationClient
from quanta.core.keys import KeyPair
from tests.cluster.conftest import genesis_started
from tests.cluster.pins import pin
from tests.cluster.test_vault_rotation_flow import update_to, wait_for_vault
from tools.cluster import ROOT, Cluster, free_base_port
from tools.reserves_session import Session, SessionLog, faucet

pytestmark = pytest.mark.cluster

OPERATIONS = int(os.environ.get("CONSTELLATION_RESERVES_OPERATIONS", "150"))
ACCOUNTS = 4
SEED = 18
SETTLE_TIMEOUT_S = 120


ALPHA, A1, A2, N1 = range(4)
GENESIS = (ALPHA, A1, A2)
IN_FORCE = (ALPHA, A1, N1)
"""After the session's settings update: A2 replaced by N1."""


@pytest.fixture(scope="module")
def trio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Alpha and two auditors (and N1, which joins mid-session), snapshots every second,
    the demo faucet on."""
    name = f"res{time.time_ns() % 1_000_000}"
    cluster = Cluster(
        4,
        name=name,
        base_port=free_base_port(4, 23_100),
        workdir=tmp_path_factory.mktemp(name),
        extra_env={"CONSTELLATION_SNAPSHOT_INTERVAL_S": "1", "CONSTELLATION_DEMO": "1"},
    )
    yield from genesis_started(cluster, [cluster.nodes[i] for i in GENESIS])


def converged_state_hashes(cluster: Cluster, timeout_s: float = 60) -> set[str]:
    """Waits until the snapshot of every node in force reached alpha's apex; returns their
    state hashes."""
    deadline = time.monotonic() + timeout_s
    while True:
        infos = [cluster.info(cluster.nodes[i]) for i in IN_FORCE]
        apex = infos[0]["apex"]
        if all(info.get("snapshot_apex") == apex for info in infos):
            return {str(info["snapshot_state_hash"]) for info in infos}
        assert time.monotonic() < deadline, f"snapshots did not converge: {infos}"
        time.sleep(0.2)


def audit(node_url: str) -> tuple[int, dict[str, Any]]:
    """Runs the CLI's `audit --json` against a node; returns its exit code and report."""
    done = subprocess.run(  # noqa: S603 - our own CLI
        [sys.executable, "-m", "constellation_client", "--node", node_url, "--json", "audit"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.stdout, done.stderr
    return done.returncode, json.loads(done.stdout)


def fee_account(node_url: str) -> dict[str, int]:
    """Returns the fee account of the node's audit, by asset."""
    _, report = audit(node_url)
    return {row["asset"]: int(row["fee_account"]) for row in report["assets"] if row["asset"]}


async def funded_clients(cluster: Cluster) -> list[ConstellationClient]:
    """Connects ACCOUNTS clients and funds each with 1000 USD and 1000 XLM (credited)."""
    clients = []
    for _ in range(ACCOUNTS):
        client = await ConstellationClient.connect(
            cluster.alpha.url, KeyPair.random(), constellation_id=pin(cluster)
        )
        for asset in ("USD", "XLM"):
            await asyncio.to_thread(faucet, cluster.alpha.url, client.public_key, asset, "1000")
        clients.append(client)
    deadline = time.monotonic() + 60
    for client in clients:
        while True:
            result = await client.account_data()
            data = result.account_data
            if data is not None and len(data.balances) == 2:
                break
            assert time.monotonic() < deadline, result.description
            await client.next_notification(timeout_s=1)
    return clients


def wait_for_fees(cluster: Cluster, fees: dict[str, int]) -> None:
    """Waits until alpha's fee account holds `fees`: every accepted withdrawal was paid."""
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    while True:
        seen = {asset: amount for asset, amount in fee_account(cluster.alpha.url).items() if amount}
        if seen == fees:
            return
        assert time.monotonic() < deadline, (seen, fees)
        time.sleep(0.5)


def test_every_node_s_audit_shows_liabilities_equal_to_the_vault(trio: Cluster) -> None:
    before_update: list[int] = []

    async def replace_an_auditor() -> None:
        # Withdrawals in flight are the old signers' (paid before the rotation is submitted);
        # the session goes on once the vault answers to the new set, which pays the rest.
        before_update.append(runner.log.accepted["withdrawal"])
        await asyncio.to_thread(update_to, trio, IN_FORCE, (A1, A2))
        await asyncio.to_thread(wait_for_vault, trio, IN_FORCE, 60)

    runner: Session

    async def session() -> SessionLog:
        nonlocal runner
        clients = await funded_clients(trio)
        runner = Session(trio.alpha.url, clients, SEED)
        log = await runner.run(OPERATIONS, replace_an_auditor)
        for client in clients:
            await client.close()
        return log

    log = asyncio.run(asyncio.wait_for(session(), 180 + OPERATIONS))
    assert log.trades > 0 and log.accepted["withdrawal"] > 0, log
    # Withdrawals paid by the old signers and by the new set.
    assert 0 < before_update[0] < log.accepted["withdrawal"], (before_update, log)
    wait_for_fees(trio, log.fees)
    hashes = converged_state_hashes(trio)
    assert len(hashes) == 1, hashes
    reports = []
    for index in IN_FORCE:
        code, report = audit(trio.nodes[index].url)
        assert code == 0, report
        reports.append(report)
    assert {r["state_hash"] for r in reports} == hashes
    assert len({r["apex"] for r in reports}) == 1
    for row in reports[0]["assets"]:
        assert row["vault"] == row["liabilities"], row
        assert row["difference"] == "0", row
        assert int(row["fee_account"]) == log.fees.get(row["asset"], 0), row
    assert all(r["assets"] == reports[0]["assets"] for r in reports)
    print(f"session: {dict(log.accepted)} accepted, {dict(log.refused)} refused, "
          f"{log.trades} trades, fees {log.fees}")  # fmt: skip
