"""Persisted payment state: pending withdrawals (snapshot rows)."""

from django.db import models

from exchange.fields import U64Field


class WithdrawalRecord(models.Model):
    """A withdrawal waiting for its provider; its id is the apex of its quantum."""

    withdrawal_id = U64Field(primary_key=True)
    account = U64Field(db_index=True)
    provider = models.CharField(max_length=140)
    asset = models.CharField(max_length=12)
    amount = U64Field()
    fee = U64Field()
    destination = models.CharField(max_length=256)
    transaction = models.BinaryField(blank=True)

    class Meta:
        ordering = ["withdrawal_id"]

    def __str__(self) -> str:
        return f"withdrawal {self.withdrawal_id}"


class RotationRecord(models.Model):
    """A vault rotation alpha has not submitted yet, with the old signers' signatures it
    collected (`payments.payouts.PayoutDesk`): one row per provider and settings update that
    called for it (its apex). Kept on alpha's own database because a removed auditor signs
    nothing again: a restart of alpha must not lose its signature."""

    apex = U64Field()
    provider = models.CharField(max_length=140)
    transaction = models.BinaryField()
    old_signers = models.BinaryField(help_text="the old signers' 32-byte keys, concatenated")
    old_threshold = models.PositiveIntegerField()
    expiry_ms = models.BigIntegerField()
    signatures = models.JSONField(default=dict, help_text="signer hex -> signature hex")

    class Meta:
        ordering = ["apex", "provider"]
        constraints = [
            models.UniqueConstraint(fields=["apex", "provider"], name="rotation_apex_provider")
        ]

    def __str__(self) -> str:
        return f"rotation of {self.provider} at quantum {self.apex}"


class LedgerTransfer(models.Model):
    """One transfer on the local ledger: the external network of the local-ledger provider.

    The ledger lives in its own database (alias `ledger`), shared by every node of a local
    constellation, like a real external network would be. Anyone can pay into the vault;
    a transfer out of the vault needs the signatures of a majority of the constellation's
    auditors on the exact transaction bytes (`payments.core.local_ledger`).
    """

    source = models.CharField(max_length=56, db_index=True)
    destination = models.CharField(max_length=56, db_index=True)
    asset = models.CharField(max_length=12)
    amount = U64Field()
    reference = models.CharField(max_length=64, blank=True, default="")
    tx_hash = models.BinaryField(max_length=32)
    created_at = models.DateTimeField(auto_now_add=True)
    # An outgoing vault transaction is either applied (funds moved) or, once expired unapplied,
    # cancelled (amount 0): either way that transaction (its hash) is used up for good.
    status = models.CharField(max_length=10, default="applied")
    # The entry's place in the ledger's journal (`LedgerJournal`): assigned in commit order,
    # without gaps, so it is the ledger's sequence and the providers' cursor (the id is not:
    # ids are taken at insert and become visible at commit, out of order).
    position = models.BigIntegerField(unique=True)

    class Meta:
        ordering = ["position"]
        constraints = [
            models.UniqueConstraint(
                fields=["source", "tx_hash"],
                condition=~models.Q(reference=""),
                name="ledger_transaction_once_per_source",
            )
        ]

    def __str__(self) -> str:
        return f"transfer {self.id}: {self.source} -> {self.destination} {self.amount} {self.asset}"


class LedgerAccount(models.Model):
    """A local-ledger account with signers: a vault. Outgoing transfers need `threshold`
    signatures of `signers` (strkeys); `sequence` counts its outgoing transactions."""

    address = models.CharField(max_length=56, primary_key=True)
    signers = models.JSONField(default=list)
    threshold = models.PositiveIntegerField()
    sequence = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"vault {self.address} ({self.threshold} of {len(self.signers)})"


class LedgerJournal(models.Model):
    """The head of the local ledger's journal: one row, the position of its last entry.

    Every ledger write advances it in its own transaction and holds the row's lock until it
    commits, so writes are serialized and positions become visible in the order they were
    given: a reader that sees position p sees every position below it, and a rolled-back write
    gives its position back (no gaps)."""

    position = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"ledger journal at {self.position}"
