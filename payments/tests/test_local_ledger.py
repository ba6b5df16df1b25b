"""The local ledger's own rules, on its real database."""

from __future__ import annotations

import pytest

from payments.core.local_ledger import (
    LedgerRuleError,
    transaction_encode,
    transaction_sign,
    withdrawal_transaction,
)
from payments.models import LedgerAccount
from payments.providers.local_ledger.ledger import (
    faucet_deposit,
    ledger_balance,
    ledger_now_ms,
    ledger_transfer,
    vault_cancel,
    vault_open,
    vault_submit,
)
from payments.providers.local_ledger.provider import LocalLedgerProvider
from quanta.core.testing import keypair
from quanta.core.xdr.schema import PaymentResult, ProviderAsset, ProviderSettings

pytestmark = pytest.mark.django_db(databases=["default", "ledger"])

NODES = [keypair(i) for i in range(3)]
SIGNERS = tuple(k.public_key for k in NODES)
PAYER = keypair(20).public_key_strkey
DEST = keypair(21).public_key_strkey


def _vault(amount: int = 100) -> None:
    vault_open("VAULT", SIGNERS, 2)
    faucet_deposit(PAYER, "VAULT", "USD", amount)


def _tx(withdrawal_id: int = 9, amount: int = 40, valid_for_ms: int = 60_000) -> bytes:
    until = ledger_now_ms() + valid_for_ms
    tx = withdrawal_transaction("VAULT", DEST, "USD", amount, withdrawal_id, until)
    return transaction_encode(tx)


def _signed(data: bytes, count: int = 2) -> list:  # type: ignore[type-arg]
    return [transaction_sign(data, k) for k in NODES[:count]]


def test_anyone_pays_in_but_the_vault_pays_out_only_with_a_majority() -> None:
    _vault()
    with pytest.raises(ValueError, match="signers"):
        ledger_transfer("VAULT", DEST, "USD", 10)
    data = _tx()
    with pytest.raises(LedgerRuleError, match="1 valid vault signatures, 2 needed"):
        vault_submit(data, _signed(data, 1))
    sequence = vault_submit(data, _signed(data))
    assert sequence > 0
    assert ledger_balance(DEST, "USD") == 40
    assert ledger_balance("VAULT", "USD") == 60
    assert LedgerAccount.objects.get(address="VAULT").sequence == 1


def test_a_transaction_applies_once_and_overdrafts_are_refused() -> None:
    _vault()
    data = _tx()
    vault_submit(data, _signed(data))
    with pytest.raises(LedgerRuleError, match="already applied"):
        vault_submit(data, _signed(data))
    too_much = _tx(withdrawal_id=10, amount=61)
    with pytest.raises(LedgerRuleError, match="less than"):
        vault_submit(too_much, _signed(too_much))
    assert ledger_balance(DEST, "USD") == 40


def test_an_expired_transaction_is_refused_and_only_then_cancellable() -> None:
    _vault()
    live = _tx()
    with pytest.raises(LedgerRuleError, match="not expired"):
        vault_cancel(live)
    expired = _tx(withdrawal_id=11, valid_for_ms=-1)
    with pytest.raises(LedgerRuleError, match="expired"):
        vault_submit(expired, _signed(expired))
    vault_cancel(expired)
    with pytest.raises(LedgerRuleError, match="already applied or cancelled"):
        vault_cancel(expired)
    assert ledger_balance("VAULT", "USD") == 100


def test_a_vault_keeps_its_signers() -> None:
    vault_open("VAULT", SIGNERS, 2)
    vault_open("VAULT", tuple(reversed(SIGNERS)), 2)  # The same set: idempotent.
    with pytest.raises(LedgerRuleError, match="other signers"):
        vault_open("VAULT", SIGNERS[:2], 2)


def test_the_provider_reports_a_cancelled_withdrawal_as_failed() -> None:
    settings = ProviderSettings(
        "local", "vault", "VAULT", "0", (ProviderAsset("USD", "USD", False),), 0
    )
    provider = LocalLedgerProvider(settings, NODES[0], SIGNERS, {"ttl_ms": "1"})
    _vault()
    expired = _tx(withdrawal_id=12, valid_for_ms=-1)
    assert provider.cancel_expired(expired, ledger_now_ms())
    assert provider.cancel_expired(expired, ledger_now_ms())  # Already done: still done.
    seen = provider.notification_after("0", ledger_now_ms() + 1)
    kept = seen.keeping(provider.pending_hashes({12: expired}))
    assert [(o.withdrawal_id, o.result) for o in kept.withdrawals] == [(12, PaymentResult.FAILED)]
    assert seen.keeping(provider.pending_hashes({99: expired})).withdrawals == ()
    assert provider.ttl_ms == 1


def test_a_cancelled_look_alike_neither_blocks_nor_settles_the_real_transaction() -> None:
    _vault()
    real = _tx(withdrawal_id=13)
    look_alike = _tx(withdrawal_id=13, valid_for_ms=-1)  # Same reference, already expired.
    vault_cancel(look_alike)
    vault_submit(real, _signed(real))
    assert ledger_balance(DEST, "USD") == 40
    settings = ProviderSettings(
        "local", "vault", "VAULT", "0", (ProviderAsset("USD", "USD", False),), 0
    )
    provider = LocalLedgerProvider(settings, NODES[0], SIGNERS)
    seen = provider.notification_after("0", ledger_now_ms() + 1)
    kept = seen.keeping(provider.pending_hashes({13: real}))
    assert [(o.withdrawal_id, o.result) for o in kept.withdrawals] == [(13, PaymentResult.SUCCESS)]
