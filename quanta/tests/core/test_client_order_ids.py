"""Client order ids through the engine: stored, repeated in effects, unique, cancel by label.

Goal: show each rule of the client order id (`quanta/core/processors/order.py`): the resting
order keeps the label, every effect of the order repeats it (OrderPlaced, both Trade effects,
OrderRemoved) and account data lists it; an order reusing a label a resting order of the same
account holds is refused, another account may use it, and a label is free again once its
order left the book; a cancellation (single or in a batch) names the order by its label with
order id 0, and an unknown label, a label of another account or both names at once are
refused. Method: the `Node` helper of `test_engine.py` (invariants checked after every
quantum, the label's uniqueness among them); refusals leave state hash and apex untouched, and
a quantum that exhausted a labelled maker reverts to the same state hash (the label is
committed) and replays to the same quantum hash.
"""

from __future__ import annotations

from exchange.core.matching import TimeInForce, order_id_of
from exchange.core.orderbook import Side
from quanta.core.engine import Executed
from quanta.core.keys import KeyPair
from quanta.core.processors.account_data import account_data
from quanta.core.status import StatusCode
from quanta.core.testing import request_quantum
from quanta.core.xdr.schema import (
    BatchCancel,
    BatchItem,
    BatchOrder,
    OrderBatchRequest,
    OrderCancellationRequest,
    OrderPlacedEffect,
    OrderRemovedEffect,
    OrderRequest,
    RequestQuantum,
    TradeEffect,
)
from quanta.tests.core.test_engine import UNIT, Node, alice, bob, node

__all__ = ["alice", "bob", "node"]  # pytest fixtures, imported to be found here

GTC = TimeInForce.GOOD_TILL_EXPIRE
IOC = TimeInForce.IMMEDIATE_OR_CANCEL


def _effects[E](executed: Executed, kind: type[E]) -> list[E]:
    return [e for _, e in executed.emitted if isinstance(e, kind)]


def _order(
    node: Node,
    who: KeyPair,
    side: Side,
    amount: int,
    price: float,
    label: int,
    tif: TimeInForce = GTC,
) -> RequestQuantum:
    request = OrderRequest(
        1, who.public_key, node.nonce(who), "XLM", side, amount, price, tif, label
    )
    return request_quantum(request, who, node.cid)


def _cancel(node: Node, who: KeyPair, order_id: int, label: int) -> RequestQuantum:
    request = OrderCancellationRequest(1, who.public_key, node.nonce(who), order_id, label)
    return request_quantum(request, who, node.cid)


def _batch(node: Node, who: KeyPair, *items: BatchItem) -> RequestQuantum:
    request = OrderBatchRequest(1, who.public_key, node.nonce(who), tuple(items))
    return request_quantum(request, who, node.cid)


def _labels(node: Node, who: KeyPair) -> dict[int, int]:
    """Returns order id -> client order id of the account's open orders (account data)."""
    account = node.engine.state.accounts.get_by_key(who.public_key)
    assert account is not None
    return {o.order_id: o.client_order_id for o in account_data(node.engine.state, account).orders}


def test_a_resting_order_keeps_its_label_in_effects_and_account_data(
    node: Node, alice: KeyPair
) -> None:
    placed = node.run(_order(node, alice, Side.SELL, 10 * UNIT, 2.0, 77))
    order_id = order_id_of(placed.apex)
    (effect,) = _effects(placed, OrderPlacedEffect)
    assert (effect.order_id, effect.client_order_id) == (order_id, 77)
    order = node.engine.state.require_exchange().get_order(order_id)
    assert order is not None and order.client_order_id == 77
    assert _labels(node, alice) == {order_id: 77}


def test_trades_repeat_the_labels_of_maker_and_taker(
    node: Node, alice: KeyPair, bob: KeyPair
) -> None:
    node.run(_order(node, alice, Side.SELL, 10 * UNIT, 1.0, 5))
    taken = node.run(_order(node, bob, Side.BUY, 4 * UNIT, 1.0, 9, IOC))
    labels = {e.is_new_order: e.client_order_id for e in _effects(taken, TradeEffect)}
    assert labels == {False: 5, True: 9}


def test_cancel_by_label_removes_that_order_and_unlocks_it(node: Node, alice: KeyPair) -> None:
    kept = node.run(_order(node, alice, Side.SELL, 1 * UNIT, 3.0, 1))
    node.run(_order(node, alice, Side.SELL, 10 * UNIT, 2.0, 2))
    cancelled = node.run(_cancel(node, alice, 0, 2))
    (removed,) = _effects(cancelled, OrderRemovedEffect)
    assert removed.client_order_id == 2
    assert _labels(node, alice) == {order_id_of(kept.apex): 1}
    assert node.balance(alice, "XLM") == (500 * UNIT, 1 * UNIT)


def test_cancel_by_an_unknown_label_is_refused(node: Node, alice: KeyPair, bob: KeyPair) -> None:
    node.run(_order(node, bob, Side.BUY, 1 * UNIT, 0.5, 8))  # Bob's label, not Alice's
    message = node.rejected(_cancel(node, alice, 0, 8), StatusCode.BAD_REQUEST)
    assert message == "no resting order has client order id 8"


def test_cancel_naming_both_id_and_label_is_refused(node: Node, alice: KeyPair) -> None:
    placed = node.run(_order(node, alice, Side.SELL, 1 * UNIT, 3.0, 4))
    body = _cancel(node, alice, order_id_of(placed.apex), 4)
    message = node.rejected(body, StatusCode.BAD_REQUEST)
    assert "not both" in message


def test_a_label_held_by_a_resting_order_is_refused_whatever_the_order_type(
    node: Node, alice: KeyPair, bob: KeyPair
) -> None:
    held = node.run(_order(node, alice, Side.SELL, 1 * UNIT, 3.0, 6))
    for tif in (GTC, IOC):
        message = node.rejected(
            _order(node, alice, Side.SELL, 1 * UNIT, 3.1, 6, tif), StatusCode.BAD_REQUEST
        )
        expected = f"client order id 6 is already used by resting order {order_id_of(held.apex)}"
        assert message == expected
    node.run(_order(node, bob, Side.BUY, 1 * UNIT, 0.5, 6))  # another account's own label


def test_a_label_is_free_again_once_its_order_left_the_book(
    node: Node, alice: KeyPair, bob: KeyPair
) -> None:
    node.run(_order(node, alice, Side.SELL, 1 * UNIT, 1.0, 3))
    node.run(_order(node, bob, Side.BUY, 1 * UNIT, 1.0, 0, IOC))  # fills Alice's order entirely
    again = node.run(_order(node, alice, Side.SELL, 1 * UNIT, 1.0, 3))
    assert _labels(node, alice) == {order_id_of(again.apex): 3}


def test_a_batch_cancels_by_label_and_reuses_it_in_one_request(node: Node, alice: KeyPair) -> None:
    node.run(_order(node, alice, Side.SELL, 1 * UNIT, 3.0, 12))
    replaced = node.run(
        _batch(
            node,
            alice,
            BatchCancel(0, 12),
            BatchOrder(12, "XLM", Side.SELL, 2 * UNIT, 2.9, GTC),
        )
    )
    assert [e.client_order_id for e in _effects(replaced, OrderRemovedEffect)] == [12]
    assert _labels(node, alice) == {order_id_of(replaced.apex, 1): 12}


def test_a_batch_reusing_a_label_or_cancelling_an_unknown_one_changes_nothing(
    node: Node, alice: KeyPair
) -> None:
    twice = _batch(
        node,
        alice,
        BatchOrder(21, "XLM", Side.SELL, 1 * UNIT, 3.0, GTC),
        BatchOrder(21, "XLM", Side.SELL, 1 * UNIT, 3.1, GTC),
    )
    message = node.rejected(twice, StatusCode.BAD_REQUEST)
    assert message.startswith("batch item 1: client order id 21 is already used")
    unknown = _batch(
        node, alice, BatchOrder(22, "XLM", Side.SELL, 1 * UNIT, 3.0, GTC), BatchCancel(0, 23)
    )
    message = node.rejected(unknown, StatusCode.BAD_REQUEST)
    assert message == "batch item 1: no resting order has client order id 23"


def test_exhausting_a_labelled_maker_reverts_and_replays_exactly(
    node: Node, alice: KeyPair, bob: KeyPair
) -> None:
    """The revert puts the maker back from the Trade effect: its label must come back too
    (the state hash commits it), and a cancel by label works on the restored order."""
    node.run(_order(node, alice, Side.SELL, 2 * UNIT, 1.0, 31))
    before = node.engine.state.state_hash()
    taken = node.run(_order(node, bob, Side.BUY, 2 * UNIT, 1.0, 0, IOC))
    after = node.engine.state.state_hash()
    node.engine.revert_last(taken)
    node.engine.state.check_invariants()
    assert node.engine.state.state_hash() == before
    assert list(_labels(node, alice).values()) == [31]
    assert node.engine.replay(taken.quantum).quantum_hash == taken.quantum_hash
    assert node.engine.state.state_hash() == after
