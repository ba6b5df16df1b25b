"""Persistence of the chronicler: the public trades, derived from the effects of final quanta.

Written in the same transaction as the quanta they come from
(`quanta.node.persistence.quanta_persist` calls `chronicler.services.trades_persist`), so the
trade table is complete up to the last persisted quantum and the market data can be rebuilt
from it after a restart.
"""

from django.db import models

from exchange.fields import U64Field


class TradeRecord(models.Model):
    """One fill: the taker's side, the maker's price (price units), amounts in 10^-7 units."""

    market = models.CharField(max_length=12)
    apex = U64Field()
    index = models.SmallIntegerField(help_text="fill number within the quantum")
    price = U64Field()
    amount = U64Field()
    quote_amount = U64Field()
    side = models.SmallIntegerField(help_text="the taker's side: 1 sell, 2 buy")
    timestamp_ms = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["market", "apex", "index"], name="trade_market_apex")
        ]
        indexes = [models.Index(fields=["timestamp_ms"], name="trade_timestamp")]

    def __str__(self) -> str:
        return f"trade {self.market} at {self.apex}#{self.index}"
