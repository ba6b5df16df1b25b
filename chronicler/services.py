"""Writes of the chronicler: the trades of final quanta (called inside `quanta_persist`)."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from chronicler.core.market_data import trades_of_quantum
from chronicler.models import TradeRecord
from quanta.copy_insert import records_insert
from quanta.core.pending import QuantumRow

TRADE_FIELDS = (
    "market",
    "apex",
    "index",
    "price",
    "amount",
    "quote_amount",
    "side",
    "timestamp_ms",
)


def trades_persist(*, rows: Sequence[QuantumRow]) -> int:
    """Appends the trades of `rows` (idempotent); returns how many trades they hold."""
    values = [
        (
            t.market,
            t.apex,
            t.index,
            t.price,
            Decimal(t.amount),
            Decimal(t.quote_amount),
            t.side,
            t.timestamp_ms,
        )
        for row in rows
        for t in trades_of_quantum(row.apex, row.timestamp_ms, row.groups)
    ]
    records_insert(TradeRecord, TRADE_FIELDS, values)
    return len(values)
