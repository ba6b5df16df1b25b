"""Persisted exchange state: accounts, balances and open orders (snapshot rows)."""

from django.db import models

from exchange.fields import U64Field


class AccountRecord(models.Model):
    """A registered account at the last persisted apex."""

    id = U64Field(primary_key=True)
    public_key = models.BinaryField(max_length=32, unique=True)
    nonce = U64Field(default=0)
    sequence = U64Field(default=0, help_text="effects groups applied so far")

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"account {self.id}"


class BalanceRecord(models.Model):
    """One asset balance of one account; liabilities are what open orders and withdrawals lock."""

    account = U64Field()
    asset = models.CharField(max_length=12)
    amount = U64Field()
    liabilities = U64Field()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["account", "asset"], name="balance_account_asset")
        ]

    def __str__(self) -> str:
        return f"{self.account}:{self.asset}"


class OrderRecord(models.Model):
    """An order resting on a book; its id is apex·1000 + position of the quantum that placed it."""

    order_id = U64Field(primary_key=True)
    account = U64Field(db_index=True)
    asset = models.CharField(max_length=12)
    side = models.SmallIntegerField()
    price = U64Field()
    amount = U64Field()
    client_order_id = U64Field(default=0, help_text="the owner's own label (0: none)")

    class Meta:
        ordering = ["order_id"]

    def __str__(self) -> str:
        return f"order {self.order_id}"
