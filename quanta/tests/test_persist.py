"""Persistence of final quanta: exact rows, idempotent, safe inside a caller's transaction.

Goal: show that `quanta_persist` (and the `trades_persist` it calls) writes exactly the values
of the rows, once, however often and in whatever overlap the same rows come again. Method: a
real engine (`Chain`) produces payment, order and trade quanta; the tables are read back and
compared with the rows. One hand-made row carries the largest amounts a trade can hold.
"""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest
from django.db import connection, transaction

from chronicler.core.market_data import trades_of_quantum
from chronicler.models import TradeRecord
from chronicler.tests.builders import UNIT, Chain
from exchange.core.matching import order_id_of
from exchange.core.orderbook import Side
from exchange.models import OrderRecord
from quanta.core.engine import Executed
from quanta.core.pending import Batch, PendingUpdates, QuantumRow
from quanta.core.testing import (
    PROVIDER_ID,
    default_settings,
    deposit_quantum,
    keypair,
    withdrawal_quantum,
)
from quanta.core.xdr.codec import decode, encode
from quanta.core.xdr.schema import (
    EffectsGroup,
    NodeSignature,
    Quantum,
    QuantumBody,
    SignedQuantum,
    TradeEffect,
    WithdrawalRequest,
)
from quanta.models import AlphaJournalRecord, EffectsGroupRecord, FeeBalanceRecord, QuantumRecord
from quanta.node.persistence import (
    batch_persist,
    journal_persist,
    quanta_persist,
    settings_record_persist,
    unfinal_settings_forget,
    unfinal_settings_persist,
)
from quanta.node.snapshot import snapshot_load

pytestmark = pytest.mark.django_db

ALICE, BOB = keypair(1), keypair(2)
U64_MAX = 2**64 - 1


@pytest.fixture
def rows() -> list[QuantumRow]:
    """Funding, payments and orders of which two fill (two trades)."""
    chain = Chain()
    chain.fund(ALICE, ("USD", 1000 * UNIT), ("XLM", 1000 * UNIT))
    chain.fund(BOB, ("USD", 1000 * UNIT), ("XLM", 1000 * UNIT))
    chain.pay(ALICE, BOB, UNIT)
    chain.order(ALICE, Side.SELL, 10 * UNIT, 1.5)
    chain.order(ALICE, Side.SELL, 10 * UNIT, 1.6)
    chain.order(BOB, Side.BUY, 15 * UNIT, 1.7)
    chain.pay(BOB, ALICE, 2 * UNIT)
    return chain.take_rows()


def stored() -> tuple[list[tuple[object, ...]], ...]:
    """Returns every persisted row of the three tables, bytes as bytes, auto ids left out."""
    quanta = QuantumRecord.objects.order_by("apex").values_list(
        "apex", "quantum_hash", "payload_hash", "timestamp_ms", "kind", "initiator", "data",
        "signatures",
    )  # fmt: skip
    groups = EffectsGroupRecord.objects.order_by("id").values_list(
        "apex", "account", "account_sequence", "data"
    )
    trades = TradeRecord.objects.order_by("id").values_list(
        "market", "apex", "index", "price", "amount", "quote_amount", "side", "timestamp_ms"
    )
    return tuple(
        [tuple(bytes(v) if isinstance(v, memoryview) else v for v in r) for r in table]
        for table in (quanta, groups, trades)
    )


def expected(rows: list[QuantumRow]) -> tuple[list[tuple[object, ...]], ...]:
    """Returns what `stored` must give for `rows`: their values, in their order."""
    quanta = [
        (r.apex, r.quantum_hash, r.payload_hash, r.timestamp_ms, r.kind, r.initiator, r.data,
         r.signatures)
        for r in rows
    ]  # fmt: skip
    groups = [(r.apex, g.account, g.account_sequence, encode(g)) for r in rows for g in r.groups]
    trades = [
        (t.market, t.apex, t.index, t.price, Decimal(t.amount), Decimal(t.quote_amount), t.side,
         t.timestamp_ms)
        for r in rows
        for t in trades_of_quantum(r.apex, r.timestamp_ms, r.groups)
    ]  # fmt: skip
    return quanta, groups, trades


def test_rows_are_stored_with_their_exact_values(rows: list[QuantumRow]) -> None:
    quanta_persist(rows=rows)
    assert stored() == expected(rows)
    assert len(stored()[2]) == 2


def test_persisting_the_same_rows_twice_keeps_one_copy(rows: list[QuantumRow]) -> None:
    quanta_persist(rows=rows)
    quanta_persist(rows=rows)  # no error: a replay after a crash writes the same rows again
    assert stored() == expected(rows)


def test_overlapping_batches_add_only_the_new_rows(rows: list[QuantumRow]) -> None:
    quanta_persist(rows=rows[:4])
    quanta_persist(rows=rows[2:])
    assert stored() == expected(rows)


def test_nothing_to_persist_is_a_no_op() -> None:
    quanta_persist(rows=[])
    assert stored() == ([], [], [])


def test_a_second_call_in_one_transaction_writes_only_its_own_rows(
    rows: list[QuantumRow],
) -> None:
    with transaction.atomic():
        quanta_persist(rows=rows[:3])
        for model in (QuantumRecord, EffectsGroupRecord, TradeRecord):
            model.objects.filter(apex=rows[0].apex).delete()
        quanta_persist(rows=rows[3:])
    assert stored() == expected(rows[1:])


def test_a_rolled_back_call_leaves_nothing_and_the_next_one_works(
    rows: list[QuantumRow],
) -> None:
    with pytest.raises(RuntimeError), transaction.atomic():
        quanta_persist(rows=rows)
        raise RuntimeError("the caller fails after persisting")
    assert stored() == ([], [], [])
    quanta_persist(rows=rows)
    assert stored() == expected(rows)


def test_the_largest_amounts_are_stored_exactly() -> None:
    fill = TradeEffect(
        order_id=U64_MAX,
        asset="XLM",
        side=Side.BUY,
        price=2**63 - 1,
        asset_amount=U64_MAX,
        quote_amount=U64_MAX - 1,
        is_new_order=True,
    )
    group = EffectsGroup(account=U64_MAX >> 1, account_sequence=U64_MAX >> 1, effects=(fill,))
    row = QuantumRow(
        7,
        b"q" * 32,
        b"p" * 32,
        1_700_000_000_000,
        3,
        9,
        b"data",
        b"sig",
        (group,),
        (encode(group),),
    )
    quanta_persist(rows=[row])
    quanta_persist(rows=[row])
    assert stored() == expected([row])
    trade = TradeRecord.objects.get()
    assert (trade.amount, trade.quote_amount) == (Decimal(U64_MAX), Decimal(U64_MAX - 1))


class SnapshotChain(Chain):
    """A chain whose quanta also feed a pending-updates manager, as on a node."""

    def __init__(self) -> None:
        self.pending = PendingUpdates(5, 50_000)
        super().__init__()

    def run(self, body: QuantumBody) -> Executed:
        executed = super().run(body)
        self.pending.record(executed)
        return executed

    def persist(self) -> None:
        """Persists the final rows and cuts and persists a snapshot batch, as the worker does."""
        quanta_persist(rows=self.take_rows())
        batch_persist(batch=self.pending.cut(self.engine.state))


def test_snapshots_load_back_to_the_state_they_were_cut_from() -> None:
    # Accounts, balances and orders are upserted and removed orders deleted in bulk (COPY and
    # one array parameter): a later snapshot must overwrite, add and remove the right rows.
    chain = SnapshotChain()
    chain.fund(ALICE, ("USD", 1000 * UNIT), ("XLM", 1000 * UNIT))
    chain.fund(BOB, ("USD", 1000 * UNIT), ("XLM", 1000 * UNIT))
    # Labelled orders (one with the largest u64): the label is committed and persisted.
    labels = [1, 2, 2**64 - 1, 4]
    resting = [
        order_id_of(chain.order(ALICE, Side.SELL, 10 * UNIT, 1.5 + i / 10, "XLM", label).apex)
        for i, label in enumerate(labels)
    ]
    chain.persist()
    assert sorted(OrderRecord.objects.values_list("order_id", flat=True)) == resting
    chain.order(BOB, Side.BUY, 15 * UNIT, 1.65)  # Fills the first order, half of the second.
    chain.pay(BOB, ALICE, 2 * UNIT)
    chain.persist()
    loaded = snapshot_load()
    assert loaded.state.state_hash() == chain.engine.state.state_hash()
    assert sorted(OrderRecord.objects.values_list("order_id", flat=True)) == resting[1:]
    assert OrderRecord.objects.get(order_id=resting[1]).amount == 5 * UNIT
    exchange = loaded.state.require_exchange()
    assert [exchange.orders[i].client_order_id for i in resting[1:]] == labels[1:]


def test_the_fee_account_is_persisted_and_loads_back() -> None:
    # The fee account lives outside the accounts (account 0): a snapshot without its rows
    # would load a state of another hash, and the next node to load it would diverge.
    chain = SnapshotChain()
    chain.fund(ALICE, ("USD", 1000 * UNIT), ("XLM", 1000 * UNIT))
    for fee in (3 * UNIT, 4 * UNIT):
        request = WithdrawalRequest(
            1, ALICE.public_key, chain._nonce(ALICE), PROVIDER_ID, "XLM", UNIT, "G", fee
        )
        created = chain.run(withdrawal_quantum(request, ALICE, chain.constellation_id))
        chain.run(deposit_quantum(next(chain.cursor), withdrawals=[(created.apex, True)]))
        chain.persist()
    assert dict(FeeBalanceRecord.objects.values_list("asset", "amount")) == {"XLM": 7 * UNIT}
    loaded = snapshot_load()
    assert loaded.state.fee_balances == {"XLM": 7 * UNIT}
    assert loaded.state.state_hash() == chain.engine.state.state_hash()


def test_a_hole_in_the_rows_stops_the_replay_and_keeps_the_rows_above_it(
    rows: list[QuantumRow],
) -> None:
    # Alpha's final quanta reach its disk out of apex order: replaying the rows above a hole
    # failed the restart ("expected apex 4, got 5"). They come back signed, for Rising.
    hole = rows[3].apex
    quanta_persist(rows=rows[:3] + rows[4:])
    loaded = snapshot_load()
    assert [q.apex for q in loaded.quanta_above] == [r.apex for r in rows[:3]]
    assert [s.quantum.apex for s in loaded.above_hole] == [r.apex for r in rows[4:]]
    assert all(s.signatures for s in loaded.above_hole), "with their proofs"
    assert hole not in [s.quantum.apex for s in loaded.above_hole]


def test_unfinal_settings_are_loaded_until_their_version_is_final() -> None:
    settings = default_settings([keypair(200), keypair(201), keypair(202)])
    newer = dataclasses.replace(settings, version=2)
    unfinal_settings_persist(settings=newer)
    assert snapshot_load().unfinal_settings == [newer]
    settings_record_persist(apex=7, settings=newer)
    assert snapshot_load().unfinal_settings == []


def test_unfinal_settings_found_final_nowhere_are_forgotten() -> None:
    settings = default_settings([keypair(200), keypair(201), keypair(202)])
    stale = dataclasses.replace(settings, version=2)
    other = dataclasses.replace(settings, version=2, min_account_balance=7)
    unfinal_settings_persist(settings=stale)
    unfinal_settings_persist(settings=other)
    unfinal_settings_forget(settings=[stale])
    assert snapshot_load().unfinal_settings == [other], "only the records of those settings"


def test_the_journal_loads_back_above_the_replayed_rows_until_a_snapshot_covers_it() -> None:
    # Alpha's journal (group commit): what it sent loads back signed, in apex order, for a
    # rising alpha; a snapshot at an apex ends the journal there (every row below is final).
    chain = SnapshotChain()
    chain.fund(ALICE, ("USD", 1000 * UNIT))
    chain.persist()
    snapshot_apex = chain.engine.state.apex
    sent: list[SignedQuantum] = []
    for amount in (UNIT, 2 * UNIT, 3 * UNIT):
        chain.fund(BOB, ("USD", amount))
    for row in chain.take_rows():
        quantum = decode(Quantum, row.data)
        sent.append(SignedQuantum(quantum, (NodeSignature(0, bytes(64)),)))
    journal_persist(quanta=list(reversed(sent)))
    journal_persist(quanta=sent[:1])  # again: one row per apex
    loaded = snapshot_load()
    assert loaded.journal == sent and loaded.journal_above(sent[0].quantum.apex) == sent[1:]
    assert [q.apex for q in loaded.quanta_above] == [], "journaled, not final: not replayed"
    assert snapshot_apex < sent[0].quantum.apex
    quanta_persist(rows=[])
    batch_persist(batch=chain.pending.cut(chain.engine.state))  # the snapshot reaches them
    assert snapshot_load().journal == []


def journal_tuples_read() -> int:
    """Returns the journal's rows and index entries this connection's scans read, as counted
    by PostgreSQL's not yet reported statistics (`pg_stat_get_xact_*`, which may still hold
    earlier transactions' counts: callers take a difference). Dead entries count too."""
    with connection.cursor() as cursor:
        # Tuples returned: by sequential scans of the table, by scans of each of its indexes.
        cursor.execute(
            "SELECT pg_stat_get_xact_tuples_returned(%s::regclass) + coalesce(("
            "SELECT sum(pg_stat_get_xact_tuples_returned(indexrelid)) FROM pg_index"
            " WHERE indrelid = %s::regclass), 0)",
            [AlphaJournalRecord._meta.db_table] * 2,
        )
        found = cursor.fetchone()
    assert found is not None
    return int(found[0])


@pytest.mark.django_db(transaction=True)  # the rows deleted before are dead only once committed
def test_a_snapshot_reads_only_the_journal_rows_it_ends_not_the_whole_history() -> None:
    # A snapshot cut used to delete `apex <= snapshot apex`: a scan from apex 1 over every row
    # deleted before (dead until a VACUUM), so alpha's cut grew with its history: 9 ms at the
    # start of bench/cluster.py, 300-400 ms after ~900 000 quanta with PostgreSQL's
    # autovacuum off, and finality's p99 peaked at every cut. Method: 20 000 journal rows
    # ended by one snapshot and committed, 10 more by the next; the second may read only
    # about those 10.
    history, tail = 20_000, 10
    AlphaJournalRecord.objects.bulk_create(
        AlphaJournalRecord(apex=apex, data=b"") for apex in range(1, history + 1)
    )
    batch_persist(batch=Batch(history, bytes(32), bytes(32), 1, 0))
    AlphaJournalRecord.objects.bulk_create(
        AlphaJournalRecord(apex=apex, data=b"") for apex in range(history + 1, history + tail + 2)
    )
    with transaction.atomic():  # SET LOCAL holds for this transaction only
        with connection.cursor() as cursor:
            # The plan alpha's database chose after 580 000 quanta (a bitmap scan: unlike a
            # plain index scan, it never marks the dead entries it passes, so they pile up).
            cursor.execute("SET LOCAL enable_indexscan = off; SET LOCAL enable_seqscan = off")
        before = journal_tuples_read()
        batch_persist(batch=Batch(history + tail, bytes(32), bytes(32), 1, 0))
        read = journal_tuples_read() - before
    assert read <= 10 * tail, f"the cut read {read} journal entries for {tail} rows"
    remaining = list(AlphaJournalRecord.objects.values_list("apex", flat=True))
    assert remaining == [history + tail + 1], "the rows above the snapshot stay"
