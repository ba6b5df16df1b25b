"""Reads of persisted node data for the gateway and HTTP views."""

from __future__ import annotations

# The account history pages moved to the chronicler; the gateway keeps answering them.
from chronicler.selectors import account_id_for_key, quantum_info_page
from quanta.core.xdr.codec import decode
from quanta.core.xdr.schema import ConstellationSettings, PayloadProof, Quantum, SignedQuantum
from quanta.models import QuantumRecord, SettingsRecord

__all__ = [
    "account_id_for_key",
    "quanta_signed_after",
    "quantum_info_page",
    "settings_current",
]


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
