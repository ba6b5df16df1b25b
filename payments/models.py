"""Persisted payment state: pending withdrawals (snapshot rows)."""

from django.db import models


class WithdrawalRecord(models.Model):
    """A withdrawal waiting for its provider; its id is the apex of its quantum."""

    withdrawal_id = models.BigIntegerField(primary_key=True)
    account = models.BigIntegerField(db_index=True)
    provider = models.CharField(max_length=140)
    asset = models.CharField(max_length=12)
    amount = models.DecimalField(max_digits=20, decimal_places=0)
    fee = models.DecimalField(max_digits=20, decimal_places=0)
    destination = models.CharField(max_length=256)
    transaction = models.BinaryField(blank=True)

    class Meta:
        ordering = ["withdrawal_id"]

    def __str__(self) -> str:
        return f"withdrawal {self.withdrawal_id}"
