"""Order types, self-trade prevention and order batches, through the engine.

Goal: show each rule of `quanta/core/processors/order.py` on a small, commented book: post-only
rests or is refused, fill-or-kill fills entirely or applies nothing but its nonce, an account
reaching its own resting order cancels it instead of trading with it, and a batch runs its
items in order under one signature, all or nothing. Method: the `Node` helper of
`test_engine.py` (an initialized engine that checks the state's invariants after every
quantum); refusals are checked to leave the state hash and apex untouched.
"""

from __future__ import annotations

import pytest

from exchange.core.matching import TimeInForce, order_id_of
from exchange.core.orderbook import Side
from quanta.core import engine as engine_module
from quanta.core.engine import Executed
from quanta.core.keys import KeyPair
from quanta.core.status import StatusCode
from quanta.core.testing import QUOTE, request_quantum
from quanta.core.xdr.codec import XdrError, decode, encode
from quanta.core.xdr.schema import (
    BatchCancel,
    BatchCancelAll,
    BatchItem,
    BatchOrder,
    Limits,
    MessageEnvelope,
    NonceUpdateEffect,
    OrderBatchRequest,
    OrderPlacedEffect,
    OrderRemovedEffect,
    OrderRequest,
    RequestQuantum,
    TradeEffect,
)
from quanta.tests.core.test_engine import UNIT, Node, alice, bob, node

__all__ = ["alice", "bob", "node"]  # pytest fixtures, imported to be found here

GTC = TimeInForce.GOOD_TILL_EXPIRE
FOK = TimeInForce.FILL_OR_KILL
POST_ONLY = TimeInForce.POST_ONLY


def _effects[E](executed: Executed, kind: type[E]) -> list[E]:
    return [e for _, e in executed.emitted if isinstance(e, kind)]


def _batch(node: Node, who: KeyPair, *items: BatchItem) -> RequestQuantum:
    request = OrderBatchRequest(1, who.public_key, node.nonce(who), tuple(items))
    return request_quantum(request, who, node.cid)


def test_post_only_rests_when_it_does_not_cross(node: Node, alice: KeyPair) -> None:
    placed = node.order(alice, Side.SELL, 10 * UNIT, 2.0, tif=POST_ONLY)
    order = node.engine.state.require_exchange().get_order(order_id_of(placed.apex))
    assert order is not None
    assert order.amount == 10 * UNIT


def test_post_only_that_would_trade_is_refused(node: Node, alice: KeyPair, bob: KeyPair) -> None:
    node.order(alice, Side.SELL, 10 * UNIT, 1.0)
    message = node.rejected(
        request_quantum(
            _order_request(node, bob, Side.BUY, 5 * UNIT, 1.0, POST_ONLY), bob, node.cid
        ),
        StatusCode.BAD_REQUEST,
    )
    assert "post-only" in message


def test_fill_or_kill_fills_entirely_across_makers(
    node: Node, alice: KeyPair, bob: KeyPair
) -> None:
    node.order(alice, Side.SELL, 10 * UNIT, 1.0)
    node.order(alice, Side.SELL, 10 * UNIT, 1.001)
    fok = node.order(bob, Side.BUY, 15 * UNIT, 1.001, tif=FOK)
    taker = [e for e in _effects(fok, TradeEffect) if e.is_new_order]
    assert sum(e.asset_amount for e in taker) == 15 * UNIT
    assert node.engine.state.require_exchange().get_order(order_id_of(fok.apex)) is None


def test_fill_or_kill_that_cannot_fill_applies_only_its_nonce(
    node: Node, alice: KeyPair, bob: KeyPair
) -> None:
    node.order(alice, Side.SELL, 10 * UNIT, 1.0)
    book_before = node.engine.state.require_exchange().state_digest_items()
    killed = node.order(bob, Side.BUY, 11 * UNIT, 1.0, tif=FOK)
    assert [type(e) for _, e in killed.emitted] == [NonceUpdateEffect]
    assert node.engine.state.require_exchange().state_digest_items() == book_before
    assert node.balance(bob, QUOTE) == (1_000 * UNIT, 0)


def test_self_trade_cancels_the_resting_order(node: Node, alice: KeyPair, bob: KeyPair) -> None:
    """Alice's ask at 1.0 rests before Bob's; Alice buying at 1.0 cancels her own ask (no
    trade with herself) and fills against Bob's behind it."""
    node.deposit(bob, "XLM", 100 * UNIT)
    own = node.order(alice, Side.SELL, 10 * UNIT, 1.0)
    node.order(bob, Side.SELL, 5 * UNIT, 1.0)
    buy = node.order(alice, Side.BUY, 5 * UNIT, 1.0)
    removed = _effects(buy, OrderRemovedEffect)
    assert [e.order_id for e in removed] == [order_id_of(own.apex)]
    accounts = {account for account, e in buy.emitted if isinstance(e, TradeEffect)}
    assert len(accounts) == 2
    assert node.balance(alice, "XLM") == (505 * UNIT, 0)


def test_batch_places_and_cancels_in_order_with_item_ids(
    node: Node, alice: KeyPair, bob: KeyPair
) -> None:
    first = node.order(alice, Side.SELL, 10 * UNIT, 3.0)
    batch = node.run(
        _batch(
            node,
            alice,
            BatchCancel(order_id_of(first.apex)),
            BatchOrder(41, "XLM", Side.SELL, 5 * UNIT, 2.0, GTC),
            BatchOrder(42, "XLM", Side.SELL, 6 * UNIT, 2.5, POST_ONLY),
        )
    )
    placed = _effects(batch, OrderPlacedEffect)
    ids = [e.order_id for e in placed]
    assert ids == [order_id_of(batch.apex, 1), order_id_of(batch.apex, 2)]
    assert len(_effects(batch, NonceUpdateEffect)) == 1
    assert node.engine.state.require_exchange().get_order(order_id_of(first.apex)) is None
    assert node.balance(alice, "XLM") == (500 * UNIT, 11 * UNIT)


def test_cancel_all_cancels_only_that_market(node: Node, alice: KeyPair) -> None:
    node.deposit(alice, "BTC", 10 * UNIT)
    node.order(alice, Side.SELL, 1 * UNIT, 2.0)
    node.order(alice, Side.SELL, 2 * UNIT, 2.1)
    btc = node.order(alice, Side.SELL, 1 * UNIT, 9.0, asset="BTC")
    done = node.run(_batch(node, alice, BatchCancelAll("XLM")))
    assert len(_effects(done, OrderRemovedEffect)) == 2
    orders = node.engine.state.require_exchange().orders
    assert list(orders) == [order_id_of(btc.apex)]


def test_batch_with_a_refused_item_changes_nothing(node: Node, alice: KeyPair) -> None:
    resting = node.order(alice, Side.SELL, 1 * UNIT, 2.0)
    body = _batch(
        node,
        alice,
        BatchCancelAll("XLM"),
        BatchOrder(1, "XLM", Side.SELL, 10_000 * UNIT, 2.0, GTC),  # more than Alice holds
    )
    message = node.rejected(body, StatusCode.BAD_REQUEST)
    assert message.startswith("batch item 1: insufficient free balance")
    assert node.engine.state.require_exchange().get_order(order_id_of(resting.apex)) is not None


def test_empty_batch_is_refused(node: Node, alice: KeyPair) -> None:
    node.rejected(_batch(node, alice), StatusCode.BAD_REQUEST)


def test_batch_is_bounded_by_the_codec(alice: KeyPair) -> None:
    items = tuple(BatchCancel(n) for n in range(Limits.ORDER_BATCH_ITEMS_MAX + 1))
    too_many = OrderBatchRequest(1, alice.public_key, 1, items)
    fits = OrderBatchRequest(1, alice.public_key, 1, items[:-1])
    assert decode(OrderBatchRequest, encode(fits)) == fits
    try:
        encode(too_many)
    except XdrError:
        return
    raise AssertionError("a batch above the limit was encoded")


def test_batch_reverts_and_replays_exactly(node: Node, alice: KeyPair, bob: KeyPair) -> None:
    node.order(alice, Side.SELL, 10 * UNIT, 1.0)
    before = node.engine.state.state_hash()
    batch = node.run(
        _batch(
            node,
            bob,
            BatchOrder(7, "XLM", Side.BUY, 4 * UNIT, 1.0, FOK),
            BatchOrder(8, "XLM", Side.BUY, 4 * UNIT, 0.9, GTC),
        )
    )
    after = node.engine.state.state_hash()
    node.engine.revert_last(batch)
    node.engine.state.check_invariants()
    assert node.engine.state.state_hash() == before
    again = node.engine.replay(batch.quantum)
    assert again.quantum_hash == batch.quantum_hash
    assert node.engine.state.state_hash() == after


def _order_request(
    node: Node, who: KeyPair, side: Side, amount: int, price: float, tif: TimeInForce
) -> OrderRequest:
    return OrderRequest(1, who.public_key, node.nonce(who), "XLM", side, amount, price, tif)


def test_a_full_batch_verifies_one_signature(
    node: Node, alice: KeyPair, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The batch is one envelope: 16 orders cost the engine one signature check, not 16."""
    checked: list[object] = []
    real = engine_module.verify_envelope

    def counting(envelope: MessageEnvelope, constellation_id: bytes) -> None:
        checked.append(envelope)
        real(envelope, constellation_id)

    monkeypatch.setattr(engine_module, "verify_envelope", counting)
    items = [
        BatchOrder(n, "XLM", Side.SELL, 1 * UNIT, 2.0 + n / 1_000, GTC)
        for n in range(Limits.ORDER_BATCH_ITEMS_MAX)
    ]
    batch = node.run(_batch(node, alice, *items))
    assert len(checked) == 1
    assert len(_effects(batch, OrderPlacedEffect)) == Limits.ORDER_BATCH_ITEMS_MAX
