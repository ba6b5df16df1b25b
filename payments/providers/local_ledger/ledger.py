"""The local ledger itself: a small external payment network in its own database.

Accounts are addresses (any string; constellation keys are G... strkeys); balances are
incoming minus outgoing applied transfers; the issuer mints without limit (the faucet).
A vault is a `LedgerAccount` with signers: anyone can pay into it, and it pays out only
through `vault_submit` with a majority of its signers' signatures (`payments.core.local_ledger`
has the rules); its signers change only through `vault_rotate`, signed by a majority of the
signers in force (the old ones), recorded as an entry of the vault with amount 0. Entries are
numbered by their journal position (`journal_advance`): the ledger's sequence and the
providers' cursor, given in commit order without gaps, so a reader past position p never
meets an earlier entry later. The ledger's clock is this server's wall
clock, as a real network's would be its own.
"""

from __future__ import annotations

import hashlib
import time
from decimal import Decimal

from django.db import IntegrityError, connections, transaction
from django.db.models import Sum

from payments.core.local_ledger import (
    LedgerRuleError,
    VaultTransaction,
    require_signed,
    rotation_decode,
    transaction_decode,
    transaction_hash,
)
from payments.models import LedgerAccount, LedgerTransfer
from quanta.core.keys import InvalidKey, decode_public_key, encode_public_key
from quanta.core.xdr.schema import TxSignature

ISSUER = "ISSUER"
"""The ledger account that mints funds (the demo faucet); it has no balance limit."""

APPLIED = "applied"
CANCELLED = "cancelled"


_JOURNAL_ADVANCE = (
    "INSERT INTO payments_ledgerjournal (id, position) VALUES (1, 1) ON CONFLICT (id)"
    " DO UPDATE SET position = payments_ledgerjournal.position + 1 RETURNING position"
)


def journal_advance() -> int:
    """Returns the journal position of the entry the current ledger transaction writes.

    The journal's one row stays locked until that transaction ends, so ledger writes are
    serialized and positions are given in commit order: the next writer waits here, then
    reads the committed position (or the same one again, if this transaction rolled back).
    Call it inside the transaction, before anything it must serialize (balance checks)."""
    assert connections["ledger"].in_atomic_block, "a journal position needs a transaction"
    with connections["ledger"].cursor() as cursor:
        cursor.execute(_JOURNAL_ADVANCE)
        row = cursor.fetchone()
    return int(row[0])


def ledger_now_ms() -> int:
    """Returns the ledger's clock in milliseconds."""
    return time.time_ns() // 1_000_000


def ledger_balance(address: str, asset: str) -> int:
    """Returns an address's balance on the ledger (incoming minus outgoing transfers)."""
    transfers = LedgerTransfer.objects.filter(asset=asset, status=APPLIED)
    incoming = transfers.filter(destination=address).aggregate(total=Sum("amount"))["total"]
    outgoing = transfers.filter(source=address).aggregate(total=Sum("amount"))["total"]
    return int(incoming or 0) - int(outgoing or 0)


def ledger_transfer(
    source: str, destination: str, asset: str, amount: int, reference: str = ""
) -> int:
    """Moves funds from an account without signers (refusing overdrafts except for the
    issuer); returns the transfer's journal position."""
    if amount <= 0:
        raise ValueError("amount must be positive")
    with transaction.atomic(using="ledger"):
        position = journal_advance()  # Also serializes the balance check below.
        if LedgerAccount.objects.filter(address=source).exists():
            raise ValueError(f"{source} has signers: it pays only through signed transactions")
        if source != ISSUER and ledger_balance(source, asset) < amount:
            raise ValueError(f"{source} has less than {amount} {asset} on the ledger")
        digest = hashlib.sha256(f"{source}|{destination}|{asset}|{amount}|{reference}".encode())
        record = LedgerTransfer.objects.create(
            source=source,
            destination=destination,
            asset=asset,
            amount=Decimal(amount),
            reference=reference,
            tx_hash=digest.digest(),
            position=position,
        )
    return int(record.position)


def faucet_deposit(public_key: str, vault: str, asset: str, amount: int) -> int:
    """Mints `amount` to `public_key` on the ledger and pays it into the vault (demo funding)."""
    decode_public_key(public_key)
    ledger_transfer(ISSUER, public_key, asset, amount)
    return ledger_transfer(public_key, vault, asset, amount)


def vault_open(address: str, signers: tuple[bytes, ...], threshold: int) -> LedgerAccount:
    """Opens a vault with these signers (idempotent); raises LedgerRuleError if the address
    is already a vault with other signers."""
    keys = sorted(encode_public_key(s) for s in signers)
    account, _ = LedgerAccount.objects.get_or_create(
        address=address, defaults={"signers": keys, "threshold": threshold}
    )
    if sorted(account.signers) != keys or account.threshold != threshold:
        raise LedgerRuleError(f"{address} is a vault of other signers")
    return account


def vault_signers(address: str) -> tuple[tuple[bytes, ...], int] | None:
    """Returns the vault's signers (raw keys, sorted by strkey) and threshold, None if the
    address is not a vault."""
    account = LedgerAccount.objects.filter(address=address).first()
    if account is None:
        return None
    keys = tuple(decode_public_key(s) for s in sorted(account.signers))
    return keys, int(account.threshold)


def vault_rotate(data: bytes, signatures: list[TxSignature]) -> int:
    """Applies a signed rotation (`payments.core.local_ledger.VaultRotation`): the vault's
    signers and threshold become the rotation's. It needs valid signatures of the vault's
    threshold of its signers in force (the old ones: the new ones alone cannot take a vault
    over), before its `valid_until_ms`, and applies once. Returns its entry's position;
    raises LedgerRuleError if any rule refuses it."""
    rotation = rotation_decode(data)
    with transaction.atomic(using="ledger"):
        vault = _vault_locked(rotation.source)
        signers = tuple(decode_public_key(s) for s in vault.signers)
        require_signed(data, signatures, signers, vault.threshold)
        if ledger_now_ms() > rotation.valid_until_ms:
            raise LedgerRuleError("the rotation expired")
        for key in rotation.signers:
            try:
                decode_public_key(key)
            except InvalidKey:
                raise LedgerRuleError(f"rotation signer {key!r} is not a key") from None
        entry = VaultTransaction(
            rotation.source, rotation.source, "", 1, rotation.reference, rotation.valid_until_ms
        )
        position = _record(vault, entry, data, APPLIED, 0)
        vault.signers = list(rotation.signers)
        vault.threshold = rotation.threshold
        vault.save(update_fields=["signers", "threshold"])
        return position


def vault_submit(data: bytes, signatures: list[TxSignature]) -> int:
    """Applies a signed vault transaction; returns its transfer's journal position.
    Raises LedgerRuleError if any rule of the ledger refuses it."""
    tx = transaction_decode(data)
    with transaction.atomic(using="ledger"):
        vault = _vault_locked(tx.source)
        signers = tuple(decode_public_key(s) for s in vault.signers)
        require_signed(data, signatures, signers, vault.threshold)
        if ledger_now_ms() > tx.valid_until_ms:
            raise LedgerRuleError("the transaction expired")
        if ledger_balance(tx.source, tx.asset) < tx.amount:
            raise LedgerRuleError(f"the vault holds less than {tx.amount} {tx.asset}")
        return _record(vault, tx, data, APPLIED, tx.amount)


def vault_cancel(data: bytes) -> int:
    """Cancels an expired vault transaction that was never applied (its reference can then
    never be used); returns the journal position of the cancellation."""
    tx = transaction_decode(data)
    with transaction.atomic(using="ledger"):
        vault = _vault_locked(tx.source)
        if ledger_now_ms() <= tx.valid_until_ms:
            raise LedgerRuleError("the transaction has not expired yet")
        return _record(vault, tx, data, CANCELLED, 0)


def transaction_entry(data: bytes) -> LedgerTransfer | None:
    """Returns the ledger entry that applied or cancelled a vault transaction, if any."""
    tx = transaction_decode(data)
    return LedgerTransfer.objects.filter(source=tx.source, tx_hash=transaction_hash(data)).first()


def _vault_locked(address: str) -> LedgerAccount:
    # Locking the vault row serializes its outgoing transactions (balance check, sequence).
    vault = LedgerAccount.objects.select_for_update().filter(address=address).first()
    if vault is None:
        raise LedgerRuleError(f"{address} is not a vault")
    return vault


def _record(
    vault: LedgerAccount, tx: VaultTransaction, data: bytes, status: str, amount: int
) -> int:
    if not tx.reference:
        raise LedgerRuleError("a vault transaction needs a reference")
    try:
        with transaction.atomic(using="ledger"):
            position = journal_advance()
            record = LedgerTransfer.objects.create(
                source=tx.source,
                destination=tx.destination,
                asset=tx.asset,
                amount=Decimal(amount),
                reference=tx.reference,
                tx_hash=transaction_hash(data),
                status=status,
                position=position,
            )
    except IntegrityError:
        raise LedgerRuleError("the transaction was already applied or cancelled") from None
    vault.sequence += 1
    vault.save(update_fields=["sequence"])
    return int(record.position)
