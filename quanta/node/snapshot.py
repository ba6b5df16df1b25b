"""Loads of the node's persisted state: `snapshot_load` rebuilds a `ConstellationState` from
the snapshot rows (written by `quanta.node.persistence`) and returns the quanta persisted
above it, which the engine replays.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from exchange.core.accounts import Account
from exchange.core.orderbook import Order, Side
from exchange.models import AccountRecord, BalanceRecord, OrderRecord
from payments.models import WithdrawalRecord
from quanta.core.durable import gap_free_count
from quanta.core.effects import install_settings
from quanta.core.state import ConstellationState, Withdrawal
from quanta.core.xdr.codec import decode
from quanta.core.xdr.schema import ConstellationSettings, PayloadProof, Quantum, SignedQuantum
from quanta.models import (
    AlphaJournalRecord,
    FeeBalanceRecord,
    ProviderCursorRecord,
    QuantumRecord,
    SettingsRecord,
    SnapshotRecord,
    UnfinalSettingsRecord,
)
from quanta.selectors import constellation_id


@dataclass(frozen=True, slots=True)
class LoadedNode:
    """A state rebuilt from the snapshot, with the final quanta persisted above it up to the
    first hole (replayed), those above the hole (with their signatures: a rising alpha takes
    them as its own offer) and the settings recorded as unfinal (alpha's updates)."""

    state: ConstellationState
    state_hash: bytes | None
    quanta_above: list[Quantum]
    above_hole: list[SignedQuantum] = field(default_factory=list)
    unfinal_settings: list[ConstellationSettings] = field(default_factory=list)
    journal: list[SignedQuantum] = field(default_factory=list)
    """Alpha's journal above the snapshot, in apex order: what it sent (`journal_above`)."""
    genesis: ConstellationSettings | None = None
    """The genesis settings on record when no snapshot exists (alpha records them when it
    executes the genesis, before the genesis quantum is final)."""

    def journal_above(self, apex: int) -> list[SignedQuantum]:
        """Returns the journaled quanta above `apex` (the replayed rows): alpha's own executed
        chain, which a rising alpha keeps (`AlphaNode.begin_rising`, `own`)."""
        return [signed for signed in self.journal if signed.quantum.apex > apex]


def snapshot_load() -> LoadedNode:
    """Rebuilds the state persisted by the last batch (empty if none) and the quanta above."""
    state = ConstellationState()
    snapshot = SnapshotRecord.objects.filter(id=1).first()
    if snapshot is None:
        genesis = SettingsRecord.objects.filter(version=1).first()
        settings = None if genesis is None else decode(ConstellationSettings, bytes(genesis.data))
        return LoadedNode(state, None, *_quanta_above(0), genesis=settings)
    snapshot_state_load(state, snapshot)
    return LoadedNode(state, bytes(snapshot.state_hash), *_quanta_above(snapshot.apex))


def snapshot_state_load(state: ConstellationState, snapshot: SnapshotRecord) -> None:
    """Fills an empty state with the rows of the snapshot (also read by the snapshot a
    joining node is served, `quanta.node.join`, inside one transaction)."""
    # Alpha records new settings as soon as they are in force, before the snapshot reaches
    # their apex: those above the snapshot come back by replaying their quantum.
    settings = SettingsRecord.objects.filter(apex__lte=snapshot.apex).order_by("-version").first()
    if settings is not None:
        install_settings(
            state, decode(ConstellationSettings, bytes(settings.data)), constellation_id()
        )
    _accounts_load(state)
    _orders_load(state)
    _withdrawals_load(state)
    state.cursors = {r.provider: r.cursor for r in ProviderCursorRecord.objects.all()}
    state.fee_balances = {r.asset: int(r.amount) for r in FeeBalanceRecord.objects.all()}
    state.apex = snapshot.apex
    state.last_hash = bytes(snapshot.quantum_hash)
    state.next_account_id = snapshot.next_account_id
    state.constellation_sequence = snapshot.constellation_sequence


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
            int(record.client_order_id),
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


def _quanta_above(
    apex: int,
) -> tuple[list[Quantum], list[SignedQuantum], list[ConstellationSettings], list[SignedQuantum]]:
    # Alpha's final quanta reach its disk out of apex order (finality is not in apex order):
    # only the rows up to the first hole can be replayed on top of the snapshot.
    records = list(QuantumRecord.objects.filter(apex__gt=apex).order_by("apex"))
    replayable = gap_free_count([int(record.apex) for record in records], apex)
    above_hole = [
        SignedQuantum(
            decode(Quantum, bytes(r.data)), decode(PayloadProof, bytes(r.signatures)).signatures
        )
        for r in records[replayable:]
    ]
    unfinal = [
        decode(ConstellationSettings, bytes(r.data)) for r in UnfinalSettingsRecord.objects.all()
    ]
    journal = [
        decode(SignedQuantum, bytes(r.data))
        for r in AlphaJournalRecord.objects.filter(apex__gt=apex).order_by("apex")
    ]
    replayed = [decode(Quantum, bytes(r.data)) for r in records[:replayable]]
    return replayed, above_hole, unfinal, journal


def quantum_timestamp_ms(apex: int) -> int:
    """Returns the timestamp of the persisted quantum at `apex` (0 if none): the engine's
    previous timestamp after a restart, so quantum time never goes back across one."""
    stamp = QuantumRecord.objects.filter(apex=apex).values_list("timestamp_ms", flat=True).first()
    return int(stamp or 0)
