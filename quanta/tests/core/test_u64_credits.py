"""Credits that would carry a balance past 2^64 - 1 follow a deterministic rule, not an assert.

Goal: a deposit item that would overflow its account's balance is not credited (it stays in
the vault, like a payment to an unknown key) while the cursor advances, and an order one of
whose fills would overflow a balance (the taker's or a maker's) is refused with nothing
changed. Before, only `assert`s guarded these credits: the AssertionError escaped the engine's
error handling (alpha rebuilt the same deposit forever, its cursor stuck), and under
`python -O` nothing guarded them at all.
Method: the engine test node (`test_engine.Node`); balances brought near the top by deposits.
"""

from __future__ import annotations

from exchange.core.amounts import U64_MAX
from exchange.core.orderbook import Side
from quanta.core.status import StatusCode
from quanta.core.testing import PROVIDER_ID, QUOTE, keypair, request_quantum
from quanta.core.xdr.schema import OrderRequest, TimeInForce
from quanta.tests.core.test_engine import UNIT, Node

ALICE, BOB = keypair(1), keypair(2)


def test_a_deposit_that_would_overflow_is_not_credited_and_the_cursor_moves() -> None:
    node = Node()
    node.deposit(ALICE, QUOTE, U64_MAX - 5)
    executed = node.deposit(ALICE, QUOTE, 10)
    assert node.balance(ALICE, QUOTE) == (U64_MAX - 5, 0)
    assert node.engine.state.cursors[PROVIDER_ID] == "2"
    assert executed.apex == node.engine.state.apex
    node.deposit(ALICE, QUOTE, 5)  # exactly to the top still fits
    assert node.balance(ALICE, QUOTE) == (U64_MAX, 0)


def test_an_order_whose_fill_would_overflow_the_taker_is_refused() -> None:
    node = Node()
    node.deposit(ALICE, QUOTE, 1_000 * UNIT)
    node.deposit(ALICE, "XLM", U64_MAX - UNIT)
    node.deposit(BOB, QUOTE, 1_000 * UNIT)
    node.deposit(BOB, "XLM", 100 * UNIT)
    node.order(BOB, Side.SELL, 10 * UNIT, 1.0)
    buy = OrderRequest(
        1, ALICE.public_key, 1, "XLM", Side.BUY, 10 * UNIT, 1.0, TimeInForce.GOOD_TILL_EXPIRE
    )
    text = node.rejected(request_quantum(buy, ALICE, node.cid), StatusCode.BAD_REQUEST)
    assert "overflow" in text


def test_an_order_whose_fill_would_overflow_a_maker_is_refused() -> None:
    node = Node()
    node.deposit(ALICE, QUOTE, U64_MAX - UNIT)
    node.deposit(ALICE, "XLM", 100 * UNIT)
    node.deposit(BOB, QUOTE, 1_000 * UNIT)
    node.deposit(BOB, "XLM", 100 * UNIT)
    node.order(ALICE, Side.SELL, 10 * UNIT, 1.0)  # paid in USD, which Alice holds to the top
    buy = OrderRequest(
        1, BOB.public_key, 2, "XLM", Side.BUY, 10 * UNIT, 1.0, TimeInForce.GOOD_TILL_EXPIRE
    )
    node.nonces[BOB.public_key] = 2
    text = node.rejected(request_quantum(buy, BOB, node.cid), StatusCode.BAD_REQUEST)
    assert "overflow" in text
    node.order(BOB, Side.BUY, UNIT // 10, 1.0)  # a fill that fits still trades
    assert node.balance(ALICE, QUOTE)[0] == U64_MAX - UNIT + UNIT // 10
