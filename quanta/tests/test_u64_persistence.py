"""Every uint64 of the protocol survives persistence, the snapshot load and the chronicler.

Goal: show that no unsigned 64-bit value a client can choose (a nonce, an amount, a history
cursor) or the chain can reach (apexes, order ids, account ids and sequences) meets a column
that cannot hold it. Before the columns were mapped losslessly, a payment with nonce 2^63 + 5
executed and finalized, and then every snapshot save on every node failed with an overflow of
a signed 64-bit column, for good.

Method: a real engine (`SnapshotChain`) whose chain head and account counter start just below
2^64, so every apex and account id it makes is near the maximum (an order there is refused:
order ids are apex·1000 + position, so a second chain starts at the last apex with order ids
below 2^64 and rests an order with an id near the maximum); a
deposit of 2^64 - 1 units and a payment with nonce 2^64 - 1 run through it; the final rows and a
snapshot are persisted, loaded back (same state hash, same values) and paged by the chronicler
with cursors at the maximum.
"""

from __future__ import annotations

import pytest

from chronicler.selectors import history_page
from exchange.core.matching import ORDER_IDS_PER_QUANTUM, order_id_of
from exchange.core.orderbook import Side
from exchange.models import AccountRecord, BalanceRecord, OrderRecord
from quanta.core.status import BadRequest
from quanta.core.testing import keypair, request_quantum
from quanta.core.xdr.schema import (
    AccountDataRequest,
    PaymentRequest,
    QuantumInfoRequest,
    QueryOrder,
)
from quanta.models import EffectsGroupRecord, QuantumRecord, SnapshotRecord
from quanta.node.snapshot import snapshot_load
from quanta.tests.test_persist import SnapshotChain

pytestmark = pytest.mark.django_db

U64_MAX = 2**64 - 1
UNIT = 10_000_000
ALICE, BOB = keypair(1), keypair(2)


class TopChain(SnapshotChain):
    """A chain started a few steps below the top of every u64 counter it advances."""

    def __init__(self) -> None:
        super().__init__()
        state = self.engine.state
        # Four quanta follow (two deposits, a payment, Bob's account data; his order there is
        # refused): the last lands at 2^64 - 2, so a history cursor of 2^64 - 1 (the last
        # apex + 1) is a valid one.
        state.apex = U64_MAX - 5
        state.next_account_id = U64_MAX - 10


@pytest.fixture
def chain() -> TopChain:
    chain = TopChain()
    chain.fund(ALICE, ("USD", U64_MAX), ("XLM", 1000 * UNIT))
    chain.fund(BOB, ("USD", 1000 * UNIT))
    request = PaymentRequest(1, ALICE.public_key, U64_MAX, "USD", UNIT, BOB.public_key)
    chain.run(request_quantum(request, ALICE, chain.constellation_id))
    with pytest.raises(BadRequest, match="no order ids left"):
        chain.order(BOB, Side.BUY, 10 * UNIT, 1.5)
    data = AccountDataRequest(1, BOB.public_key, 2)  # nonce 1 went to the refused order
    chain.run(request_quantum(data, BOB, chain.constellation_id))
    chain.persist()
    return chain


class TopOrderChain(SnapshotChain):
    """A chain whose order ids (apex·1000 + position) start just below 2^64."""

    def __init__(self) -> None:
        super().__init__()
        self.engine.state.apex = U64_MAX // ORDER_IDS_PER_QUANTUM - 5


def test_an_order_id_near_the_top_is_persisted_and_loaded_exactly() -> None:
    chain = TopOrderChain()
    chain.fund(BOB, ("USD", 1000 * UNIT))
    chain.order(BOB, Side.BUY, 10 * UNIT, 1.5)  # rests: its order id is near 2^64
    chain.persist()
    order_id = order_id_of(chain.engine.state.apex)
    assert order_id > U64_MAX - 10 * ORDER_IDS_PER_QUANTUM
    assert OrderRecord.objects.get().order_id == order_id
    loaded = snapshot_load()
    assert loaded.state.state_hash() == chain.engine.state.state_hash()
    assert loaded.state.require_exchange().get_order(order_id) is not None


def test_the_largest_values_are_persisted_exactly(chain: TopChain) -> None:
    alice = AccountRecord.objects.get(public_key=ALICE.public_key)
    assert alice.nonce == U64_MAX
    assert alice.id >= U64_MAX - 10
    assert BalanceRecord.objects.get(account=alice.id, asset="USD").amount == U64_MAX - UNIT
    assert not OrderRecord.objects.exists()
    snapshot = SnapshotRecord.objects.get()
    assert snapshot.apex == chain.engine.state.apex == U64_MAX - 1
    top = QuantumRecord.objects.order_by("-apex").first()
    assert top is not None and top.apex == snapshot.apex


def test_the_snapshot_loads_back_to_the_same_state(chain: TopChain) -> None:
    loaded = snapshot_load()
    assert loaded.state.state_hash() == chain.engine.state.state_hash() == loaded.state_hash
    alice = loaded.state.accounts.get_by_key(ALICE.public_key)
    assert alice is not None and alice.nonce == U64_MAX
    assert loaded.state.apex == chain.engine.state.apex
    assert loaded.state.next_account_id == chain.engine.state.next_account_id


def test_values_come_back_as_int_not_decimal(chain: TopChain) -> None:
    # Callers compare and hash them as int (state hashes, XDR): a Decimal would differ.
    values = AccountRecord.objects.values_list("id", "nonce", "sequence").first()
    assert values is not None and all(type(v) is int for v in values)
    amount = BalanceRecord.objects.values_list("amount", flat=True).first()
    assert type(amount) is int


def test_the_chronicler_pages_with_cursors_at_the_maximum(chain: TopChain) -> None:
    newest = history_page(QuantumInfoRequest(1, ALICE.public_key, U64_MAX, QueryOrder.DESC, 10))
    apexes = [item.apex for item in newest.items]
    assert apexes and apexes == sorted(apexes, reverse=True) and apexes[0] == U64_MAX - 2
    groups = EffectsGroupRecord.objects.filter(apex__in=apexes)
    assert {g.apex for g in groups} == set(apexes)
    above = history_page(QuantumInfoRequest(1, ALICE.public_key, apexes[0], QueryOrder.ASC, 10))
    assert above.items == () and above.next_cursor is None
    oldest = history_page(QuantumInfoRequest(1, ALICE.public_key, 0, QueryOrder.ASC, 10))
    assert [item.apex for item in oldest.items] == sorted(apexes)
