"""Persisted exchange state: accounts, balances and open orders (snapshot rows)."""

from django.db import models


class AccountRecord(models.Model):
    """A registered account at the last persisted apex."""

    id = models.BigIntegerField(primary_key=True)
    public_key = models.BinaryField(max_length=32, unique=True)
    nonce = models.BigIntegerField(default=0)
    sequence = models.BigIntegerField(default=0, help_text="effects groups applied so far")

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"account {self.id}"


class BalanceRecord(models.Model):
    """One asset balance of one account; liabilities are what open orders and withdrawals lock."""

    account = models.BigIntegerField()
    asset = models.CharField(max_length=12)
    amount = models.DecimalField(max_digits=20, decimal_places=0)
    liabilities = models.DecimalField(max_digits=20, decimal_places=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["account", "asset"], name="balance_account_asset")
        ]

    def __str__(self) -> str:
        return f"{self.account}:{self.asset}"


class OrderRecord(models.Model):
    """An order resting on a book; its id is the apex of the quantum that placed it."""

    order_id = models.BigIntegerField(primary_key=True)
    account = models.BigIntegerField(db_index=True)
    asset = models.CharField(max_length=12)
    side = models.SmallIntegerField()
    price = models.DecimalField(max_digits=20, decimal_places=0)
    amount = models.DecimalField(max_digits=20, decimal_places=0)

    class Meta:
        ordering = ["order_id"]

    def __str__(self) -> str:
        return f"order {self.order_id}"
