"""Proof of reserves: each vault read as of a cursor, and the report at the persisted apex.

Method: the local ledger (its real database) and the Horizon fake (named a fake: Horizon is
unreachable here) receive payments before and after a cursor; the vault as of the cursor must
leave out everything after it. The report is read from a real persisted snapshot of a real
engine (`quanta.tests.test_persist.SnapshotChain`) whose deposits are ledger transfers and
whose withdrawal with a fee is paid on the ledger: liabilities (accounts + fee account) must
equal the vault, and an uncredited payment must show as a positive difference.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest
from django.db import transaction
from django.test import Client

from payments.models import LedgerTransfer
from payments.providers.local_ledger.ledger import faucet_deposit, journal_advance
from payments.reserves import reserves_report
from payments.tests.fake_horizon import FakeAccount, FakeHorizon
from payments.vaults import VaultUnreadableError, vault_balances_at
from quanta.core.testing import PROVIDER_ID, deposit_quantum, keypair, withdrawal_quantum
from quanta.core.xdr.schema import ProviderAsset, ProviderSettings, WithdrawalRequest
from quanta.tests.test_persist import SnapshotChain

pytestmark = pytest.mark.django_db(databases=["default", "ledger"])

UNIT = 10_000_000
ALICE = keypair(1)
LOCAL = ProviderSettings(
    "local", "vault", "VAULT", "0", tuple(ProviderAsset(c, c, False) for c in ("USD", "XLM")), 0
)
STELLAR_VAULT = keypair(60).public_key_strkey
STELLAR = ProviderSettings(
    "stellar", "main", STELLAR_VAULT, "0", (ProviderAsset("XLM", "XLM", False),), 0
)


def test_the_local_vault_is_read_as_of_the_cursor() -> None:
    first = faucet_deposit(ALICE.public_key_strkey, "VAULT", "XLM", 5 * UNIT)
    faucet_deposit(ALICE.public_key_strkey, "VAULT", "XLM", 7 * UNIT)
    assert vault_balances_at(LOCAL, str(first)) == {"USD": 0, "XLM": 5 * UNIT}
    assert vault_balances_at(LOCAL, "999999") == {"USD": 0, "XLM": 12 * UNIT}


@pytest.fixture
def horizon() -> Iterator[FakeHorizon]:
    with FakeHorizon() as fake:
        fake.account_add(FakeAccount(STELLAR_VAULT, 7_000))
        yield fake


def test_the_stellar_vault_is_read_as_of_the_cursor(horizon: FakeHorizon) -> None:
    payer = keypair(2).public_key_strkey
    cursor = horizon.pay(payer, STELLAR_VAULT, "10.0000000")
    horizon.pay(payer, STELLAR_VAULT, "2.5000000")
    horizon.pay(STELLAR_VAULT, payer, "1.0000000", memo_id=9)
    options = {"horizon_url": horizon.url}
    assert vault_balances_at(STELLAR, cursor, options) == {"XLM": 10 * UNIT}
    assert vault_balances_at(STELLAR, "999999999", options) == {"XLM": 115 * UNIT // 10}


def test_an_unreachable_horizon_is_said_not_guessed() -> None:
    with pytest.raises(VaultUnreadableError, match="Horizon"):
        vault_balances_at(STELLAR, "0", {"horizon_url": "http://127.0.0.1:9/"})


def _paid_withdrawal(chain: SnapshotChain, amount: int, fee: int) -> None:
    request = WithdrawalRequest(
        1, ALICE.public_key, chain._nonce(ALICE), PROVIDER_ID, "XLM", amount, "G", fee
    )
    created = chain.run(withdrawal_quantum(request, ALICE, chain.constellation_id))
    with transaction.atomic(using="ledger"):
        position = journal_advance()
        LedgerTransfer.objects.create(
            source="VAULT",
            destination="G",
            asset="XLM",
            amount=Decimal(amount),
            reference=f"withdrawal:{created.apex}",
            tx_hash=b"t" * 32,
            position=position,
        )
    chain.run(deposit_quantum(position, withdrawals=[(created.apex, True)]))


def test_the_report_shows_liabilities_equal_to_the_vault() -> None:
    chain = SnapshotChain()
    usd = faucet_deposit(ALICE.public_key_strkey, "VAULT", "USD", 1_000 * UNIT)
    chain.run(deposit_quantum(usd, [(ALICE, "USD", 1_000 * UNIT)]))
    xlm = faucet_deposit(ALICE.public_key_strkey, "VAULT", "XLM", 500 * UNIT)
    chain.run(deposit_quantum(xlm, [(ALICE, "XLM", 500 * UNIT)]))
    _paid_withdrawal(chain, 100 * UNIT, 3 * UNIT)
    chain.persist()
    faucet_deposit(ALICE.public_key_strkey, "VAULT", "XLM", 9 * UNIT)  # after the apex
    report = reserves_report()
    assert report is not None
    assert report.apex == chain.engine.state.apex
    assert report.state_hash == chain.engine.state.state_hash()
    rows = {row.asset: row for row in report.assets}
    assert (rows["XLM"].accounts, rows["XLM"].fee_account) == (397 * UNIT, 3 * UNIT)
    assert rows["XLM"].vault_total == 400 * UNIT
    assert rows["XLM"].difference == 0
    assert rows["USD"].difference == 0
    assert [v.provider for v in rows["XLM"].vaults] == [PROVIDER_ID]


def test_the_endpoint_answers_409_before_the_first_snapshot() -> None:
    response = Client().get("/api/constellation/reserves")
    assert response.status_code == 409
    assert "snapshot" in response.json()["description"]
    # Public: a page that followed an alpha replacement reads the new alpha's (any origin).
    assert response["Access-Control-Allow-Origin"] == "*"


def test_the_endpoint_gives_amounts_as_text_and_the_state_hash() -> None:
    chain = SnapshotChain()
    usd = faucet_deposit(ALICE.public_key_strkey, "VAULT", "USD", 1_000 * UNIT)
    chain.run(deposit_quantum(usd, [(ALICE, "USD", 1_000 * UNIT)]))
    chain.persist()
    body = Client().get("/api/constellation/reserves").json()
    assert body["state_hash"] == chain.engine.state.state_hash().hex()
    usd_row = next(row for row in body["assets"] if row["asset"] == "USD")
    assert usd_row["liabilities"] == usd_row["vault"] == str(1_000 * UNIT)
    assert usd_row["difference"] == "0"


def test_the_info_endpoint_shows_the_fee_account() -> None:
    chain = SnapshotChain()
    xlm = faucet_deposit(ALICE.public_key_strkey, "VAULT", "XLM", 500 * UNIT)
    chain.run(deposit_quantum(xlm, [(ALICE, "USD", 100 * UNIT), (ALICE, "XLM", 500 * UNIT)]))
    _paid_withdrawal(chain, 10 * UNIT, 2 * UNIT)
    chain.persist()
    response = Client().get("/api/constellation/info")
    assert response.json()["fee_account"] == {"XLM": str(2 * UNIT)}
    assert response["Access-Control-Allow-Origin"] == "*"  # read by a page that followed
