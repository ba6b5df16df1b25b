"""No payout leaves the vault before its withdrawal is final *and* persisted at alpha, with
real processes (issue 15, item 2).

Goal: a withdrawal's quantum can be final (alpha and an auditor signed it, and the auditors
returned their transaction signatures) for a while before alpha has it on disk. Paying on the
signature count alone (the rule before) sent the payout in that window, so a crash of alpha
then left the vault paid for a quantum the restarted alpha might not hold. Now the payout
waits for alpha's persisted prefix: in the window nothing leaves the vault; alpha is killed
(SIGKILL) there; after the restart (Rising, the withdrawal recovered from the auditors) the
withdrawal ends exactly once, paid or expired unpaid, and the ledger, the vault and the
account agree: the vault holds what was deposited minus what was paid, the account owns what
the vault holds, and nothing is left pending.
Method: alpha runs with the test-only hook CONSTELLATION_TEST_HOLD_FLUSH
(`quanta.node.engine_worker`): while the named file exists its engine persists nothing. The
test creates the file, withdraws, waits until both auditors executed (and signed) the
withdrawal, watches the ledger for several payout ticks, kills alpha's engine, removes the
file and restarts the engine. The ledger is read straight from its database, alpha's tables
from alpha's. Against the rule before (`PayoutBook.due` on the signature count alone, checked
by hand) the test fails in the window: the vault shows the payout applied while alpha holds no
row of it. After the restart the withdrawal must be paid, once: the auditors sign the quanta
they send alpha while it rises, and the payout desk takes those signatures
(`PayoutDesk._restore`).
The next test kills alpha later: the withdrawal is final and on alpha's disk with a majority
of transaction signatures, but payouts are held (test-only hook CONSTELLATION_TEST_HOLD_PAYOUTS,
`payments.payouts`). The auditors send nothing again then; the restarted alpha asks them
(it sends the withdrawal's quantum again, they sign its transaction again) and pays it once.
It failed before that (the withdrawal expired unpaid, "cancelled").
The last test kills alpha after it streamed a withdrawal no auditor received: alpha journaled
it before it left (group commit), so the restarted alpha keeps it at its apex, the auditors
sign it and it is paid once, with one quantum at that apex on every node and none Failed.
Before the journal the restarted alpha had forgotten it (it was gone, never paid).
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from constellation_client import ConstellationClient
from quanta.core.keys import KeyPair
from tests.cluster.conftest import cluster_start, run
from tests.cluster.pins import pin
from tests.cluster.test_payments import balances, deposit, ledger_balance
from tests.cluster.test_recovery_safety import apex_reaches
from tools.cluster import Cluster, wait_for_restart

pytestmark = pytest.mark.cluster

UNIT = 10_000_000
PROVIDER = "local-vault"
TTL_MS = 30_000
"""Validity of withdrawal transactions: longer than the window plus a restart of alpha on a
loaded machine (12 s was not: a restored payout expired before the restart was Ready)."""
WINDOW_S = 2.0
"""How long the ledger is watched while the withdrawal is final but not persisted (ten
payout ticks of 0.2 s)."""
SETTLE_S = 60.0


@pytest.fixture(scope="module")
def held(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Cluster, Path]]:
    """Alpha and two auditors (majority 2); alpha's persistence held while `hold` exists, and
    its payouts while `hold-payouts` (beside it) exists."""
    hold = tmp_path_factory.mktemp("hold") / "hold-flush"
    alpha_env = {
        "CONSTELLATION_TEST_HOLD_FLUSH": str(hold),
        "CONSTELLATION_TEST_HOLD_PAYOUTS": str(_payouts_hold(hold)),
    }
    cluster = cluster_start(
        3,
        tmp_path_factory,
        node_env={0: alpha_env},
        CONSTELLATION_SNAPSHOT_INTERVAL_S="1",
        CONSTELLATION_PAYMENT_PROVIDERS=json.dumps({PROVIDER: {"ttl_ms": str(TTL_MS)}}),
    )
    yield cluster, hold
    cluster.stop()


def _payouts_hold(hold: Path) -> Path:
    return hold.with_name("hold-payouts")


def node_query(cluster: Cluster, index: int, sql: str, *args: object) -> list[tuple[object, ...]]:
    url = f"postgresql://postgres@127.0.0.1:5432/{cluster.nodes[index].database}"
    with psycopg.connect(url) as connection:
        return connection.execute(sql, args).fetchall()  # type: ignore[arg-type]


def vault_entries(cluster: Cluster, reference: str) -> list[tuple[str, int]]:
    """Returns (status, amount) of the vault's ledger entries with `reference`."""
    url = f"postgresql://postgres@127.0.0.1:5432/{cluster.ledger_database}"
    with psycopg.connect(url) as connection:
        rows = connection.execute(
            "SELECT status, amount FROM payments_ledgertransfer"
            " WHERE source = 'VAULT' AND reference = %s",
            (reference,),
        ).fetchall()
    return [(str(status), int(amount)) for status, amount in rows]


def vault_paid_out(cluster: Cluster, asset: str) -> int:
    """Returns everything the vault paid out in `asset` (applied entries out of it)."""
    url = f"postgresql://postgres@127.0.0.1:5432/{cluster.ledger_database}"
    with psycopg.connect(url) as connection:
        row = connection.execute(
            "SELECT COALESCE(SUM(amount), 0) FROM payments_ledgertransfer"
            " WHERE source = 'VAULT' AND asset = %s AND status = 'applied'",
            (asset,),
        ).fetchone()
    assert row is not None
    return int(row[0])


def test_a_withdrawal_final_but_not_persisted_is_not_paid_and_ends_once_after_a_crash(
    held: tuple[Cluster, Path],
) -> None:
    cluster, hold = held
    alice_key = KeyPair.random()
    payee = KeyPair.random().public_key_strkey
    deposited = 10 * UNIT
    amount = 4 * UNIT

    async def withdraw_in_the_window() -> int:
        alice = await ConstellationClient.connect(
            cluster.alpha.url, alice_key, constellation_id=pin(cluster)
        )
        await deposit(cluster, alice, "USD", "10")
        hold.touch()  # alpha persists nothing from here on
        result = await alice.withdraw(PROVIDER, "USD", amount, payee)
        assert result.ok, result.description
        withdrawal_id = int(result.apex)
        for index in (1, 2):  # both auditors executed and signed it: it is final at alpha
            await asyncio.to_thread(apex_reaches, cluster, index, withdrawal_id, 15)
        deadline = time.monotonic() + WINDOW_S
        while time.monotonic() < deadline:
            entries = await asyncio.to_thread(vault_entries, cluster, f"withdrawal:{withdrawal_id}")
            assert entries == [], f"paid before alpha persisted the withdrawal: {entries}"
            await asyncio.sleep(0.1)
        # The window was real: the auditors hold the quantum on disk, alpha does not.
        sql = "SELECT apex FROM quanta_quantumrecord WHERE apex = %s"
        for index in (1, 2):
            assert node_query(cluster, index, sql, withdrawal_id), index
        assert node_query(cluster, 0, sql, withdrawal_id) == []
        assert await asyncio.to_thread(ledger_balance, cluster, payee, "USD") == 0
        await asyncio.to_thread(cluster.kill_process, cluster.alpha, "engine")
        await alice.close()
        return withdrawal_id

    try:
        withdrawal_id = run(withdraw_in_the_window())
    finally:
        hold.unlink(missing_ok=True)  # also if it failed: the next test needs persistence
    restarted_ms = time.time_ns() // 1_000_000
    cluster.start_process(cluster.alpha, "engine")
    info = wait_for_restart(cluster, restarted_ms, "Ready", 60)
    assert int(str(info["apex"])) >= withdrawal_id, info  # recovered from the auditors

    # The withdrawal ends exactly once: paid (applied) or expired unpaid (cancelled).
    reference = f"withdrawal:{withdrawal_id}"
    deadline = time.monotonic() + SETTLE_S
    while True:
        entries = vault_entries(cluster, reference)
        pending = node_query(
            cluster,
            0,
            "SELECT withdrawal_id FROM payments_withdrawalrecord WHERE withdrawal_id = %s",
            withdrawal_id,
        )
        if entries and not pending:
            break
        assert time.monotonic() < deadline, (entries, pending)
        time.sleep(0.2)
    assert entries == [("applied", amount)], entries  # paid, once
    # Alpha holds the withdrawal's quantum on disk now (recovered, then persisted).
    assert node_query(
        cluster, 0, "SELECT apex FROM quanta_quantumrecord WHERE apex = %s", withdrawal_id
    )
    ledger_agrees(cluster, alice_key, payee, deposited, amount)


def vault_totals(cluster: Cluster) -> tuple[int, int]:
    """Returns the vault's USD balance and everything it paid out (a test's baseline)."""
    return ledger_balance(cluster, "VAULT", "USD"), vault_paid_out(cluster, "USD")


def ledger_agrees(
    cluster: Cluster,
    key: KeyPair,
    payee: str,
    deposited: int,
    paid: int,
    before: tuple[int, int] = (0, 0),
) -> None:
    """Checks that the payee got `paid`, the vault holds the rest (over `before`, what it held
    and had paid before the test), and the account owns what the vault holds (once its
    settlement is executed)."""

    async def agree() -> None:
        assert await asyncio.to_thread(ledger_balance, cluster, payee, "USD") == paid
        assert await asyncio.to_thread(vault_paid_out, cluster, "USD") == before[1] + paid
        vault = await asyncio.to_thread(ledger_balance, cluster, "VAULT", "USD")
        assert vault == before[0] + deposited - paid
        # The constellation debits exactly what the vault paid: the account owns the vault.
        # Its settlement comes back through the provider's notification (a quantum of its
        # own, after the vault moved): the account shows it once that is executed.
        alice = await ConstellationClient.connect(
            cluster.alpha.url, key, constellation_id=pin(cluster)
        )
        settled = {"USD": (deposited - paid, 0)}
        deadline = time.monotonic() + SETTLE_S
        while (seen := await balances(alice)) != settled and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        assert seen == settled
        await alice.close()

    run(agree())


def test_a_kill_of_alpha_between_signature_collection_and_submission_pays_once(
    held: tuple[Cluster, Path],
) -> None:
    """Alpha has the withdrawal final and on disk, with a majority of transaction signatures,
    but has not submitted it (payouts held) when it is killed (SIGKILL). The auditors hold
    the quantum too and send nothing again on their own; the restarted alpha must get their
    transaction signatures back and pay the withdrawal exactly once."""
    cluster, hold = held
    carol_key = KeyPair.random()
    payee = KeyPair.random().public_key_strkey
    deposited, amount = 10 * UNIT, 3 * UNIT
    payouts_hold = _payouts_hold(hold)
    before = vault_totals(cluster)

    async def withdraw_and_kill_before_submission() -> int:
        carol = await ConstellationClient.connect(
            cluster.alpha.url, carol_key, constellation_id=pin(cluster)
        )
        await deposit(cluster, carol, "USD", "10")
        payouts_hold.touch()  # alpha submits nothing from here on
        result = await carol.withdraw(PROVIDER, "USD", amount, payee)
        assert result.ok, result.description
        withdrawal_id = int(result.apex)
        for index in (1, 2):  # both auditors executed and signed it
            await asyncio.to_thread(apex_reaches, cluster, index, withdrawal_id, 15)
        sql = "SELECT apex FROM quanta_quantumrecord WHERE apex = %s"
        deadline = time.monotonic() + 15
        while not await asyncio.to_thread(node_query, cluster, 0, sql, withdrawal_id):
            assert time.monotonic() < deadline, "alpha did not persist the withdrawal"
            await asyncio.sleep(0.1)
        await asyncio.sleep(WINDOW_S)  # payout ticks with the signatures in hand, held
        assert await asyncio.to_thread(vault_entries, cluster, f"withdrawal:{withdrawal_id}") == []
        await asyncio.to_thread(cluster.kill_process, cluster.alpha, "engine")
        await carol.close()
        return withdrawal_id

    try:
        withdrawal_id = run(withdraw_and_kill_before_submission())
    finally:
        payouts_hold.unlink(missing_ok=True)
    restarted_ms = time.time_ns() // 1_000_000
    cluster.start_process(cluster.alpha, "engine")
    wait_for_restart(cluster, restarted_ms, "Ready", 60)
    reference = f"withdrawal:{withdrawal_id}"
    deadline = time.monotonic() + SETTLE_S
    while not (entries := vault_entries(cluster, reference)):
        assert time.monotonic() < deadline, "the withdrawal never settled"
        time.sleep(0.2)
    assert entries == [("applied", amount)], entries  # paid, not expired; and only once
    ledger_agrees(cluster, carol_key, payee, deposited, amount, before)


def test_a_withdrawal_no_auditor_received_is_kept_by_the_restarted_alpha_and_paid_once(
    held: tuple[Cluster, Path],
) -> None:
    """The other window: alpha executed and streamed the withdrawal, but no auditor received
    it (their herald links stopped, then killed) when alpha was killed. It was on alpha's
    journal before it left (group commit), so the restarted alpha keeps it at its apex: the
    auditors execute and sign it, every node holds that one quantum there, none is Failed, and
    it is paid once. Before the journal it was gone after the restart and alpha executed
    something else at its apex, where an auditor could have held it (the simulator's forks)."""
    cluster, _ = held
    bob_key = KeyPair.random()
    payee = KeyPair.random().public_key_strkey
    before = vault_totals(cluster)
    amount = 4 * UNIT

    async def withdraw_unseen() -> int:
        bob = await ConstellationClient.connect(
            cluster.alpha.url, bob_key, constellation_id=pin(cluster)
        )
        await deposit(cluster, bob, "USD", "10")
        for node in cluster.nodes[1:]:
            cluster.signal_process(node, "herald", signal.SIGSTOP)
        # Within the auditors' silence bound alpha still acknowledges (it cannot know yet).
        result = await bob.withdraw(PROVIDER, "USD", amount, payee)
        assert result.ok, result.description
        await asyncio.sleep(WINDOW_S)
        assert await asyncio.to_thread(vault_entries, cluster, f"withdrawal:{result.apex}") == []
        journaled = "SELECT apex FROM quanta_alphajournalrecord WHERE apex = %s"
        assert await asyncio.to_thread(node_query, cluster, 0, journaled, int(result.apex))
        await asyncio.to_thread(cluster.kill_process, cluster.alpha, "engine")
        await bob.close()
        return int(result.apex)

    withdrawal_id = run(withdraw_unseen())
    sql = "SELECT quantum_hash FROM quanta_quantumrecord WHERE apex = %s"
    assert node_query(cluster, 0, sql, withdrawal_id) == [], "not final when alpha was killed"
    for node in cluster.nodes[1:]:
        cluster.kill_process(node, "herald")  # what it had buffered is lost with it
    restarted_ms = time.time_ns() // 1_000_000
    cluster.start_process(cluster.alpha, "engine")
    for node in cluster.nodes[1:]:
        cluster.start_process(node, "herald")
    info = wait_for_restart(cluster, restarted_ms, "Ready", 60)
    assert int(str(info["apex"])) >= withdrawal_id, info  # kept from its journal

    reference = f"withdrawal:{withdrawal_id}"
    deadline = time.monotonic() + SETTLE_S
    while not (entries := vault_entries(cluster, reference)):
        assert time.monotonic() < deadline, "the kept withdrawal was never paid"
        time.sleep(0.2)
    assert entries == [("applied", amount)], entries  # paid, once
    for index in (1, 2):
        apex_reaches(cluster, index, withdrawal_id, 15)
    held_there = {tuple(node_query(cluster, i, sql, withdrawal_id)) for i in range(3)}
    assert len(held_there) == 1 and held_there != {()}, held_there  # one quantum everywhere
    states = [cluster.info(node)["state"] for node in cluster.nodes]
    assert "Failed" not in states, states
    # A connection learns its account id from alpha's snapshot rows, which reach bob's
    # account only once the snapshot batch holding it is all final (after the restart).
    registered = "SELECT id FROM exchange_accountrecord WHERE public_key = %s"
    while not node_query(cluster, 0, registered, bob_key.public_key):
        assert time.monotonic() < deadline + SETTLE_S, "bob's account never reached a snapshot"
        time.sleep(0.2)
    ledger_agrees(cluster, bob_key, payee, 10 * UNIT, amount, before)
