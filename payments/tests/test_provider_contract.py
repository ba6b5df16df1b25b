"""One behavioural suite run against every payment provider.

`ProviderContract` is deliberately not a test class: each provider gets a small subclass that
says how to reach its network (the local ledger's database; a fake of Horizon for Stellar,
which is unreachable here) and how to read the network's side of the story.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from payments.core.provider import PaymentProvider, PaymentSubmitError
from payments.providers.local_ledger.ledger import faucet_deposit, ledger_balance
from payments.providers.local_ledger.provider import LocalLedgerProvider
from payments.providers.stellar import StellarProvider
from payments.tests.fake_horizon import FakeAccount, FakeHorizon
from quanta.core.keys import KeyPair
from quanta.core.status import ConstellationError
from quanta.core.testing import keypair
from quanta.core.xdr.schema import (
    DepositQuantum,
    PaymentResult,
    ProviderAsset,
    ProviderSettings,
    WithdrawalRequest,
)

NODES = [keypair(i) for i in range(3)]
SIGNERS = tuple(k.public_key for k in NODES)
PAYER = keypair(20)
DESTINATION = keypair(21)
AMOUNT = 25_000_000  # 2.5 units


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class ProviderContract:
    """What every provider must do; subclasses supply `provider`, `deposit`, `paid_to`."""

    def provider(self, node: KeyPair) -> PaymentProvider:
        raise NotImplementedError

    def deposit(self, payer: KeyPair, amount: int) -> None:
        raise NotImplementedError

    def paid_to(self, destination: KeyPair) -> int:
        raise NotImplementedError

    def request(self, amount: int = AMOUNT) -> WithdrawalRequest:
        destination = DESTINATION.public_key_strkey
        return WithdrawalRequest(
            1, PAYER.public_key, 2, self.provider_id, "USD", amount, destination, 0
        )

    @property
    def provider_id(self) -> str:
        return self.provider(NODES[0]).provider_id

    def built(self, apex: int = 40, amount: int = AMOUNT) -> tuple[int, bytes]:
        timestamp = _now_ms()
        return timestamp, self.provider(NODES[0]).build_withdrawal(
            apex, timestamp, self.request(amount)
        )

    # --- withdrawals -----------------------------------------------------------------------

    def test_every_node_validates_the_transaction_alpha_built(self) -> None:
        timestamp, tx = self.built()
        for node in NODES:
            self.provider(node).validate_withdrawal(40, timestamp, self.request(), tx)

    def test_a_transaction_for_another_request_or_apex_is_refused(self) -> None:
        timestamp, tx = self.built()
        auditor = self.provider(NODES[1])
        with pytest.raises(ConstellationError):
            auditor.validate_withdrawal(41, timestamp, self.request(), tx)
        with pytest.raises(ConstellationError):
            auditor.validate_withdrawal(40, timestamp, self.request(AMOUNT + 1), tx)
        with pytest.raises(ConstellationError):
            auditor.validate_withdrawal(40, timestamp, self.request(), b"garbage")

    def test_a_transaction_valid_too_long_or_already_expired_is_refused(self) -> None:
        timestamp, tx = self.built()
        auditor = self.provider(NODES[1])
        with pytest.raises(ConstellationError, match="validity"):
            auditor.validate_withdrawal(40, timestamp + 600_000, self.request(), tx)
        with pytest.raises(ConstellationError, match="validity"):
            auditor.validate_withdrawal(40, timestamp - 7_200_000, self.request(), tx)

    def test_signatures_verify_only_for_vault_signers_and_the_same_bytes(self) -> None:
        _, tx = self.built()
        _, other = self.built(apex=41)
        alpha = self.provider(NODES[0])
        signature = self.provider(NODES[1]).sign_withdrawal(tx)
        assert alpha.signature_valid(tx, signature)
        assert not alpha.signature_valid(other, signature)
        stranger = self.provider(keypair(30)).sign_withdrawal(tx)
        assert not alpha.signature_valid(tx, stranger)

    def test_a_majority_of_signatures_pays_out_and_the_vault_reports_it(self) -> None:
        self.deposit(PAYER, 3 * AMOUNT)
        alpha = self.provider(NODES[0])
        cursor = alpha.notification_after("0", _now_ms() + 1).cursor
        _, tx = self.built()
        signatures = [self.provider(n).sign_withdrawal(tx) for n in NODES[:2]]
        alpha.submit_withdrawal(tx, signatures)
        assert self.paid_to(DESTINATION) == AMOUNT
        seen = alpha.notification_after(cursor, _now_ms() + 1)
        kept = seen.keeping(alpha.pending_hashes({40: tx}))
        assert [(o.withdrawal_id, o.result) for o in kept.withdrawals] == [
            (40, PaymentResult.SUCCESS)
        ]
        _, look_alike = self.built(amount=AMOUNT - 1)
        assert seen.keeping(alpha.pending_hashes({40: look_alike})).withdrawals == ()
        body = DepositQuantum(self.provider_id, kept.cursor, kept.items, kept.withdrawals)
        self.provider(NODES[1]).validate_notification(body, cursor, {40: tx})
        with pytest.raises(PaymentSubmitError) as refused:
            alpha.submit_withdrawal(tx, signatures)  # Never twice.
        assert refused.value.permanent
        assert self.paid_to(DESTINATION) == AMOUNT

    def test_a_minority_of_signatures_pays_nothing(self) -> None:
        self.deposit(PAYER, 3 * AMOUNT)
        _, tx = self.built()
        signature = self.provider(NODES[0]).sign_withdrawal(tx)
        with pytest.raises(PaymentSubmitError):
            self.provider(NODES[0]).submit_withdrawal(tx, [signature, signature])
        assert self.paid_to(DESTINATION) == 0

    # --- deposits --------------------------------------------------------------------------

    def test_a_deposit_is_reported_after_the_cursor_and_checked_by_auditors(self) -> None:
        self.deposit(PAYER, AMOUNT)
        alpha = self.provider(NODES[0])
        seen = alpha.notification_after("0", _now_ms() + 1)
        assert [(i.destination, i.asset, i.amount) for i in seen.items] == [
            (PAYER.public_key, "USD", AMOUNT)
        ]
        assert alpha.compare_cursors(seen.cursor, "0") == 1
        body = DepositQuantum(self.provider_id, seen.cursor, seen.items, seen.withdrawals)
        self.provider(NODES[1]).validate_notification(body, "0", {})
        assert alpha.notification_after(seen.cursor, _now_ms() + 1).is_empty
        forged = DepositQuantum(self.provider_id, seen.cursor, seen.items * 2, ())
        with pytest.raises(ConstellationError):
            self.provider(NODES[2]).validate_notification(forged, "0", {})

    def test_a_deposit_younger_than_the_submit_delay_waits(self) -> None:
        self.deposit(PAYER, AMOUNT)
        alpha = self.provider(NODES[0])
        assert alpha.notification_after("0", _now_ms() - 60_000).is_empty


def _settings(provider_type: str, name: str, vault: str, token: str) -> ProviderSettings:
    return ProviderSettings(
        provider_type, name, vault, "0", (ProviderAsset(token, "USD", False),), 0
    )


@pytest.mark.django_db(databases=["default", "ledger"])
class TestLocalLedgerProvider(ProviderContract):
    settings = _settings("local", "vault", "VAULT", "USD")

    def provider(self, node: KeyPair) -> PaymentProvider:
        provider = LocalLedgerProvider(self.settings, node, SIGNERS)
        provider.prepare()
        return provider

    def deposit(self, payer: KeyPair, amount: int) -> None:
        self.provider(NODES[0]).prepare()
        faucet_deposit(payer.public_key_strkey, "VAULT", "USD", amount)

    def paid_to(self, destination: KeyPair) -> int:
        return ledger_balance(destination.public_key_strkey, "USD")


VAULT = keypair(50)


@pytest.fixture(scope="module")
def horizon() -> Iterator[FakeHorizon]:
    with FakeHorizon() as fake:
        yield fake


class TestStellarProvider(ProviderContract):
    settings = _settings("stellar", "main", VAULT.public_key_strkey, "XLM")

    @pytest.fixture(autouse=True)
    def _network(self, horizon: FakeHorizon) -> None:
        horizon.payments.clear()
        signers = [k.public_key_strkey for k in NODES]
        horizon.account_add(FakeAccount(VAULT.public_key_strkey, 1_000, signers, 2))
        self.horizon = horizon

    def provider(self, node: KeyPair) -> PaymentProvider:
        options = {"horizon_url": self.horizon.url}
        provider = StellarProvider(self.settings, node, SIGNERS, options)
        provider.prepare()
        return provider

    def deposit(self, payer: KeyPair, amount: int) -> None:
        self.horizon.pay(payer.public_key_strkey, VAULT.public_key_strkey, str(amount / 10**7))

    def paid_to(self, destination: KeyPair) -> int:
        return sum(
            round(float(p["amount"]) * 10**7)
            for p in self.horizon.payments
            if p["to"] == destination.public_key_strkey
        )
