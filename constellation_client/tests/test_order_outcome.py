"""Goal: an order's outcome is read correctly from real effects, and the CLI's order commands
parse what their help promises and print the outcome in human units.

Method: a real engine (`quanta.tests.core.test_engine.Node`) executes orders; the requesting
account's own effects group is handed to `order_outcome`, as the client does with a verified
result. The CLI part calls `build_parser()` and the report functions directly.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from constellation_client.cli import _account_lines, build_parser
from constellation_client.order_commands import order_json, order_lines
from constellation_client.outcome import (
    FILLED,
    NOTHING_FILLED,
    PARTLY_FILLED_CANCELLED,
    PARTLY_FILLED_RESTING,
    RESTING,
    OrderTerms,
)
from constellation_client.result import RequestResult
from exchange.core.matching import TimeInForce
from exchange.core.orderbook import Side
from quanta.core.engine import Executed
from quanta.core.keys import KeyPair
from quanta.core.status import StatusCode
from quanta.core.testing import request_quantum
from quanta.core.xdr.schema import (
    AccountDataInfo,
    BatchCancel,
    BatchCancelAll,
    BatchOrder,
    EffectsGroup,
    OrderInfo,
    OrderRequest,
)
from quanta.tests.core.test_engine import UNIT, Node, alice, bob, node

__all__ = ["alice", "bob", "node"]  # pytest fixtures, imported to be found here

GTC = TimeInForce.GOOD_TILL_EXPIRE
IOC = TimeInForce.IMMEDIATE_OR_CANCEL
FOK = TimeInForce.FILL_OR_KILL


def _own_group(node: Node, executed: Executed, who: KeyPair) -> EffectsGroup:
    account = node.engine.state.accounts.get_by_key(who.public_key)
    assert account is not None
    return next(g for g in executed.groups if g.account == account.id)


def _buy(node: Node, bob: KeyPair, amount: int, price: float, tif: TimeInForce) -> RequestResult:
    executed = node.order(bob, Side.BUY, amount, price, tif=tif)
    result = RequestResult(1, StatusCode.SUCCESS, apex=executed.apex)
    result.effects = _own_group(node, executed, bob)
    result.orders = (OrderTerms("XLM", Side.BUY, amount, tif),)
    return result


@pytest.mark.parametrize(
    ("amount", "price", "tif", "status", "filled", "resting"),
    [
        (10 * UNIT, 1.0, GTC, FILLED, 10 * UNIT, 0),
        (15 * UNIT, 1.0, GTC, PARTLY_FILLED_RESTING, 10 * UNIT, 5 * UNIT),
        (15 * UNIT, 1.0, IOC, PARTLY_FILLED_CANCELLED, 10 * UNIT, 0),
        (5 * UNIT, 0.5, GTC, RESTING, 0, 5 * UNIT),
        (5 * UNIT, 0.5, IOC, NOTHING_FILLED, 0, 0),
        (15 * UNIT, 1.0, FOK, NOTHING_FILLED, 0, 0),
    ],
)
def test_outcome_states_fills_rest_and_cancelled_part(
    node: Node,
    alice: KeyPair,
    bob: KeyPair,
    amount: int,
    price: float,
    tif: TimeInForce,
    status: str,
    filled: int,
    resting: int,
) -> None:
    node.order(alice, Side.SELL, 10 * UNIT, 1.0)
    (outcome,) = _buy(node, bob, amount, price, tif).order_outcomes
    assert (outcome.status, outcome.filled, outcome.resting) == (status, filled, resting)
    assert outcome.cancelled == amount - filled - resting
    assert all(fill.price == 10_000_000 for fill in outcome.fills)


def test_report_is_in_human_units_and_json_says_the_same(
    node: Node, alice: KeyPair, bob: KeyPair
) -> None:
    node.order(alice, Side.SELL, 10 * UNIT, 1.25)
    result = _buy(node, bob, 15 * UNIT, 1.25, IOC)
    (line,) = order_lines(result, "USD")
    order_id = result.order_outcomes[0].order_id
    assert line == (
        f"order {order_id}: buy 15 XLM: partly filled, rest cancelled; "
        "filled 10 at 1.25 USD; cancelled 5"
    )
    (data,) = order_json(result)["orders"]
    assert data["status"] == PARTLY_FILLED_CANCELLED
    assert data["fills"] == [{"amount": "10", "price": "1.25", "quote": "12.5"}]
    assert (data["filled"], data["resting"], data["cancelled"]) == ("10", "0", "5")


def test_order_flags_select_one_order_type() -> None:
    parser = build_parser()
    args = parser.parse_args(["order", "buy", "XLM", "1.5", "0.2", "--fok", "--client-id", "9"])
    assert (args.fok, args.ioc, args.post_only, args.client_id) == (True, False, False, 9)
    with pytest.raises(SystemExit):
        parser.parse_args(["order", "buy", "XLM", "1", "1", "--fok", "--post-only"])
    assert parser.parse_args(["cancel-all", "XLM"]).asset == "XLM"


def test_batch_file_is_parsed_before_anything_is_sent(tmp_path: Path) -> None:
    path = tmp_path / "batch.json"
    order = {"side": "sell", "asset": "XLM", "amount": "2.5", "price": "1.1", "type": "post-only"}
    path.write_text(json.dumps([{"cancel_all": "XLM"}, {"order": {**order, "client_id": 4}}]))
    items = build_parser().parse_args(["batch", str(path)]).file
    assert items == [
        BatchCancelAll("XLM"),
        BatchOrder(4, "XLM", Side.SELL, 25_000_000, 1.1, TimeInForce.POST_ONLY),
    ]


@pytest.mark.parametrize(
    "content",
    [
        "[]",
        "{}",
        '[{"cancel": -1}]',
        '[{"order": {"side": "up"}}]',
        "[" + '{"cancel": 1},' * 16 + '{"cancel": 1}]',
        "nope",
    ],
)
def test_a_bad_batch_file_is_a_usage_error(tmp_path: Path, content: str) -> None:
    path = tmp_path / "batch.json"
    path.write_text(content)
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["batch", str(path)])
    assert exited.value.code == 2


def test_the_outcome_carries_the_proven_client_order_id(node: Node, bob: KeyPair) -> None:
    """The label comes from the order's own effects (the node's proven answer), not from what
    the client asked: a node that dropped it would show 0."""
    request = OrderRequest(1, bob.public_key, node.nonce(bob), "XLM", Side.BUY, UNIT, 0.5, GTC, 31)
    executed = node.run(request_quantum(request, bob, node.cid))
    result = RequestResult(1, StatusCode.SUCCESS, apex=executed.apex)
    result.effects = _own_group(node, executed, bob)
    result.orders = (OrderTerms("XLM", Side.BUY, UNIT, GTC, 0),)  # asked without a label
    (outcome,) = result.order_outcomes
    assert outcome.client_order_id == 31
    assert "(client id 31)" in order_lines(result, "USD")[0]
    assert order_json(result)["orders"][0]["client_order_id"] == 31


def test_cancel_names_an_order_by_id_or_by_client_id() -> None:
    parser = build_parser()
    by_id = parser.parse_args(["cancel", "7000"])
    assert (by_id.order_id, by_id.client_id) == (7000, None)
    by_label = parser.parse_args(["cancel", "--client-id", "9"])
    assert (by_label.order_id, by_label.client_id) == (None, 9)
    for argv in (["cancel"], ["cancel", "7000", "--client-id", "9"]):
        with pytest.raises(SystemExit):
            parser.parse_args(argv)


def test_a_batch_file_cancels_by_client_id(tmp_path: Path) -> None:
    path = tmp_path / "batch.json"
    path.write_text(json.dumps([{"cancel_client_id": 4}, {"cancel": 9000}]))
    items = build_parser().parse_args(["batch", str(path)]).file
    assert items == [BatchCancel(0, 4), BatchCancel(9000)]


def test_the_open_orders_listing_shows_client_ids() -> None:
    data = AccountDataInfo(
        3,
        1,
        (),
        (
            OrderInfo(5000, "XLM", Side.SELL, 2 * UNIT, 12_500_000, 44),
            OrderInfo(6000, "XLM", Side.BUY, UNIT, 5_000_000),
        ),
        bytes(32),
    )
    lines = _account_lines(data)
    assert "  order 5000 (client id 44): sell 2 XLM at 1.250" in lines
    assert "  order 6000: buy 1 XLM at 0.500" in lines
