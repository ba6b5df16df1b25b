"""Reads of persisted node data for the gateway and HTTP views."""

from __future__ import annotations

from quanta.core.xdr.codec import decode
from quanta.core.xdr.schema import ConstellationSettings, PayloadProof, Quantum, SignedQuantum
from quanta.models import QuantumRecord, SettingsRecord


def quanta_signed_after(apex: int, limit: int) -> list[SignedQuantum]:
    """Returns up to `limit` persisted quanta above `apex` with their known signatures."""
    records = QuantumRecord.objects.filter(apex__gt=apex).order_by("apex")[:limit]
    return [
        SignedQuantum(
            decode(Quantum, bytes(r.data)), decode(PayloadProof, bytes(r.signatures)).signatures
        )
        for r in records
    ]


def settings_current() -> ConstellationSettings | None:
    """Returns the latest persisted settings, None before initialization."""
    record = SettingsRecord.objects.order_by("-version").first()
    return None if record is None else decode(ConstellationSettings, bytes(record.data))
