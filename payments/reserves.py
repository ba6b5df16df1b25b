"""Proof of reserves on a node: the persisted snapshot (a finalized apex) against the vaults.

The snapshot rows move from one final apex to the next in one transaction
(`quanta.node.persistence.batch_persist`), so they are read in one REPEATABLE READ
transaction: the apex, its state hash, the balances, the fee account and the provider cursors
all belong to that same apex. Each vault is then read as of its cursor (`payments.vaults`).
What a node answers is its own word: another node answers from its own database and its own
view of the networks, and at the same apex the state hash must be the same.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from django.conf import settings as django_settings
from django.db import connection, transaction
from django.db.models import Sum

from exchange.models import BalanceRecord
from payments.core.reserves import AssetReserve, reserve_json, reserves_compare
from payments.vaults import VaultUnreadableError, vault_balances_at
from quanta.core.config import provider_id
from quanta.core.xdr.codec import decode
from quanta.core.xdr.schema import ConstellationSettings
from quanta.models import FeeBalanceRecord, ProviderCursorRecord, SettingsRecord, SnapshotRecord


@dataclass(frozen=True, slots=True)
class ReservesReport:
    """The comparison at one finalized apex, with that apex's state hash."""

    apex: int
    state_hash: bytes
    assets: list[AssetReserve]

    def to_json(self) -> dict[str, object]:
        """Returns the report as the endpoint answers it."""
        return {
            "apex": self.apex,
            "state_hash": self.state_hash.hex(),
            "assets": [reserve_json(row) for row in self.assets],
        }


@dataclass(frozen=True, slots=True)
class _Snapshot:
    apex: int
    state_hash: bytes
    settings: ConstellationSettings
    cursors: dict[str, str]
    accounts: dict[str, int]
    fees: dict[str, int]


def _snapshot_read() -> _Snapshot | None:
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        if outermost:  # Inside a caller's transaction (tests) the level is already set.
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        snapshot = SnapshotRecord.objects.filter(id=1).first()
        if snapshot is None:
            return None
        record = SettingsRecord.objects.filter(apex__lte=snapshot.apex).order_by("-version")
        settings = record.first()
        if settings is None:
            return None
        sums = BalanceRecord.objects.values("asset").annotate(total=Sum("amount"))
        return _Snapshot(
            int(snapshot.apex),
            bytes(snapshot.state_hash),
            decode(ConstellationSettings, bytes(settings.data)),
            {r.provider: r.cursor for r in ProviderCursorRecord.objects.all()},
            {row["asset"]: int(row["total"]) for row in sums},
            {r.asset: int(r.amount) for r in FeeBalanceRecord.objects.all()},
        )


def _vaults_read(
    snapshot: _Snapshot, options: Mapping[str, Mapping[str, str]]
) -> dict[str, Mapping[str, int] | str]:
    vaults: dict[str, Mapping[str, int] | str] = {}
    for provider in snapshot.settings.providers:
        pid = provider_id(provider)
        cursor = snapshot.cursors.get(pid, provider.init_cursor)
        try:
            vaults[pid] = vault_balances_at(provider, cursor, options.get(pid))
        except VaultUnreadableError as error:
            vaults[pid] = str(error)
    return vaults


def reserves_report() -> ReservesReport | None:
    """Returns the proof of reserves at the persisted snapshot, None before the first one."""
    snapshot = _snapshot_read()
    if snapshot is None:
        return None
    options = getattr(django_settings, "PAYMENT_PROVIDERS", {})
    assets = reserves_compare(
        snapshot.settings.providers,
        snapshot.cursors,
        snapshot.accounts,
        snapshot.fees,
        _vaults_read(snapshot, options),
    )
    return ReservesReport(snapshot.apex, snapshot.state_hash, assets)
