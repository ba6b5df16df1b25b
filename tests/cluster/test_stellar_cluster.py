"""Funds in and out of a real local constellation (alpha + 2 auditors) through a Stellar
vault on the Horizon fake, with the real Python client.

Goal: show the Stellar provider working with real node processes: every node finds the
vault answering to the auditors; a payment into the vault on the fake (a transaction signed
by the payer: its source key is the account credited) is credited on that account; a
withdrawal to an account on the fake is signed by the auditors, submitted by alpha and paid
exactly once (the destination's balance rises once by the amount, the vault's sequence once,
also after further polls), and the client sees it settle; all nodes end with one state hash.
Method: one cluster and one fake for the module (tests/cluster/stellar_fake.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from constellation_client import ConstellationClient
from payments.providers.stellar import amount_units
from quanta.core.keys import KeyPair
from quanta.core.xdr.schema import (
    BalanceUpdateEffect,
    WithdrawalCreateEffect,
    WithdrawalRemoveEffect,
)
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
from tests.cluster.test_consensus import converged_state_hashes
from tests.cluster.test_payments import balances, until_effect
from tools.cluster import Cluster

pytestmark = pytest.mark.cluster

UNIT = 10_000_000


@pytest.fixture(scope="module")
def stellar_trio(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Cluster, StellarFake]]:
    """Alpha and two auditors (majority 2) whose only provider is the fake's Stellar vault."""
    yield from stellar_cluster_started(3, tmp_path_factory, CONSTELLATION_SNAPSHOT_INTERVAL_S="1")


def test_the_vault_answers_to_the_auditors_on_every_node(
    stellar_trio: tuple[Cluster, StellarFake],
) -> None:
    cluster, stellar = stellar_trio
    auditors = {node.keypair.public_key for node in cluster.nodes}
    assert fake_vault_signers(stellar.fake, stellar.vault) == (auditors, 2)
    for node in cluster.nodes:
        assert not cluster.info(node).get("vault_mismatches"), node.index


def test_a_stellar_deposit_is_credited_and_a_withdrawal_paid_once(
    stellar_trio: tuple[Cluster, StellarFake],
) -> None:
    cluster, stellar = stellar_trio
    alice_key = KeyPair.random()
    stellar.account_create(alice_key.public_key_strkey, usd="1000", xlm="10")
    payee = KeyPair.random().public_key_strkey
    stellar.account_create(payee)

    async def scenario() -> None:
        alice = await ConstellationClient.connect(
            cluster.alpha.url, alice_key, constellation_id=pin(cluster)
        )
        await asyncio.to_thread(stellar.pay_vault, alice_key, "USD", "100")
        await until_effect(alice, BalanceUpdateEffect, 30)
        assert await balances(alice) == {"USD": (100 * UNIT, 0)}

        result = await alice.withdraw(PROVIDER_ID, "USD", 25 * UNIT, payee, fee=USD_FEE_MIN)
        assert result.ok, result.description
        assert await result.wait_final(10)
        assert result.effects is not None
        (created,) = [e for e in result.effects.effects if isinstance(e, WithdrawalCreateEffect)]
        removed = await until_effect(alice, WithdrawalRemoveEffect, 30)
        assert isinstance(removed, WithdrawalRemoveEffect) and removed.is_successful
        assert removed.withdrawal_id == created.withdrawal_id
        assert await balances(alice) == {"USD": (75 * UNIT - USD_FEE_MIN, 0)}

        # Another deposit (the native asset) after the payout settled: alpha polled the vault
        # and ticked its payouts again meanwhile, so a second submission had its chance.
        await asyncio.to_thread(stellar.pay_vault, alice_key, "XLM", "2")
        await until_effect(alice, BalanceUpdateEffect, 30)
        assert await balances(alice) == {"USD": (75 * UNIT - USD_FEE_MIN, 0), "XLM": (2 * UNIT, 0)}
        await alice.close()

        (payout,) = stellar.payments_to(payee)
        assert payout["from"] == stellar.vault
        assert amount_units(str(payout["amount"])) == 25 * UNIT
        transaction = payout["transaction"]
        assert isinstance(transaction, dict)
        assert transaction["memo"] == str(created.withdrawal_id)
        assert stellar.balance(payee, "USD") == 25 * UNIT
        assert stellar.balance(alice_key.public_key_strkey, "USD") == 900 * UNIT
        assert stellar.balance(stellar.vault, "USD") == 75 * UNIT
        assert stellar.balance(stellar.vault, "XLM") == 2 * UNIT  # The fake charges no fees.
        assert stellar.fake.accounts[stellar.vault].sequence == VAULT_SEQUENCE + 1

    run(scenario())
    assert len(converged_state_hashes(cluster)) == 1
