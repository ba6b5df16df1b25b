"""Reads of persisted node data for the gateway and HTTP views."""

from __future__ import annotations

from dataclasses import dataclass

from quanta.core.signatures import constellation_id_of
from quanta.core.xdr.codec import decode, encode
from quanta.core.xdr.schema import (
    ConstellationQuantum,
    ConstellationSettings,
    PayloadProof,
    Quantum,
    SignedQuantum,
)
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


def quanta_signed_at(apexes: list[int]) -> list[SignedQuantum]:
    """Returns the persisted quanta at `apexes` (those found, in apex order) with their known
    signatures."""
    records = QuantumRecord.objects.filter(apex__in=apexes).order_by("apex")
    return [
        SignedQuantum(
            decode(Quantum, bytes(r.data)), decode(PayloadProof, bytes(r.signatures)).signatures
        )
        for r in records
    ]


def settings_update_at(
    version: int,
) -> tuple[ConstellationSettings | None, SignedQuantum | None] | None:
    """Returns the settings before `version` and the persisted quantum that brought `version`
    in, either None where this node holds none (a genesis has no settings before it; a node
    that joined from a snapshot holds no quantum below it); None while `version` itself is
    not persisted (yet)."""
    records = {
        r.version: r for r in SettingsRecord.objects.filter(version__in=[version - 1, version])
    }
    record, before = records.get(version), records.get(version - 1)
    if record is None:
        return None
    found = quanta_signed_at([int(record.apex)])
    prev = None if before is None else decode(ConstellationSettings, bytes(before.data))
    return prev, (found[0] if found else None)


def settings_current() -> ConstellationSettings | None:
    """Returns the latest persisted settings, None before initialization."""
    record = SettingsRecord.objects.order_by("-version").first()
    return None if record is None else decode(ConstellationSettings, bytes(record.data))


def constellation_id() -> bytes | None:
    """Returns the id of the constellation this node belongs to (the hash of its persisted
    genesis settings), None before initialization."""
    record = SettingsRecord.objects.filter(version=1).first()
    if record is None:
        return None
    return constellation_id_of(decode(ConstellationSettings, bytes(record.data)))


@dataclass(frozen=True, slots=True)
class ChainLink:
    """One settings update of the chain: its version, the apex that brought it in, and the
    XDR of the `ConstellationMessageEnvelope` its signers signed."""

    version: int
    apex: int
    envelope: bytes


def settings_chain_after(version: int, limit: int) -> list[ChainLink]:
    """Returns up to `limit` signed settings updates above `version`, in version order: what
    a client verifies forward from the genesis it pinned. The chain stops before an update
    whose quantum is not persisted yet (its settings are recorded as soon as they are in
    force)."""
    records = SettingsRecord.objects.filter(version__gt=version).order_by("version")[:limit]
    apexes = [int(record.apex) for record in records]
    quanta = {int(q.apex): bytes(q.data) for q in QuantumRecord.objects.filter(apex__in=apexes)}
    links = []
    for record in records:
        data = quanta.get(int(record.apex))
        if data is None:
            break
        body = decode(Quantum, data).body
        assert isinstance(body, ConstellationQuantum), "settings come from settings quanta"
        links.append(ChainLink(int(record.version), int(record.apex), encode(body.update)))
    return links
