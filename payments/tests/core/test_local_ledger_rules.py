"""The local ledger's transaction and multisig rules, without a database."""

from __future__ import annotations

import pytest

from payments.core.local_ledger import (
    LedgerRuleError,
    VaultTransaction,
    require_signed,
    signature_valid,
    transaction_decode,
    transaction_encode,
    transaction_sign,
    valid_signers,
    withdrawal_transaction,
)
from payments.core.payouts import PayoutBook
from quanta.core.testing import keypair
from quanta.core.xdr.schema import TxSignature

SIGNERS = [keypair(i) for i in range(5)]
KEYS = tuple(k.public_key for k in SIGNERS)


def _tx(amount: int = 5_000_000) -> bytes:
    dest = keypair(9).public_key_strkey
    return transaction_encode(withdrawal_transaction("VAULT", dest, "USD", amount, 7, 10_000))


def test_encoding_is_canonical_and_round_trips() -> None:
    data = _tx()
    tx = transaction_decode(data)
    assert tx.withdrawal_id == 7
    assert transaction_encode(tx) == data
    assert data.startswith(b'{"amount":5000000,')


def test_decode_refuses_other_spellings_and_bad_amounts() -> None:
    spaced = _tx().replace(b",", b", ")
    with pytest.raises(LedgerRuleError, match="canonical"):
        transaction_decode(spaced)
    with pytest.raises(LedgerRuleError):
        transaction_decode(b"not json")
    with pytest.raises(LedgerRuleError, match="positive"):
        transaction_decode(transaction_encode(VaultTransaction("V", "D", "USD", 0, "r", 1)))
    with pytest.raises(LedgerRuleError):
        transaction_decode(b'{"amount":1}')


def test_majority_of_distinct_valid_signers_is_required() -> None:
    data = _tx()
    sigs = [transaction_sign(data, k) for k in SIGNERS[:3]]
    require_signed(data, sigs, KEYS, 3)
    with pytest.raises(LedgerRuleError, match="2 valid vault signatures, 3 needed"):
        require_signed(data, sigs[:2], KEYS, 3)
    # The same signer twice counts once.
    with pytest.raises(LedgerRuleError, match="2 valid"):
        require_signed(data, [sigs[0], sigs[0], sigs[1]], KEYS, 3)


def test_signatures_of_other_bytes_or_strangers_do_not_count() -> None:
    data = _tx()
    other = _tx(amount=5_000_001)
    stranger = transaction_sign(data, keypair(42))
    forged = transaction_sign(other, SIGNERS[0])
    assert signature_valid(data, stranger)
    assert not signature_valid(data, forged)
    assert not signature_valid(data, TxSignature(b"short", b"x" * 64))
    assert valid_signers(data, [stranger, forged], KEYS) == set()
    with pytest.raises(LedgerRuleError, match="threshold"):
        require_signed(data, [], KEYS, 0)


def test_payout_book_is_due_at_the_threshold_and_retries_with_backoff() -> None:
    book = PayoutBook()
    data = _tx()
    book.add(7, "local-vault", data, expiry_ms=10_000)
    for signer in SIGNERS[:2]:
        book.add_signature(7, transaction_sign(data, signer))
    assert book.due(3, 0, persisted_apex=7) == []
    book.add_signature(7, transaction_sign(data, SIGNERS[2]))
    (payout,) = book.due(3, 0, persisted_apex=7)
    book.refused(payout, 1_000, permanent=False)
    assert book.due(3, 1_100, persisted_apex=7) == []
    assert book.due(3, 1_500, persisted_apex=7) == [payout]
    assert book.due(3, 10_000, persisted_apex=7) == []  # Expired: only cancellation is left.
    assert book.expired(10_001) == [payout]
    book.forget_settled(set())
    assert book.payouts == {}
    assert not book.add_signature(7, transaction_sign(data, SIGNERS[0]))


def test_payout_book_is_not_due_above_alphas_persisted_prefix() -> None:
    # Signatures are not enough: a quantum alpha has not persisted can be replaced at its
    # apex after a crash, and the vault would have paid what the constellation never debits.
    book = PayoutBook()
    data = _tx()
    book.add(7, "local-vault", data, expiry_ms=10_000)
    for signer in SIGNERS:
        book.add_signature(7, transaction_sign(data, signer))
    assert book.due(3, 0, persisted_apex=6) == []
    assert [p.withdrawal_id for p in book.due(3, 0, persisted_apex=7)] == [7]
    assert [p.withdrawal_id for p in book.due(3, 0, persisted_apex=9)] == [7]
