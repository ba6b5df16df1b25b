"""The Stellar provider: real stellar-sdk transactions, multisig, and Horizon I/O against a
fake of Horizon (Horizon itself is unreachable from here)."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator

import pytest
from stellar_sdk import Keypair, Network, TransactionEnvelope
from stellar_sdk.operation import Payment

from payments.core.provider import PaymentSubmitError
from payments.providers.stellar import StellarProvider, amount_string, amount_units
from payments.tests.fake_horizon import FakeAccount, FakeHorizon
from quanta.core.keys import KeyPair
from quanta.core.processors.settings import ROTATION_TTL_MS
from quanta.core.status import BadRequest, InvalidState, NotYetConfirmed
from quanta.core.testing import keypair
from quanta.core.xdr.schema import (
    DepositQuantum,
    PaymentResult,
    ProviderAsset,
    ProviderSettings,
    TxSignature,
    WithdrawalOutcome,
    WithdrawalRequest,
)

NODES = [keypair(i) for i in range(3)]
SIGNERS = tuple(k.public_key for k in NODES)
VAULT = keypair(60).public_key_strkey
DEST = keypair(61).public_key_strkey
SETTINGS = ProviderSettings(
    "stellar", "main", VAULT, "0", (ProviderAsset("XLM", "XLM", False, 100),), 0
)


@pytest.fixture
def horizon() -> Iterator[FakeHorizon]:
    with FakeHorizon() as fake:
        fake.account_add(FakeAccount(VAULT, 7_000, [k.public_key_strkey for k in NODES], 2))
        yield fake


def _provider(node: KeyPair, horizon: FakeHorizon) -> StellarProvider:
    provider = StellarProvider(SETTINGS, node, SIGNERS, {"horizon_url": horizon.url})
    provider.prepare()
    return provider


def _request(amount: int = 12_345_678, fee: int = 100) -> WithdrawalRequest:
    return WithdrawalRequest(1, keypair(5).public_key, 1, "stellar-main", "XLM", amount, DEST, fee)


def test_amounts_convert_exactly() -> None:
    assert amount_string(12_345_678) == "1.2345678"
    assert amount_units("1.2345678") == 12_345_678


def test_the_withdrawal_is_a_real_stellar_payment_from_the_vault(horizon: FakeHorizon) -> None:
    timestamp = time.time_ns() // 1_000_000
    data = _provider(NODES[0], horizon).build_withdrawal(77, timestamp, _request())
    envelope = TransactionEnvelope.from_xdr(
        base64.b64encode(data).decode(), Network.TESTNET_NETWORK_PASSPHRASE
    )
    tx = envelope.transaction
    assert tx.source.account_id == VAULT
    assert tx.sequence == 7_001
    assert tx.memo.memo_id == 77  # type: ignore[attr-defined]
    assert tx.preconditions is not None and tx.preconditions.time_bounds is not None
    assert tx.preconditions.time_bounds.max_time == (timestamp + 60_000) // 1000
    (operation,) = tx.operations
    assert isinstance(operation, Payment)
    assert (operation.destination.account_id, operation.amount) == (DEST, "1.2345678")


def test_each_auditor_signs_with_its_node_key_as_a_stellar_key(horizon: FakeHorizon) -> None:
    alpha = _provider(NODES[0], horizon)
    data = alpha.build_withdrawal(77, time.time_ns() // 1_000_000, _request())
    signatures = [_provider(n, horizon).sign_withdrawal(data) for n in NODES[1:]]
    envelope = alpha.signed_envelope(data, signatures)
    for node, decorated in zip(NODES[1:], envelope.signatures, strict=True):
        stellar_key = Keypair.from_public_key(node.public_key_strkey)
        assert decorated.signature_hint == stellar_key.signature_hint()
        stellar_key.verify(envelope.hash(), decorated.signature)


def test_the_vault_sequence_advances_only_with_accepted_withdrawals(horizon: FakeHorizon) -> None:
    alpha = _provider(NODES[0], horizon)
    timestamp = time.time_ns() // 1_000_000
    first = alpha.build_withdrawal(77, timestamp, _request())
    assert alpha.build_withdrawal(77, timestamp, _request()) == first  # Refused: not taken.
    alpha.withdrawal_accepted(first)
    second = alpha.build_withdrawal(78, timestamp, _request())
    signatures = [_provider(n, horizon).sign_withdrawal(second) for n in NODES[:2]]
    with pytest.raises(PaymentSubmitError) as refused:
        alpha.submit_withdrawal(second, signatures)  # The first one has not been applied.
    assert refused.value.permanent
    assert "tx_bad_seq" in str(refused.value)
    signatures = [_provider(n, horizon).sign_withdrawal(first) for n in NODES[:2]]
    alpha.submit_withdrawal(first, signatures)
    assert horizon.accounts[VAULT].sequence == 7_001


def test_an_expired_transaction_is_refused_by_the_network(horizon: FakeHorizon) -> None:
    alpha = _provider(NODES[0], horizon)
    old = time.time_ns() // 1_000_000 - 120_000
    data = alpha.build_withdrawal(79, old, _request())
    signatures = [_provider(n, horizon).sign_withdrawal(data) for n in NODES]
    with pytest.raises(PaymentSubmitError, match="tx_too_late") as refused:
        alpha.submit_withdrawal(data, signatures)
    assert refused.value.permanent
    assert alpha.cancel_expired(data, time.time_ns() // 1_000_000)


def test_without_horizon_nothing_is_built(horizon: FakeHorizon) -> None:
    provider = StellarProvider(SETTINGS, NODES[0], SIGNERS, {"horizon_url": horizon.url})
    with pytest.raises(InvalidState, match="sequence"):
        provider.build_withdrawal(1, 0, _request())
    provider.prepare()
    data = provider.build_withdrawal(1, time.time_ns() // 1_000_000, _request())
    horizon.stop()
    with pytest.raises(PaymentSubmitError, match="unreachable") as refused:
        provider.submit_withdrawal(data, [provider.sign_withdrawal(data)])
    assert not refused.value.permanent


def test_an_expired_withdrawal_is_proven_failed_through_horizon(horizon: FakeHorizon) -> None:
    alpha = _provider(NODES[0], horizon)
    now_ms = time.time_ns() // 1_000_000
    expired = alpha.build_withdrawal(80, now_ms - 120_000, _request())
    live = alpha.build_withdrawal(81, now_ms, _request())
    pending = {80: expired, 81: live}
    (outcome,) = alpha.expired_outcomes(pending, now_ms)
    assert (outcome.withdrawal_id, outcome.result) == (80, PaymentResult.FAILED)
    assert outcome.tx_hash == alpha.transaction_hash(expired)
    body = DepositQuantum("stellar-main", "0", (), (outcome,))
    _provider(NODES[1], horizon).validate_notification(body, "0", pending)
    # A failure Horizon does not prove yet is not signed: the live one waits for its bounds
    # (then the ledger decides), and one the ledger holds is a contradiction.
    live_failure = WithdrawalOutcome(81, PaymentResult.FAILED, alpha.transaction_hash(live))
    with pytest.raises(NotYetConfirmed):
        alpha.validate_notification(
            DepositQuantum("stellar-main", "0", (), (live_failure,)), "0", pending
        )
    horizon.clock_offset_s = -3600
    with pytest.raises(NotYetConfirmed, match="expired"):
        alpha.validate_notification(body, "0", pending)


# --- payouts that fail on the ledger, and expiry not visible yet ---------------------------

TOKEN = f"USDC:{keypair(62).public_key_strkey}"
CREDIT = ProviderSettings(
    "stellar", "main", VAULT, "0", (ProviderAsset(TOKEN, "USD", False, 1),), 0
)


@pytest.fixture
def strict_horizon() -> Iterator[FakeHorizon]:
    """A fake that judges destinations: unknown accounts and missing trustlines fail."""
    with FakeHorizon(destinations_checked=True) as fake:
        fake.account_add(FakeAccount(VAULT, 7_000, [k.public_key_strkey for k in NODES], 2))
        yield fake


def _failed_on_the_ledger(
    horizon: FakeHorizon, settings: ProviderSettings, request: WithdrawalRequest, code: str
) -> tuple[StellarProvider, bytes]:
    """Builds, signs and submits a withdrawal the ledger applies as failed (`code`)."""
    alpha = StellarProvider(settings, NODES[0], SIGNERS, {"horizon_url": horizon.url})
    alpha.prepare()
    transaction = alpha.build_withdrawal(77, time.time_ns() // 1_000_000, request)
    alpha.withdrawal_accepted(transaction)
    signatures = [
        alpha.sign_withdrawal(transaction),
        _provider(NODES[1], horizon).sign_withdrawal(transaction),
    ]
    with pytest.raises(PaymentSubmitError, match=code) as refused:
        alpha.submit_withdrawal(transaction, signatures)
    assert refused.value.permanent  # Its sequence number is used: a retry cannot apply it.
    assert horizon.accounts[VAULT].sequence == 7_001
    return alpha, transaction


@pytest.mark.parametrize("code", ["op_no_destination", "op_no_trust"])
def test_a_payout_that_fails_on_the_ledger_is_a_failed_outcome_every_auditor_checks(
    strict_horizon: FakeHorizon, code: str
) -> None:
    settings, request = SETTINGS, _request(fee=100)
    if code == "op_no_trust":
        strict_horizon.account_add(FakeAccount(DEST, 1))  # The account, without a trustline.
        settings = CREDIT
        request = WithdrawalRequest(1, keypair(5).public_key, 1, "stellar-main", "USD", 5, DEST, 1)
    alpha, transaction = _failed_on_the_ledger(strict_horizon, settings, request, code)
    pending = {77: transaction}
    seen = alpha.notification_after("0", time.time_ns() // 1_000_000 + 1)
    seen = seen.keeping(alpha.pending_hashes(pending))
    assert seen.withdrawals == (
        WithdrawalOutcome(77, PaymentResult.FAILED, alpha.transaction_hash(transaction)),
    )
    assert seen.items == ()
    body = DepositQuantum("stellar-main", seen.cursor, seen.items, seen.withdrawals)
    auditor = StellarProvider(settings, NODES[2], SIGNERS, {"horizon_url": strict_horizon.url})
    auditor.validate_notification(body, "0", pending)
    # Past its time bounds it is not "expired unapplied" as well: the ledger holds it.
    strict_horizon.clock_offset_s = 3600
    assert alpha.expired_outcomes(pending, time.time_ns() // 1_000_000 + 3_600_000) == ()
    claimed = DepositQuantum("stellar-main", "0", (), seen.withdrawals)
    with pytest.raises(BadRequest, match="holds the transaction"):
        auditor.validate_notification(claimed, "0", pending)


def test_a_failed_outcome_of_another_transaction_is_not_kept(strict_horizon: FakeHorizon) -> None:
    alpha, transaction = _failed_on_the_ledger(
        strict_horizon, SETTINGS, _request(fee=100), "op_no_destination"
    )
    other = alpha.build_withdrawal(77, time.time_ns() // 1_000_000, _request(amount=5, fee=100))
    seen = alpha.notification_after("0", time.time_ns() // 1_000_000 + 1)
    assert seen.keeping(alpha.pending_hashes({77: other})).withdrawals == ()


def test_an_expiry_the_auditor_s_horizon_does_not_show_yet_is_not_a_contradiction(
    horizon: FakeHorizon,
) -> None:
    alpha = _provider(NODES[0], horizon)
    expired = alpha.build_withdrawal(80, time.time_ns() // 1_000_000 - 120_000, _request())
    outcome = WithdrawalOutcome(80, PaymentResult.FAILED, alpha.transaction_hash(expired))
    body = DepositQuantum("stellar-main", "0", (), (outcome,))
    horizon.clock_offset_s = -3600  # The auditor's Horizon has not closed a later ledger yet.
    with pytest.raises(NotYetConfirmed, match="not closed a ledger after"):
        _provider(NODES[1], horizon).validate_notification(body, "0", {80: expired})
    horizon.clock_offset_s = 0
    _provider(NODES[1], horizon).validate_notification(body, "0", {80: expired})


# --- the minimum withdrawal fee --------------------------------------------------------------


def test_a_withdrawal_below_the_provider_s_minimum_fee_is_refused(horizon: FakeHorizon) -> None:
    alpha = _provider(NODES[0], horizon)
    timestamp = time.time_ns() // 1_000_000
    with pytest.raises(BadRequest, match="fee of at least 100"):
        alpha.build_withdrawal(77, timestamp, _request(fee=99))
    transaction = alpha.build_withdrawal(77, timestamp, _request(fee=100))
    auditor = _provider(NODES[1], horizon)
    auditor.validate_withdrawal(77, timestamp, _request(fee=100), transaction)
    with pytest.raises(BadRequest, match="fee of at least 100"):
        auditor.validate_withdrawal(77, timestamp, _request(fee=0), transaction)


# --- the vault's signers: checked against the settings, rotated by setOptions ---------------

NEW = [NODES[0], keypair(63), keypair(64)]  # one of three replaced


def test_a_vault_whose_signers_are_not_the_settings_is_reported_and_signs_nothing(
    horizon: FakeHorizon,
) -> None:
    rotated = StellarProvider(
        SETTINGS, NEW[1], tuple(k.public_key for k in NEW), {"horizon_url": horizon.url}
    )
    rotated.prepare()
    assert rotated.vault_mismatch is not None and "not the settings'" in rotated.vault_mismatch
    with pytest.raises(InvalidState, match="pays nothing out"):
        rotated.build_withdrawal(77, time.time_ns() // 1_000_000, _request())
    transaction = _provider(NODES[0], horizon).build_withdrawal(
        77, time.time_ns() // 1_000_000, _request()
    )
    with pytest.raises(InvalidState, match="refuses to sign"):
        rotated.sign_withdrawal(transaction)
    assert _provider(NODES[1], horizon).vault_mismatch is None


def test_the_old_majority_rotates_the_vault_by_set_options_and_the_new_set_pays_after(
    horizon: FakeHorizon,
) -> None:
    """Alpha's provider of the settings before the update builds the rotation on the vault's
    next sequence; every auditor validates it (any other signers, or a longer validity, is
    refused); the old signers sign it; the new settings' provider submits it, after which
    the vault answers to the new set only, and a second submission is no refusal."""
    old = tuple(k.public_key for k in NODES)
    new_keys = tuple(k.public_key for k in NEW)
    options = {"horizon_url": horizon.url}
    before = StellarProvider(SETTINGS, NODES[0], old, options)
    before.prepare()
    now_ms = time.time_ns() // 1_000_000
    until_ms = now_ms + ROTATION_TTL_MS
    rotation = before.build_rotation(old, new_keys, 2, until_ms)
    auditor = StellarProvider(SETTINGS, NODES[2], old, options)
    auditor.validate_rotation(old, new_keys, 2, now_ms, rotation)
    with pytest.raises(BadRequest, match="not this rotation"):
        auditor.validate_rotation(old, new_keys[:2], 2, now_ms, rotation)
    longer = before.build_rotation(old, new_keys, 2, until_ms + 2_000)
    with pytest.raises(BadRequest, match="validity is out of bounds"):
        auditor.validate_rotation(old, new_keys, 2, now_ms, longer)
    alpha = StellarProvider(SETTINGS, NEW[0], new_keys, options)
    alpha.prepare()  # The settings moved on; the vault has not yet.
    assert alpha.vault_mismatch is not None
    new_only = [_raw_sign(k, alpha, rotation) for k in NEW[1:]]
    with pytest.raises(PaymentSubmitError, match="tx_bad_auth"):
        alpha.submit_rotation(rotation, new_only)  # The new keys cannot take it over.
    signers = [StellarProvider(SETTINGS, k, old, options) for k in NODES[1:]]
    old_majority = [provider.sign_rotation(rotation) for provider in signers]
    assert all(alpha.rotation_signature_valid(rotation, s, old) for s in old_majority)
    assert not alpha.rotation_signature_valid(rotation, new_only[0], old)
    alpha.submit_rotation(rotation, old_majority)
    vault = horizon.accounts[VAULT]
    assert sorted(vault.signers) == sorted(k.public_key_strkey for k in NEW)
    assert vault.threshold == 2
    alpha.submit_rotation(rotation, old_majority)  # Applied already: no refusal.
    assert alpha.needs_preparation()  # The vault and its sequence are read again at once.
    alpha.prepare()
    assert alpha.vault_mismatch is None and alpha.sequence == vault.sequence
    # The removed keys move nothing; the new set does.
    payout = alpha.build_withdrawal(78, time.time_ns() // 1_000_000, _request())
    removed = [_raw_sign(k, alpha, payout) for k in NODES[1:]]
    with pytest.raises(PaymentSubmitError, match="tx_bad_auth"):
        alpha.submit_withdrawal(payout, removed)
    alpha.submit_withdrawal(payout, [_raw_sign(k, alpha, payout) for k in NEW[1:]])
    assert horizon.accounts[VAULT].sequence == 7_002


def test_a_rotation_applies_over_the_gap_of_a_withdrawal_that_never_applied(
    horizon: FakeHorizon,
) -> None:
    """A withdrawal built before the update took the vault's next sequence and expired
    unapplied: the rotation, one sequence further, still applies (its minimum sequence
    number allows the gap). Before, it failed with tx_bad_seq and the vault kept the old
    signers until a setOptions by hand."""
    old = tuple(k.public_key for k in NODES)
    new_keys = tuple(k.public_key for k in NEW)
    options = {"horizon_url": horizon.url}
    before = StellarProvider(SETTINGS, NODES[0], old, options)
    before.prepare()
    start = horizon.accounts[VAULT].sequence
    now_ms = time.time_ns() // 1_000_000
    never = before.build_withdrawal(90, now_ms, _request())
    before.withdrawal_accepted(never)  # executed, never submitted: it expires
    rotation = before.build_rotation(old, new_keys, 2, now_ms + ROTATION_TTL_MS)
    StellarProvider(SETTINGS, NODES[1], old, options).validate_rotation(
        old, new_keys, 2, now_ms, rotation
    )
    signatures = [
        StellarProvider(SETTINGS, k, old, options).sign_rotation(rotation) for k in NODES[1:]
    ]
    StellarProvider(SETTINGS, NEW[0], new_keys, options).submit_rotation(rotation, signatures)
    vault = horizon.accounts[VAULT]
    assert sorted(vault.signers) == sorted(k.public_key_strkey for k in NEW)
    assert vault.sequence == start + 2  # the gap of the withdrawal that never applied


def _raw_sign(node: KeyPair, provider: StellarProvider, transaction: bytes) -> TxSignature:
    """Signs as `node` without its provider's vault check (a removed key, or the old signers
    of a vault whose settings moved on)."""
    stellar_key = Keypair.from_secret(node.secret)
    digest = provider.transaction_hash(transaction)
    return TxSignature(stellar_key.raw_public_key(), stellar_key.sign(digest))
