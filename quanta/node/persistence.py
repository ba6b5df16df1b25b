"""Writes of the node's persisted state (the only module that writes it): one transaction
across the rows of every app (quanta, exchange, payments, chronicler).

- `quanta_persist` appends final quanta (and their per-account effects groups) to the chain.
- `batch_persist` moves the snapshot of the state rows to a newer apex, in one transaction.
- `journal_persist` writes alpha's journal: each quantum before it leaves alpha (group commit).
- `evidence_persist` keeps the evidence records the node gathered (`quanta.core.evidence`).
- `attestations_persist` signs and keeps the node's state hashes at attested apexes
  (`quanta.core.state_snapshot`; a joining node counts them, `quanta.node.join`).

`quanta.node.snapshot` reads them back.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from django.db import transaction

from chronicler.services import trades_persist
from exchange.models import AccountRecord, BalanceRecord, OrderRecord
from payments.models import WithdrawalRecord
from quanta.copy_insert import records_delete, records_insert
from quanta.core.evidence import EvidenceItem
from quanta.core.keys import KeyPair
from quanta.core.pending import Batch, QuantumRow
from quanta.core.signatures import sign_digest
from quanta.core.state_snapshot import attestation_digest
from quanta.core.xdr.codec import decode, encode
from quanta.core.xdr.schema import (
    ConstellationQuantum,
    ConstellationSettings,
    ConstellationUpdate,
    MessageType,
    Quantum,
    SignedQuantum,
)
from quanta.models import (
    AlphaJournalRecord,
    EffectsGroupRecord,
    EvidenceRecord,
    FeeBalanceRecord,
    ProviderCursorRecord,
    QuantumRecord,
    SettingsRecord,
    SnapshotRecord,
    StateAttestationRecord,
    UnfinalSettingsRecord,
)
from quanta.node_identity import history_kept

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
ATTESTATIONS_KEPT = 64
"""State attestations a node keeps (its newest apexes)."""


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
        if batch.fee_balances is not None:
            _fee_balances_persist(batch.fee_balances)
        # Below the snapshot every quantum is final and on disk: alpha's journal is done there.
        # Only the rows above the previous snapshot are left to delete (a quantum is journaled
        # before it can be final, so above the snapshot of its time), and the range is bounded
        # below: an index scan from apex 1 would pass every row deleted before, dead until a
        # VACUUM, and the cut would grow with the history (300-400 ms at ~900 000 quanta
        # without autovacuum, against 9 ms at the start).
        previous = SnapshotRecord.objects.filter(id=1).values_list("apex", flat=True).first()
        AlphaJournalRecord.objects.filter(apex__gt=previous or 0, apex__lte=batch.apex).delete()
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


def journal_persist(*, quanta: Sequence[SignedQuantum]) -> None:
    """Appends quanta alpha is about to send to its journal, in one transaction (idempotent:
    an apex already journaled is skipped; a recovered chain is journaled again)."""
    records_insert(
        AlphaJournalRecord,
        ("apex", "data"),
        [(int(signed.quantum.apex), encode(signed)) for signed in quanta],
        conflict=("apex",),
    )


def settings_record_persist(*, apex: int, settings: ConstellationSettings) -> None:
    """Records one version of the settings and the apex that brought it in; the records of
    unfinal settings of that version or older are done with."""
    SettingsRecord.objects.update_or_create(
        version=settings.version, defaults={"apex": apex, "data": encode(settings)}
    )
    UnfinalSettingsRecord.objects.filter(version__lte=settings.version).delete()


def unfinal_settings_forget(*, settings: list[ConstellationSettings]) -> None:
    """Deletes the unfinal records of these settings (a recovery found them final nowhere)."""
    for one in settings:
        UnfinalSettingsRecord.objects.filter(version=one.version, data=encode(one)).delete()


def unfinal_settings_persist(*, settings: ConstellationSettings) -> None:
    """Records the settings of an update alpha is about to execute (see
    `UnfinalSettingsRecord`)."""
    UnfinalSettingsRecord.objects.create(version=settings.version, data=encode(settings))


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
        ("order_id", "account", "asset", "side", "price", "amount", "client_order_id"),
        [
            (
                o.order_id,
                o.account_id,
                o.asset,
                int(o.side),
                Decimal(o.price),
                Decimal(o.amount),
                Decimal(o.client_order_id),
            )
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


def _fee_balances_persist(balances: dict[str, int]) -> None:
    FeeBalanceRecord.objects.exclude(asset__in=list(balances)).delete()
    for asset, amount in balances.items():
        FeeBalanceRecord.objects.update_or_create(asset=asset, defaults={"amount": amount})


def evidence_persist(*, items: Sequence[EvidenceItem]) -> None:
    """Writes evidence records, both signed payloads of each (the second may be absent)."""
    EvidenceRecord.objects.bulk_create(
        [
            EvidenceRecord(
                kind=item.kind.value,
                signer=item.signer,
                apex=item.apex,
                detail=item.detail,
                quantum=item.first.quantum,
                payload_hash=item.first.payload_hash,
                signature=item.first.signature,
                other_quantum=item.second.quantum if item.second else b"",
                other_payload_hash=item.second.payload_hash if item.second else b"",
                other_signature=item.second.signature if item.second else b"",
                carrier=item.carrier,
            )
            for item in items
        ]
    )


def attestations_persist(
    *, keypair: KeyPair, constellation_id: bytes, attested: list[tuple[int, bytes]]
) -> None:
    """Signs and records this node's state hashes at attested apexes, keeping the newest
    ATTESTATIONS_KEPT. An apex on record is overwritten: the same hash after a restart's
    replay, or the chain a rising alpha re-executed where its unfinal quantum was lost."""
    rows = [
        StateAttestationRecord(
            apex=apex,
            state_hash=state_hash,
            signature=sign_digest(keypair, attestation_digest(constellation_id, apex, state_hash)),
        )
        for apex, state_hash in attested
    ]
    with transaction.atomic():
        StateAttestationRecord.objects.bulk_create(
            rows,
            update_conflicts=True,
            unique_fields=["apex"],
            update_fields=["state_hash", "signature"],
        )
        kept = StateAttestationRecord.objects.order_by("-apex").values_list("apex", flat=True)
        oldest_kept = list(kept[ATTESTATIONS_KEPT - 1 : ATTESTATIONS_KEPT])
        if oldest_kept:
            StateAttestationRecord.objects.filter(apex__lt=oldest_kept[0]).delete()
