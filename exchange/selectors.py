"""Reads of the exchange's persisted rows."""

from __future__ import annotations

from exchange.models import AccountRecord


def account_id_for_key(public_key: bytes) -> int:
    """Returns the persisted account id of a key, 0 if it is not (yet) registered."""
    record = AccountRecord.objects.filter(public_key=public_key).only("id").first()
    return 0 if record is None else int(record.id)
