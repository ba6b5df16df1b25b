"""Vault rotation as a constellation operation, with real processes (issue 18).

Goal: settings updates alone (no `vault_rotate`) keep the local vault answering to the
auditors in force: 1 of 3 auditors replaced, then 2 of 3, a withdrawal paid out exactly once
before and after each, the removed keys unable to move the vault, one state hash everywhere.
Before: after such an update every node reported the vault mismatched and nothing was paid
out until an operator ran `vault_rotate` with a majority of the old signers' secrets.
Method: five node processes sets (six exhausted the shared PostgreSQL's connections); the
genesis lists (alpha, A1, A2); v2 replaces A2 by N1; v3 replaces A1 and N1 by A2 (back, it
followed the chain meanwhile) and N2. For v3 the old majority needs a removed auditor's
rotation signature (alpha + A1 or N1): it travels with its result for the update's quantum.
A1 and N1 are shut down after v3. Bounded waits, on the ledger's database.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from constellation_client import ConstellationClient
from quanta.core.keys import KeyPair
from quanta.core.settings_json import settings_from_json
from quanta.core.settings_update import update_envelope, update_sign
from quanta.core.xdr.codec import encode
from quanta.core.xdr.schema import AuditorSettings, ConstellationUpdate
from tests.cluster.conftest import genesis_started, run
from tests.cluster.test_payments import ledger_balance
from tests.cluster.test_rotation import funded, vault_signers, wait_for_mismatch, wait_for_version
from tools.cluster import (
    Cluster,
    Node,
    free_base_port,
    http_post_json,
    wait_for_http,
    wait_for_restart,
    wait_for_state,
)

pytestmark = pytest.mark.cluster

UNIT = 10_000_000
HOLD_ENV = "CONSTELLATION_TEST_HOLD_PAYOUTS"
DROP_ENV = "CONSTELLATION_TEST_DROP_ROTATION_ROWS"
ALPHA, A1, A2, N1, N2 = range(5)


@pytest.fixture(scope="module")
def five(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    name = f"vrot{time.time_ns() % 1_000_000}"
    cluster = Cluster(
        5,
        name=name,
        base_port=free_base_port(5, 23_000),
        workdir=tmp_path_factory.mktemp(name),
        extra_env={"CONSTELLATION_SNAPSHOT_INTERVAL_S": "1"},
        # Inert unless the files exist (the last tests create them).
        node_env={
            ALPHA: {
                HOLD_ENV: str(tmp_path_factory.mktemp("hold") / "hold"),
                DROP_ENV: str(tmp_path_factory.mktemp("drop") / "drop"),
            }
        },
    )
    yield from genesis_started(cluster, [cluster.nodes[i] for i in (ALPHA, A1, A2)])


def keys_of(cluster: Cluster, indexes: tuple[int, ...]) -> list[str]:
    return sorted(cluster.nodes[i].keypair.public_key_strkey for i in indexes)


def update_to(cluster: Cluster, auditors: tuple[int, ...], signers: tuple[int, ...]) -> None:
    """Posts the settings update to `auditors`, signed by the auditors in force `signers`;
    waits until it is final on the new set."""
    current = settings_from_json(cluster.info())
    nodes = [cluster.nodes[i] for i in auditors]
    entries = tuple(AuditorSettings(n.keypair.public_key, n.url) for n in nodes)
    settings = dataclasses.replace(current, version=current.version + 1, auditors=entries)
    update = ConstellationUpdate(int(time.time()), settings)
    cid = cluster.constellation_id()
    signatures = [update_sign(update, cluster.nodes[i].keypair, cid) for i in signers]
    envelope = encode(update_envelope(update, signatures))
    body = json.dumps({"envelope": base64.b64encode(envelope).decode()})
    answer = http_post_json(f"{cluster.alpha.url}/api/constellation/update", body)
    assert answer["status"] == 200, answer
    wait_for_version(cluster, int(settings.version), list(auditors), 60)


def wait_for_vault(cluster: Cluster, indexes: tuple[int, ...], timeout_s: float) -> None:
    """Waits until the ledger's vault answers to exactly these nodes, majority threshold."""
    wanted = (keys_of(cluster, indexes), len(indexes) // 2 + 1)
    deadline = time.monotonic() + timeout_s
    while (found := vault_signers(cluster)) != wanted:
        assert time.monotonic() < deadline, f"vault {found}, wanted {wanted}"
        time.sleep(0.2)


def shut_down(cluster: Cluster, indexes: tuple[int, ...]) -> None:
    for index in indexes:
        node: Node = cluster.nodes[index]
        for process in list(node.processes):
            cluster.kill_process(node, process)


async def withdrawal_paid(cluster: Cluster, client: ConstellationClient, payee: str) -> None:
    """Withdraws one unit to a fresh `payee` and waits until the ledger paid it, once. Right
    after a rotation alpha may not have looked at the vault again yet (its payout tick, every
    0.2 s): a refusal naming the vault is retried, bounded."""
    deadline = time.monotonic() + 30
    while True:
        result = await client.withdraw("local-vault", "USD", UNIT, payee)
        if result.ok:
            break
        text = str(result.description)
        assert "vault" in text, text
        assert time.monotonic() < deadline, text
        await asyncio.sleep(0.2)
    assert await result.wait_final(20), "the withdrawal must finalize"
    while (got := await asyncio.to_thread(ledger_balance, cluster, payee, "USD")) != UNIT:
        assert got == 0 and time.monotonic() < deadline + 30, got
        await asyncio.sleep(0.2)


def paid_to_a_fresh_payee(cluster: Cluster) -> str:
    """A new funded client withdraws one unit to a fresh payee, paid once; returns it."""
    payee = KeyPair.random().public_key_strkey

    async def paid() -> None:
        client = await funded(cluster, "20")
        await withdrawal_paid(cluster, client, payee)
        await client.close()

    run(paid())
    assert ledger_balance(cluster, payee, "USD") == UNIT  # once
    return payee


def test_settings_updates_alone_rotate_the_vault_one_then_two_of_three(
    five: Cluster, tmp_path: Path
) -> None:
    payees = [KeyPair.random().public_key_strkey for _ in range(3)]

    async def before() -> None:
        alice = await funded(five, "20")
        await asyncio.to_thread(wait_for_vault, five, (ALPHA, A1, A2), 30)
        await withdrawal_paid(five, alice, payees[0])
        await alice.close()

    run(before())

    # 1 of 3: A2 -> N1. The old majority (alpha, A1) stays in the new set.
    update_to(five, (ALPHA, A1, N1), (A1, A2))
    wait_for_vault(five, (ALPHA, A1, N1), 60)

    async def after(payee: str) -> None:
        client = await funded(five, "20")  # a new session: verifies the settings chain
        await withdrawal_paid(five, client, payee)
        await client.close()

    run(after(payees[1]))

    # 2 of 3: A1, N1 -> A2, N2. Alpha alone is no old majority: a removed auditor's
    # rotation signature (sent with its result for the update's quantum) completes it.
    update_to(five, (ALPHA, A2, N2), (A1, N1))
    wait_for_vault(five, (ALPHA, A2, N2), 60)
    shut_down(five, (A1, N1))
    run(after(payees[2]))

    # The removed keys can no longer move the vault: a direct attempt is refused.
    sign_files = []
    for index in (A1, N1):
        path = tmp_path / f"node{index}.secret"
        path.write_text(five.nodes[index].keypair.secret)
        sign_files += ["--sign-file", str(path)]
    removed = [five.nodes[i].keypair.public_key_strkey for i in (A1, N1)]
    takeover = [a for key in removed for a in ("--signer", key)]
    with pytest.raises(subprocess.CalledProcessError):
        five.manage(five.alpha, "vault_rotate", *takeover, *sign_files, "--reference", "x")
    wait_for_vault(five, (ALPHA, A2, N2), 1)

    for payee in payees:
        assert ledger_balance(five, payee, "USD") == UNIT  # each paid once
    remaining = (ALPHA, A2, N2)
    for index in remaining:
        wait_for_state(five, "Ready", 30, five.nodes[index])
    deadline = time.monotonic() + 60
    while True:
        infos = [five.info(five.nodes[i]) for i in remaining]
        if len({info.get("snapshot_apex") for info in infos}) == 1:
            break
        assert time.monotonic() < deadline, infos
        time.sleep(0.2)
    assert len({str(info["snapshot_state_hash"]) for info in infos}) == 1, infos
    # Every node sees the vault answer to the set in force (auditors look again by themselves).
    wait_for_mismatch(five, list(remaining), False, 30)


def rotation_signatures(cluster: Cluster) -> list[int]:
    """Returns, for each rotation row on alpha's database, how many old signatures it holds."""
    url = f"postgresql://postgres@127.0.0.1:5432/{cluster.alpha.database}"
    with psycopg.connect(url) as connection:
        rows = connection.execute(
            "SELECT signatures FROM payments_rotationrecord ORDER BY apex"
        ).fetchall()
    return [len(row[0]) for row in rows]


def test_a_rotation_survives_a_kill_of_alpha_before_its_submission(
    five: Cluster, tmp_path: Path
) -> None:
    """After the test above ((alpha, A2, N2) in force, A1 and N1 down). Alpha is held (the
    test-only hook) after it collected an old majority of signatures for v4 (back to alpha,
    A1, N1), kill -9 before the submission. Before: the rotation lived in alpha's memory only
    and the removed auditors sign nothing again, so the vault stayed with the old signers
    until `vault_rotate` by hand. Now it is on alpha's database with its signatures: the
    restarted alpha submits it by itself, the new set pays a withdrawal out once, the removed
    keys are refused at the vault."""
    assert five.info()["settings_version"] == 3, "runs after the test above"
    hold = Path(five.node_env[ALPHA][HOLD_ENV])
    hold.touch()
    try:
        for index in (A1, N1):
            for process in ("web", "engine", "herald"):
                five.start_process(five.nodes[index], process)
            wait_for_http(f"{five.nodes[index].url}/api/constellation/info", 60)
        update_to(five, (ALPHA, A1, N1), (A2, N2))
        # The old majority (2 of alpha, A2, N2) collected and on alpha's disk, then the kill.
        deadline = time.monotonic() + 30
        while not ((counts := rotation_signatures(five)) and counts[0] >= 2):
            assert time.monotonic() < deadline, counts
            time.sleep(0.1)
        five.kill_process(five.alpha, "engine")
        assert vault_signers(five) == (keys_of(five, (ALPHA, A2, N2)), 2)  # not submitted
    finally:
        hold.unlink(missing_ok=True)
    restarted_ms = time.time_ns() // 1_000_000
    five.start_process(five.alpha, "engine")
    wait_for_restart(five, restarted_ms, "Ready", 60)
    shut_down(five, (A2, N2))  # the removed auditors sign nothing again
    wait_for_vault(five, (ALPHA, A1, N1), 60)  # submitted by the restarted alpha itself
    deadline = time.monotonic() + 10
    while rotation_signatures(five):  # applied: its row is deleted
        assert time.monotonic() < deadline
        time.sleep(0.1)
    wait_for_mismatch(five, [ALPHA, A1, N1], False, 30)
    payee = paid_to_a_fresh_payee(five)

    # The removed keys can no longer move the vault.
    sign_files = []
    for index in (A2, N2):
        path = tmp_path / f"node{index}.secret"
        path.write_text(five.nodes[index].keypair.secret)
        sign_files += ["--sign-file", str(path)]
    removed = [a for key in keys_of(five, (A2, N2)) for a in ("--signer", key)]
    with pytest.raises(subprocess.CalledProcessError):
        five.manage(five.alpha, "vault_rotate", *removed, *sign_files, "--reference", "x")
    wait_for_vault(five, (ALPHA, A1, N1), 1)
    assert ledger_balance(five, payee, "USD") == UNIT


def test_a_rotation_whose_row_a_kill_of_alpha_lost_is_recovered_from_the_chain(
    five: Cluster,
) -> None:
    """After the tests above ((alpha, A1, N1) in force, A2 and N2 down). v5 replaces N1 by A2;
    alpha is held and writes no rotation row (test-only hooks: a kill between executing the
    update and writing its row), kill -9 once the update is final, and N1 (removed) is shut
    down before alpha restarts. Before: the restarted alpha knew no rotation and the vault
    stayed with (alpha, A1, N1) until `vault_rotate` by hand. Now it finds the rotation in
    the update's quantum, signs it again, sends the quantum to the auditors again, A1 (an old
    signer still in the set) signs it again, and the vault answers to (alpha, A1, A2)."""
    assert five.info()["settings_version"] == 4, "runs after the tests above"
    hold = Path(five.node_env[ALPHA][HOLD_ENV])
    drop = Path(five.node_env[ALPHA][DROP_ENV])
    hold.touch()
    drop.touch()
    try:
        for process in ("web", "engine", "herald"):
            five.start_process(five.nodes[A2], process)
        wait_for_http(f"{five.nodes[A2].url}/api/constellation/info", 60)
        update_to(five, (ALPHA, A1, A2), (A1, N1))
        assert rotation_signatures(five) == []  # no row: as if killed before writing it
        five.kill_process(five.alpha, "engine")
        assert vault_signers(five) == (keys_of(five, (ALPHA, A1, N1)), 2)  # not submitted
    finally:
        hold.unlink(missing_ok=True)
        drop.unlink(missing_ok=True)
    shut_down(five, (N1,))  # removed: it signs nothing again
    restarted_ms = time.time_ns() // 1_000_000
    five.start_process(five.alpha, "engine")
    wait_for_restart(five, restarted_ms, "Ready", 60)
    wait_for_vault(five, (ALPHA, A1, A2), 60)
    wait_for_mismatch(five, [ALPHA, A1, A2], False, 30)
    paid_to_a_fresh_payee(five)
