"""A settings update alone rotates every vault, a Stellar one (on the Horizon fake) and the
local ledger's, with real processes.

Goal (issue 18): replacing 1 of 3 auditors makes alpha build each vault's rotation into the
update's quantum (Stellar: the setOptions on the vault's next sequence); every auditor
validates them, the old signers sign each, alpha submits each: the vault on the fake then
answers to the new set (weight 1 each, threshold 2, the removed key at weight 0) and so does
the local one; a Stellar withdrawal before and one after are each paid exactly once (the fake
checks the signatures' weight: the second could only be paid by the new set), and the nodes in
force end with one state hash. Before: nothing built a Stellar rotation on an update (the
vault kept the old signers until the operators ran a setOptions by hand, every node reporting
it mismatched), and one update rotated one vault only (the result carried one signature).
Method: four nodes, the genesis lists three (alpha, A1, A2); v2 replaces A2 by N1. Bounded
waits on the fake, the ledger's database and the nodes' info.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from constellation_client import ConstellationClient
from quanta.core.keys import KeyPair
from quanta.core.xdr.schema import BalanceUpdateEffect, WithdrawalRemoveEffect
from tests.cluster.conftest import run
from tests.cluster.pins import pin
from tests.cluster.stellar_fake import (
    PROVIDER_ID,
    USD_FEE_MIN,
    VAULT_SEQUENCE,
    StellarFake,
    fake_vault_signers,
    stellar_cluster_started,
)
from tests.cluster.test_payments import until_effect
from tests.cluster.test_vault_rotation_flow import shut_down, update_to, wait_for_vault
from tools.cluster import Cluster

pytestmark = pytest.mark.cluster

UNIT = 10_000_000
ALPHA, A1, A2, N1 = range(4)


@pytest.fixture(scope="module")
def stellar_four(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Cluster, StellarFake]]:
    yield from stellar_cluster_started(
        4, tmp_path_factory, 3, with_local=True, CONSTELLATION_SNAPSHOT_INTERVAL_S="1"
    )


def wait_for_fake_vault(
    cluster: Cluster, stellar: StellarFake, indexes: tuple[int, ...], timeout_s: float
) -> None:
    wanted = ({cluster.nodes[i].keypair.public_key for i in indexes}, len(indexes) // 2 + 1)
    deadline = time.monotonic() + timeout_s
    while (found := fake_vault_signers(stellar.fake, stellar.vault)) != wanted:
        assert time.monotonic() < deadline, f"vault {found}, wanted {wanted}"
        time.sleep(0.2)


async def paid_once(client: ConstellationClient, stellar: StellarFake, payee: str) -> None:
    """Withdraws 10 USD to `payee` (a refusal naming the vault, in the instant before the
    rotation is seen applied, is retried, bounded) and waits until it settled, once."""
    deadline = time.monotonic() + 30
    while True:
        result = await client.withdraw(PROVIDER_ID, "USD", 10 * UNIT, payee, fee=USD_FEE_MIN)
        if result.ok:
            break
        assert "vault" in str(result.description), result.description
        assert time.monotonic() < deadline, result.description
        await asyncio.sleep(0.2)
    assert await result.wait_final(10)
    removed = await until_effect(client, WithdrawalRemoveEffect, 30)
    assert isinstance(removed, WithdrawalRemoveEffect) and removed.is_successful
    assert stellar.balance(payee, "USD") == 10 * UNIT


def test_an_update_of_the_auditors_rotates_the_stellar_and_the_local_vault(
    stellar_four: tuple[Cluster, StellarFake],
) -> None:
    cluster, stellar = stellar_four
    wait_for_fake_vault(cluster, stellar, (ALPHA, A1, A2), 1)
    alice_key = KeyPair.random()
    stellar.account_create(alice_key.public_key_strkey, usd="1000")
    payees = [KeyPair.random().public_key_strkey for _ in range(2)]
    for payee in payees:
        stellar.account_create(payee)

    async def before() -> None:
        alice = await ConstellationClient.connect(
            cluster.alpha.url, alice_key, constellation_id=pin(cluster)
        )
        await asyncio.to_thread(stellar.pay_vault, alice_key, "USD", "100")
        await until_effect(alice, BalanceUpdateEffect, 30)
        await paid_once(alice, stellar, payees[0])
        await alice.close()

    run(before())
    wait_for_vault(cluster, (ALPHA, A1, A2), 30)  # the local vault, opened by alpha
    update_to(cluster, (ALPHA, A1, N1), (A1, A2))
    wait_for_fake_vault(cluster, stellar, (ALPHA, A1, N1), 60)
    wait_for_vault(cluster, (ALPHA, A1, N1), 60)
    vault = stellar.fake.accounts[stellar.vault]
    assert vault.sequence == VAULT_SEQUENCE + 2  # the payout, then the rotation
    shut_down(cluster, (A2,))
    deadline = time.monotonic() + 30
    while any(cluster.info(cluster.nodes[i]).get("vault_mismatches") for i in (ALPHA, A1, N1)):
        assert time.monotonic() < deadline, "a node still reports the vault mismatched"
        time.sleep(0.2)

    async def after() -> None:
        alice = await ConstellationClient.connect(
            cluster.alpha.url, alice_key, constellation_id=pin(cluster)
        )
        await paid_once(alice, stellar, payees[1])
        await alice.close()

    run(after())
    for payee in payees:
        assert len(stellar.payments_to(payee)) == 1  # each paid once
    assert stellar.fake.accounts[stellar.vault].sequence == VAULT_SEQUENCE + 3
    remaining = [cluster.nodes[i] for i in (ALPHA, A1, N1)]
    deadline = time.monotonic() + 60
    while True:
        infos = [cluster.info(node) for node in remaining]
        if len({info.get("snapshot_apex") for info in infos}) == 1:
            break
        assert time.monotonic() < deadline, infos
        time.sleep(0.2)
    assert len({str(info["snapshot_state_hash"]) for info in infos}) == 1, infos
