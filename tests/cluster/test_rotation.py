"""Replacing 2 of 3 auditors on a running constellation, with real processes.

Goal: show that a settings update replacing a majority of the auditors finalizes and that the
constellation goes on finalizing with the new auditors alone once the old ones are shut down.
Before alpha's herald admitted the keys of the settings in force at its engine, it admitted
only those of settings persisted as final; the update is finalized by the new auditors, which
were refused (4403) until it was final: it never was, and nothing after it finalized.
Method: five node processes sets, of which the genesis settings list three (alpha, A1, A2);
N1 and N2 run from the start, refused by alpha's herald, as new machines of an operator would.
A1 and A2 sign an update to (alpha, N1, N2); then A1 and A2 are stopped and payments must
still finalize; every remaining node ends Ready with one state hash. Bounded waits.
The last test takes the vault from there (issue 18): the update's own rotation, signed by
the old majority (alpha and the removed auditors, with their results for its quantum), has
put the vault in the new set's hands with no `manage.py vault_rotate`; the removed keys are
refused, and the new set pays a withdrawal out once.
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
from tests.cluster.pins import pin
from tests.cluster.test_payments import ledger_balance
from tools.cluster import Cluster, free_base_port, http_post_json, wait_for_state

pytestmark = pytest.mark.cluster

UNIT = 10_000_000


@pytest.fixture(scope="module")
def five(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    name = f"rot{time.time_ns() % 1_000_000}"
    cluster = Cluster(
        5,
        name=name,
        base_port=free_base_port(5, 21_000),
        workdir=tmp_path_factory.mktemp(name),
        # The refused update waits this long for its ghost auditors (the default is 20 s); the
        # real new auditors of the rotation connect within a second or two.
        extra_env={
            "CONSTELLATION_SNAPSHOT_INTERVAL_S": "1",
            "CONSTELLATION_UPDATE_AUDITORS_WAIT_S": "8",
        },
    )
    yield from genesis_started(cluster, cluster.nodes[:3])


def wait_for_version(cluster: Cluster, version: int, nodes: list[int], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        infos = [cluster.info(cluster.nodes[i]) for i in nodes]
        if all(info.get("settings_version") == version for info in infos):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"settings v{version} not final everywhere: {infos}")
        time.sleep(0.2)


def rotation(cluster: Cluster) -> ConstellationUpdate:
    """Returns the update that replaces A1 and A2 by N1 and N2."""
    current = settings_from_json(cluster.info())
    alpha, n1, n2 = cluster.nodes[0], cluster.nodes[3], cluster.nodes[4]
    auditors = tuple(AuditorSettings(node.keypair.public_key, node.url) for node in (alpha, n1, n2))
    settings = dataclasses.replace(current, version=current.version + 1, auditors=auditors)
    return ConstellationUpdate(int(time.time()), settings)


async def funded(cluster: Cluster, amount: str) -> ConstellationClient:
    keypair = KeyPair.random()
    client = await ConstellationClient.connect(
        cluster.alpha.url, keypair, constellation_id=pin(cluster)
    )
    await asyncio.to_thread(cluster.faucet, keypair.public_key_strkey, "USD", amount)
    notification = await client.next_notification(timeout_s=30)
    assert notification is not None and notification.finalized
    return client


def test_an_update_whose_new_auditors_are_not_there_is_refused_and_nothing_stalls(
    five: Cluster,
) -> None:
    # Executed anyway, it would wait for signatures that never come, and so would everything
    # after it: refused with a reason instead, after the bounded wait for the auditors.
    current = settings_from_json(five.info())
    ghosts = [KeyPair.random(), KeyPair.random()]
    auditors = (
        current.auditors[0],
        *(AuditorSettings(k.public_key, "http://127.0.0.1:9") for k in ghosts),
    )
    settings = dataclasses.replace(current, version=current.version + 1, auditors=auditors)
    update = ConstellationUpdate(int(time.time()), settings)
    signers = [five.nodes[1].keypair, five.nodes[2].keypair]
    cid = five.constellation_id()
    envelope = encode(update_envelope(update, [update_sign(update, k, cid) for k in signers]))
    body = json.dumps({"envelope": base64.b64encode(envelope).decode()})
    answer = http_post_json(f"{five.alpha.url}/api/constellation/update", body)
    assert answer["status"] == 450, answer
    assert "could not finalize" in str(answer["description"]), answer
    assert "not connected" in str(answer["description"]), answer
    assert five.info()["settings_version"] == current.version

    async def still_finalizing() -> None:
        alice = await funded(five, "5")
        await alice.close()

    run(still_finalizing())


def test_replacing_two_of_three_auditors_finalizes_and_the_new_set_carries_on(
    five: Cluster,
) -> None:
    async def scenario() -> None:
        alice = await funded(five, "50")
        bob = await funded(five, "50")
        before = await alice.pay(bob.public_key, "USD", UNIT)
        assert before.ok and await before.wait_final(15), before.description

        update = rotation(five)
        signers = [five.nodes[1].keypair, five.nodes[2].keypair]
        cid = await asyncio.to_thread(five.constellation_id)
        signatures = [update_sign(update, k, cid) for k in signers]
        envelope = encode(update_envelope(update, signatures))
        body = json.dumps({"envelope": base64.b64encode(envelope).decode()})
        url = f"{five.alpha.url}/api/constellation/update"
        answer = await asyncio.to_thread(http_post_json, url, body)
        assert answer["status"] == 200, answer
        await asyncio.to_thread(wait_for_version, five, 2, [0, 3, 4], 60)

        for old in five.nodes[1:3]:
            for process in list(old.processes):
                await asyncio.to_thread(five.kill_process, old, process)
        # Bob stayed connected: his client follows the settings chain when the new auditors'
        # signatures fail under the keys it took at connect (docs/client.md, Rotation).
        back = await bob.pay(alice.public_key, "USD", UNIT)
        assert back.ok and await back.wait_final(15), "a connected client follows the rotation"
        assert bob.constellation.version == 2
        # A new session verifies the whole chain, rotation included, from the pin.
        keypair = alice.keypair
        await alice.close()
        alice = await ConstellationClient.connect(
            five.alpha.url, keypair, constellation_id=pin(five)
        )
        for _ in range(5):
            after = await alice.pay(bob.public_key, "USD", UNIT)
            assert after.ok, after.description
            assert await after.wait_final(15), "the new auditors must finalize alone"
            signers_seen = {s.auditor_index for s in after.message.payload_proof.signatures}
            assert signers_seen >= {0} and signers_seen & {1, 2}, signers_seen
        for index in (0, 3, 4):
            await asyncio.to_thread(wait_for_state, five, "Ready", 30, five.nodes[index])
        await alice.close()
        await bob.close()

    run(scenario())
    deadline = time.monotonic() + 60
    while True:
        infos = [five.info(five.nodes[i]) for i in (0, 3, 4)]
        if len({info.get("snapshot_apex") for info in infos}) == 1:
            break
        assert time.monotonic() < deadline, infos
        time.sleep(0.2)
    assert len({str(info["snapshot_state_hash"]) for info in infos}) == 1, infos


def vault_signers(cluster: Cluster) -> tuple[list[str], int] | None:
    """Returns the local vault's signers (sorted strkeys) and threshold on the ledger."""
    url = f"postgresql://postgres@127.0.0.1:5432/{cluster.ledger_database}"
    with psycopg.connect(url) as connection:
        row = connection.execute(
            "SELECT signers, threshold FROM payments_ledgeraccount WHERE address = 'VAULT'"
        ).fetchone()
    return None if row is None else (sorted(row[0]), int(row[1]))


def wait_for_mismatch(cluster: Cluster, nodes: list[int], present: bool, timeout_s: float) -> None:
    """Waits until every node in `nodes` reports (or no longer reports) the local vault as
    not answering to the settings in force."""
    deadline = time.monotonic() + timeout_s
    while True:
        infos = [cluster.info(cluster.nodes[i]) for i in nodes]
        seen = ["local-vault" in dict(info.get("vault_mismatches") or {}) for info in infos]
        if all(s == present for s in seen):
            return
        assert time.monotonic() < deadline, [i.get("vault_mismatches") for i in infos]
        time.sleep(0.2)


def test_after_the_replacement_the_vault_answers_to_the_new_set_without_an_operator(
    five: Cluster, tmp_path: Path
) -> None:
    """After the test above (alpha, N1, N2 in force; A1, A2 shut down): the update's own
    rotation, signed by alpha and the removed A1/A2 with their results for its quantum, was
    submitted once it was final and persisted; so the vault answers to the new set with no
    `vault_rotate` (before, every node reported it mismatched and nothing was paid out until
    the old majority's operators ran that command). The removed keys can no longer move it,
    and the new set pays a withdrawal out exactly once."""
    assert five.info()["settings_version"] == 2, "runs after the replacement above"
    wanted = sorted(five.nodes[i].keypair.public_key_strkey for i in (0, 3, 4))
    deadline = time.monotonic() + 30
    while (found := vault_signers(five)) != (wanted, 2):
        assert time.monotonic() < deadline, found
        time.sleep(0.2)
    payee = KeyPair.random().public_key_strkey

    def sign_files(indexes: tuple[int, ...]) -> list[str]:
        args = []
        for index in indexes:
            path = tmp_path / f"node{index}.secret"
            path.write_text(five.nodes[index].keypair.secret)
            args += ["--sign-file", str(path)]
        return args

    def rotate(signers: tuple[int, ...], old: tuple[int, ...], reference: str) -> None:
        keys = [a for i in signers for a in ("--signer", five.nodes[i].keypair.public_key_strkey)]
        five.manage(five.alpha, "vault_rotate", *keys, *sign_files(old), "--reference", reference)

    async def scenario() -> None:
        alice = await funded(five, "20")
        with pytest.raises(subprocess.CalledProcessError):  # the removed keys: refused
            await asyncio.to_thread(rotate, (0, 1, 2), (1, 2), "3")
        await asyncio.to_thread(wait_for_mismatch, five, [0], False, 30)
        deadline = time.monotonic() + 30
        while not (paid := await alice.withdraw("local-vault", "USD", UNIT, payee)).ok:
            assert "vault" in str(paid.description) and time.monotonic() < deadline, paid
            await asyncio.sleep(0.2)  # alpha's payout tick has not looked at the vault yet
        assert await paid.wait_final(15)
        deadline = time.monotonic() + 30
        while (got := await asyncio.to_thread(ledger_balance, five, payee, "USD")) != UNIT:
            assert time.monotonic() < deadline, got
            await asyncio.sleep(0.2)
        await alice.close()

    run(scenario())
    assert ledger_balance(five, payee, "USD") == UNIT  # once
