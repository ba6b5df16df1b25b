"""Writes and loads of the node's persisted state (the only module that writes it).

- `quanta_persist` appends final quanta (and their per-account effects groups) to the chain.
- `batch_persist` moves the snapshot of the state rows to a newer apex, in one transaction.
- `snapshot_load` rebuilds a `ConstellationState` from the snapshot rows and returns the
  quanta persisted above it, which the engine replays.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from django.db import transaction

from chronicler.services import history_kept, trades_persist
from exchange.core.accounts import Account
from exchange.core.orderbook import Order, Side
from exchange.models import AccountRecord, BalanceRecord, OrderRecord
from payments.models import WithdrawalRecord
from quanta.copy_insert import records_delete, records_insert
from quanta.core.effects import install_settings
from quanta.core.pending import Batch, QuantumRow
from quanta.core.state import ConstellationState, Withdrawal
from quanta.core.xdr.codec import decode, encode
from quanta.core.xdr.schema import (
    ConstellationQuantum,
    ConstellationSettings,
    ConstellationUpdate,
    MessageType,
    Quantum,
)
from quanta.models import (
    EffectsGroupRecord,
    ProviderCursorRecord,
    QuantumRecord,
    SettingsRecord,
    SnapshotRecord,
)

QUANTUM_FIELDS = (
    "apex",
    "quantum_hash",
    "payload_hash",
    "timestamp_ms",
    "kind",
    "initiator",
    "data",
    "signatures",
)
EFFECTS_GROUP_FIELDS = ("apex", "account", "account_sequence", "data")


def quanta_persist(*, rows: Sequence[QuantumRow]) -> None:
    """Appends final quanta and, on a node that keeps the history (`history_kept`), their
    effects groups and trades, in one transaction (idempotent: rows already on record are
    skipped). Runs for every quantum on every node, hence raw COPY
    rather than bulk_create (see `records_insert`)."""
    with transaction.atomic():
        records_insert(
            QuantumRecord,
            QUANTUM_FIELDS,
            [
                (
                    row.apex,
                    row.quantum_hash,
                    row.payload_hash,
                    row.timestamp_ms,
                    row.kind,
                    row.initiator,
                    row.data,
                    row.signatures,
                )
                for row in rows
            ],
        )
        if history_kept():
            records_insert(
                EffectsGroupRecord,
                EFFECTS_GROUP_FIELDS,
                [
                    (row.apex, group.account, group.account_sequence, data)
                    for row in rows
                    for group, data in zip(row.groups, row.group_data, strict=True)
                ],
            )
            # The public trades are derived rows of the same quanta: same transaction, so the
            # chronicler's trade table never lags behind or runs ahead of the chain.
            trades_persist(rows=rows)
        # Likewise the settings versions: a version is on record exactly when its quantum is
        # final, on every node, so no node shows settings that a crash could still undo.
        for row in rows:
            if row.kind == MessageType.CONSTELLATION_QUANTUM:
                settings_record_persist(apex=row.apex, settings=_settings_of(row))


def _settings_of(row: QuantumRow) -> ConstellationSettings:
    body = decode(Quantum, row.data).body
    assert isinstance(body, ConstellationQuantum), row.apex
    update = body.update.message
    assert isinstance(update, ConstellationUpdate), row.apex
    return update.settings


def batch_persist(*, batch: Batch) -> None:
    """Writes the rows of `batch` and moves the snapshot to its apex, in one transaction."""
    with transaction.atomic():
        _accounts_persist(batch)
        _orders_persist(batch)
        for provider, cursor in batch.cursors.items():
            ProviderCursorRecord.objects.update_or_create(
                provider=provider, defaults={"cursor": cursor}
            )
        for apex, settings in batch.settings:
            settings_record_persist(apex=apex, settings=settings)
        _withdrawals_persist(batch)
        SnapshotRecord.objects.update_or_create(
            id=1,
            defaults={
                "apex": batch.apex,
                "quantum_hash": batch.quantum_hash,
                "state_hash": batch.state_hash,
                "next_account_id": batch.next_account_id,
                "constellation_sequence": batch.constellation_sequence,
            },
        )


def settings_record_persist(*, apex: int, settings: ConstellationSettings) -> None:
    """Records one version of the settings and the apex that brought it in."""
    SettingsRecord.objects.update_or_create(
        version=settings.version, defaults={"apex": apex, "data": encode(settings)}
    )


def _accounts_persist(batch: Batch) -> None:
    records_insert(
        AccountRecord,
        ("id", "public_key", "nonce", "sequence"),
        [(a.account_id, a.public_key, a.nonce, a.sequence) for a in batch.accounts],
        conflict=("id",),
        update=("nonce", "sequence"),
    )
    records_insert(
        BalanceRecord,
        ("account", "asset", "amount", "liabilities"),
        [
            (a.account_id, asset, Decimal(amount), Decimal(liabilities))
            for a in batch.accounts
            for asset, amount, liabilities in a.balances
        ],
        conflict=("account", "asset"),
        update=("amount", "liabilities"),
    )


def _orders_persist(batch: Batch) -> None:
    records_delete(OrderRecord, "order_id", list(batch.removed_orders))
    records_insert(
        OrderRecord,
        ("order_id", "account", "asset", "side", "price", "amount"),
        [
            (o.order_id, o.account_id, o.asset, int(o.side), Decimal(o.price), Decimal(o.amount))
            for o in batch.orders
        ],
        conflict=("order_id",),
        update=("amount",),
    )


def _withdrawals_persist(batch: Batch) -> None:
    WithdrawalRecord.objects.filter(withdrawal_id__in=batch.removed_withdrawals).delete()
    WithdrawalRecord.objects.bulk_create(
        [
            WithdrawalRecord(
                withdrawal_id=w.withdrawal_id,
                account=w.account_id,
                provider=w.provider,
                asset=w.asset,
                amount=Decimal(w.amount),
                fee=Decimal(w.fee),
                destination=w.destination,
                transaction=w.transaction,
            )
            for w in batch.withdrawals
        ],
        ignore_conflicts=True,
    )


@dataclass(frozen=True, slots=True)
class LoadedNode:
    """A state rebuilt from the snapshot, with the final quanta persisted above it."""

    state: ConstellationState
    state_hash: bytes | None
    quanta_above: list[Quantum]


def snapshot_load() -> LoadedNode:
    """Rebuilds the state persisted by the last batch (empty if none) and the quanta above."""
    state = ConstellationState()
    snapshot = SnapshotRecord.objects.filter(id=1).first()
    if snapshot is None:
        return LoadedNode(state, None, _quanta_above(0))
    # Alpha records new settings as soon as they are in force, before the snapshot reaches
    # their apex: those above the snapshot come back by replaying their quantum.
    settings = SettingsRecord.objects.filter(apex__lte=snapshot.apex).order_by("-version").first()
    if settings is not None:
        install_settings(state, decode(ConstellationSettings, bytes(settings.data)))
    _accounts_load(state)
    _orders_load(state)
    _withdrawals_load(state)
    state.cursors = {r.provider: r.cursor for r in ProviderCursorRecord.objects.all()}
    state.apex = snapshot.apex
    state.last_hash = bytes(snapshot.quantum_hash)
    state.next_account_id = snapshot.next_account_id
    state.constellation_sequence = snapshot.constellation_sequence
    return LoadedNode(state, bytes(snapshot.state_hash), _quanta_above(snapshot.apex))


def _accounts_load(state: ConstellationState) -> None:
    accounts: dict[int, Account] = {}
    for record in AccountRecord.objects.order_by("id"):
        account = Account(record.id, bytes(record.public_key))
        account.nonce = record.nonce
        account.sequence = record.sequence
        accounts[record.id] = account
        state.accounts.add(account)
    for balance in BalanceRecord.objects.order_by("account", "asset"):
        created = accounts[balance.account].create_balance(balance.asset)
        created.amount = int(balance.amount)
        created.liabilities = int(balance.liabilities)


def _orders_load(state: ConstellationState) -> None:
    exchange = state.require_exchange() if state.exchange is not None else None
    for record in OrderRecord.objects.order_by("order_id"):
        assert exchange is not None
        market = exchange.market(record.asset)
        assert market is not None, record.asset
        side = Side(record.side)
        order = Order(
            record.order_id,
            record.account,
            side,
            record.asset,
            int(record.price),
            int(record.amount),
        )
        market.book(side).add(order)
        account = state.accounts.get_by_id(record.account)
        assert account is not None
        account.open_orders += 1


def _withdrawals_load(state: ConstellationState) -> None:
    for record in WithdrawalRecord.objects.order_by("withdrawal_id"):
        state.withdrawals[record.withdrawal_id] = Withdrawal(
            record.withdrawal_id,
            record.account,
            record.provider,
            record.asset,
            int(record.amount),
            int(record.fee),
            record.destination,
            bytes(record.transaction),
        )
        account = state.accounts.get_by_id(record.account)
        assert account is not None
        account.pending_withdrawal = record.withdrawal_id


def _quanta_above(apex: int) -> list[Quantum]:
    records = QuantumRecord.objects.filter(apex__gt=apex).order_by("apex")
    return [decode(Quantum, bytes(record.data)) for record in records]
