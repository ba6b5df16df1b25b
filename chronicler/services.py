"""Writes of the chronicler: the trades of final quanta (called inside `quanta_persist`)."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from chronicler.core.market_data import trades_of_quantum
from chronicler.models import TradeRecord
from quanta.core.pending import QuantumRow


def trades_persist(*, rows: Sequence[QuantumRow]) -> int:
    """Appends the trades of `rows` (idempotent); returns how many trades they hold."""
    records = [
        TradeRecord(
            market=t.market,
            apex=t.apex,
            index=t.index,
            price=t.price,
            amount=Decimal(t.amount),
            quote_amount=Decimal(t.quote_amount),
            side=t.side,
            timestamp_ms=t.timestamp_ms,
        )
        for row in rows
        for t in trades_of_quantum(row.apex, row.timestamp_ms, row.groups)
    ]
    TradeRecord.objects.bulk_create(records, ignore_conflicts=True)
    return len(records)
