"""Withdrawals final at a dead alpha are paid exactly once by the alpha that replaces it.

Goal: issue 20's payouts across a replacement. Two withdrawals are final and on the old
alpha's disk, signed by a majority, when it dies for good: one it never submitted (payouts
held, test-only hook CONSTELLATION_TEST_HOLD_PAYOUTS of `payments.payouts`), one it submitted
to the vault just before dying (the ledger applied it; no notification settled it in the
constellation yet). The test plays that last submission itself after the kill, with the
signatures of the old alpha and an auditor on the transaction the constellation holds, so the
window is certain rather than a race. Then the runbook replaces alpha (docs/admin.md). The new
alpha's payout desk restores both pending withdrawals from its state, gets the auditors'
transaction signatures again and submits: the first is paid, the second refused by the
ledger (already applied), and the provider's notification settles both. Each withdrawal has
exactly one vault entry, applied; the account's locked amounts are released (no liability
left, the balance debited once); the survivors end with equal state hashes.
Method: a 3-node cluster from tools/cluster.py, the real Python client, bounded waits.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from constellation_client import ConstellationClient
from quanta.core.keys import KeyPair
from tests.cluster.conftest import cluster_start, run
from tests.cluster.pins import pin
from tests.cluster.test_alpha_replacement import (
    converged,
    replacement,
    restart_as_alpha,
    submit,
    wait_for_new_alpha,
)
from tests.cluster.test_payments import balances, deposit, ledger_balance
from tests.cluster.test_payout_durability import node_query, vault_entries
from tests.cluster.test_recovery_safety import apex_reaches
from tools.cluster import Cluster, Node

pytestmark = pytest.mark.cluster

UNIT = 10_000_000
PROVIDER = "local-vault"
TTL_MS = 600_000
"""Validity of withdrawal transactions: far longer than a replacement on a loaded machine
(the runbook's commands and the designate's Rising), so none expires unpaid."""
SETTLE_S = 90.0


@pytest.fixture
def held(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Cluster, Path]]:
    """Alpha (payouts held while `hold` exists) and two auditors, majority 2."""
    hold = tmp_path_factory.mktemp("hold") / "hold-payouts"
    cluster = cluster_start(
        3,
        tmp_path_factory,
        node_env={0: {"CONSTELLATION_TEST_HOLD_PAYOUTS": str(hold)}},
        CONSTELLATION_SNAPSHOT_INTERVAL_S="1",
        CONSTELLATION_PAYMENT_PROVIDERS=json.dumps({PROVIDER: {"ttl_ms": str(TTL_MS)}}),
    )
    yield cluster, hold
    cluster.stop()


def persisted_at(cluster: Cluster, index: int, apex: int, timeout_s: float = 15) -> None:
    sql = "SELECT apex FROM quanta_quantumrecord WHERE apex = %s"
    deadline = time.monotonic() + timeout_s
    while not node_query(cluster, index, sql, apex):
        assert time.monotonic() < deadline, f"node {index} did not persist quantum {apex}"
        time.sleep(0.1)


SUBMIT = """
from payments.models import WithdrawalRecord
from payments.providers.local_ledger.ledger import vault_submit
from payments.core.local_ledger import transaction_sign
from quanta.core.keys import KeyPair
tx = bytes(WithdrawalRecord.objects.get(withdrawal_id={wid}).transaction)
print(vault_submit(tx, [transaction_sign(tx, KeyPair.from_secret(s)) for s in {secrets!r}]))
"""


def submit_as_the_old_alpha(cluster: Cluster, on: Node, withdrawal_id: int) -> None:
    """Applies the withdrawal's transaction (as `on` holds it) on the ledger with the
    signatures of the old alpha and one auditor: what the old alpha's desk submitted."""
    secrets = [cluster.nodes[0].keypair.secret, cluster.nodes[2].keypair.secret]
    cluster.manage(on, "shell", "-c", SUBMIT.format(wid=withdrawal_id, secrets=secrets))


def test_withdrawals_final_at_a_dead_alpha_are_paid_once_by_its_replacement(
    held: tuple[Cluster, Path],
) -> None:
    cluster, hold = held
    old, new, other = cluster.nodes
    constellation = pin(cluster)
    keys = KeyPair.random(), KeyPair.random()  # one pending withdrawal per account
    payees = KeyPair.random().public_key_strkey, KeyPair.random().public_key_strkey
    amounts = 3 * UNIT, 2 * UNIT
    deposited = 10 * UNIT

    async def withdraw_twice_held() -> list[int]:
        clients = [
            await ConstellationClient.connect(old.url, key, constellation_id=constellation)
            for key in keys
        ]
        for client in clients:
            await deposit(cluster, client, "USD", "10")
        hold.touch()  # the old alpha submits nothing from here on
        ids = []
        for client, amount, payee in zip(clients, amounts, payees, strict=True):
            result = await client.withdraw(PROVIDER, "USD", amount, payee)
            assert result.ok and await result.wait_final(15), result.description
            ids.append(int(result.apex))
            await client.close()
        return ids

    withdrawals = run(withdraw_twice_held())
    for withdrawal_id in withdrawals:  # final, on every disk, signatures collected
        for index in (0, 1, 2):
            apex_reaches(cluster, index, withdrawal_id, 15)
            persisted_at(cluster, index, withdrawal_id)
    time.sleep(1.0)  # payout ticks (0.2 s) with the signatures in hand, held
    for withdrawal_id in withdrawals:
        assert vault_entries(cluster, f"withdrawal:{withdrawal_id}") == []
    for process in ("engine", "web"):  # the old alpha dies for good
        cluster.kill_process(old, process)
    submit_as_the_old_alpha(cluster, other, withdrawals[1])  # its last act: one submitted
    assert vault_entries(cluster, f"withdrawal:{withdrawals[1]}") == [("applied", amounts[1])]

    envelope = replacement(cluster, new, [new, other], constellation)
    version = int(str(cluster.info(new)["settings_version"])) + 1
    restart_as_alpha(cluster, new)
    answer = submit(new, envelope)
    assert answer.get("status") == 200, answer
    wait_for_new_alpha(cluster, new, [new, other], version)

    deadline = time.monotonic() + SETTLE_S
    pending_sql = "SELECT withdrawal_id FROM payments_withdrawalrecord"
    while True:
        entries = [vault_entries(cluster, f"withdrawal:{w}") for w in withdrawals]
        pending = node_query(cluster, 1, pending_sql)
        if all(entries) and not pending:
            break
        assert time.monotonic() < deadline, (entries, pending)
        time.sleep(0.2)
    # One transfer per withdrawal, applied: the new alpha paid the first, and its
    # resubmission of the second did not pay it again.
    assert entries == [[("applied", amounts[0])], [("applied", amounts[1])]], entries
    for amount, payee in zip(amounts, payees, strict=True):
        assert ledger_balance(cluster, payee, "USD") == amount

    async def settled_at_the_new_alpha() -> None:
        deadline = time.monotonic() + SETTLE_S
        for key, amount in zip(keys, amounts, strict=True):
            client = await ConstellationClient.connect(new.url, key, constellation_id=constellation)
            expected = {"USD": (deposited - amount, 0)}  # debited once, nothing locked
            while (seen := await balances(client)) != expected and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
            assert seen == expected
            await client.close()

    run(settled_at_the_new_alpha())
    assert len(converged(cluster, [new, other])) == 1
