"""The CLI's order commands: `order`, `cancel`, `cancel-all` and `batch`, and their reports.

`order side asset amount price` places a limit order (good-till-expire unless `--ioc`,
`--fok` or `--post-only`; `--client-id N` labels it, refused while a resting order of the
account holds N). `cancel ORDER_ID` cancels one order, `cancel --client-id N` the resting
order labelled N, `cancel-all ASSET` every own order of that market. `batch FILE` (`-`:
stdin) sends up to `Limits.ORDER_BATCH_ITEMS_MAX` items in one signed request, all or
nothing; FILE is a JSON list of `{"order": {"side": "buy", "asset": "XLM", "amount": "1.5",
"price": "0.5", "type": "gtc" | "ioc" | "fok" | "post-only", "client_id": 7}}`,
`{"cancel": ORDER_ID}`, `{"cancel_client_id": 7}` and `{"cancel_all": "XLM"}`. Amounts and
prices are decimal text, as everywhere in the CLI.

Each order's outcome is printed from the account's own proven effects
(`constellation_client.outcome`): filled / partly filled with the rest resting or cancelled /
nothing filled, with the fills (amount at price), the resting amount and the order id; `--json`
gives the same under "orders" (decimal text), and the ids a quantum took off under
"removed_orders".
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from constellation_client.amounts import AmountError, parse_amount, parse_price
from constellation_client.client import ConstellationClient
from constellation_client.outcome import outcome_json, outcome_line
from constellation_client.result import RequestResult
from exchange.core.matching import TimeInForce
from exchange.core.orderbook import Side
from quanta.core.xdr.schema import BatchCancel, BatchCancelAll, BatchItem, BatchOrder, Limits

ORDER_COMMANDS = frozenset({"order", "cancel", "cancel-all", "batch"})
ORDER_TYPES = {
    "gtc": TimeInForce.GOOD_TILL_EXPIRE,
    "ioc": TimeInForce.IMMEDIATE_OR_CANCEL,
    "fok": TimeInForce.FILL_OR_KILL,
    "post-only": TimeInForce.POST_ONLY,
}
U64_MAX = 2**64 - 1


def _checked(parse: Any, text: str) -> Any:
    try:
        return parse(text)
    except AmountError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _u64(text: str) -> int:
    """Parses a non-negative 64-bit integer argument (argparse type)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if not 0 <= value <= U64_MAX:
        raise argparse.ArgumentTypeError(f"must be between 0 and {U64_MAX}: {text!r}")
    return value


def add_order_commands(commands: Any) -> None:
    """Declares the order commands on the CLI's subparsers."""
    order = commands.add_parser("order", help="place a limit order")
    order.add_argument("side", choices=["buy", "sell"])
    order.add_argument("asset")
    order.add_argument("amount", type=lambda text: _checked(parse_amount, text))
    order.add_argument("price", type=lambda text: _checked(parse_price, text))
    kinds = order.add_mutually_exclusive_group()
    kinds.add_argument("--ioc", action="store_true", help="immediate or cancel the rest")
    kinds.add_argument("--fok", action="store_true", help="fill entirely at once, or nothing")
    kinds.add_argument("--post-only", action="store_true", help="refused if it would trade")
    order.add_argument("--client-id", type=_u64, default=0, help="your own label (u64)")
    cancel = commands.add_parser("cancel", help="cancel an open order (by id or --client-id)")
    target = cancel.add_mutually_exclusive_group(required=True)
    target.add_argument("order_id", type=_u64, nargs="?", help="the order's id")
    target.add_argument("--client-id", type=_u64, help="the order's client order id")
    cancel_all = commands.add_parser("cancel-all", help="cancel every open order of a market")
    cancel_all.add_argument("asset")
    batch = commands.add_parser("batch", help="several orders/cancels in one signed request")
    batch.add_argument("file", type=_batch_file, help="JSON list of items ('-': stdin)")


def _order_type(args: argparse.Namespace) -> TimeInForce:
    if args.ioc:
        return TimeInForce.IMMEDIATE_OR_CANCEL
    if args.fok:
        return TimeInForce.FILL_OR_KILL
    if args.post_only:
        return TimeInForce.POST_ONLY
    return TimeInForce.GOOD_TILL_EXPIRE


def _batch_order(spec: Any) -> BatchOrder:
    if not isinstance(spec, dict):
        raise ValueError("an order must be an object")
    side = {"buy": Side.BUY, "sell": Side.SELL}.get(str(spec.get("side")).lower())
    order_type = ORDER_TYPES.get(str(spec.get("type", "gtc")).lower())
    if side is None or order_type is None:
        raise ValueError(f"side must be buy/sell and type one of {', '.join(ORDER_TYPES)}")
    return BatchOrder(
        _u64(str(spec.get("client_id", 0))),
        str(spec["asset"]),
        side,
        parse_amount(str(spec["amount"])),
        parse_price(str(spec["price"])),
        order_type,
    )


def _batch_item(spec: Any) -> BatchItem:
    if isinstance(spec, dict) and len(spec) == 1:
        ((kind, value),) = spec.items()
        if kind == "order":
            return _batch_order(value)
        if kind == "cancel":
            return BatchCancel(_u64(str(value)))
        if kind == "cancel_client_id":
            return BatchCancel(0, _u64(str(value)))
        if kind == "cancel_all":
            return BatchCancelAll(str(value))
    raise ValueError(
        'an item is {"order": {...}}, {"cancel": ID}, {"cancel_client_id": N} or '
        f'{{"cancel_all": ASSET}}: {spec}'
    )


def _batch_file(path: str) -> list[BatchItem]:
    """Reads and checks a batch file before anything is sent (argparse type)."""
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text()
        specs = json.loads(text)
        if not isinstance(specs, list) or not 0 < len(specs) <= Limits.ORDER_BATCH_ITEMS_MAX:
            raise ValueError(f"a batch is a list of 1 to {Limits.ORDER_BATCH_ITEMS_MAX} items")
        return [_batch_item(spec) for spec in specs]
    except (OSError, ValueError, KeyError, AmountError, argparse.ArgumentTypeError) as error:
        raise argparse.ArgumentTypeError(f"bad batch {path}: {error}") from None


async def send_order_command(
    client: ConstellationClient, args: argparse.Namespace
) -> RequestResult:
    """Sends the order command the arguments describe."""
    command = args.command
    if command == "order":
        side = Side.BUY if args.side == "buy" else Side.SELL
        return await client.place_order(
            args.asset, side, args.amount, args.price, _order_type(args), args.client_id
        )
    if command == "cancel":
        if args.client_id:
            return await client.cancel_order(client_order_id=args.client_id)
        return await client.cancel_order(args.order_id or 0)
    if command == "cancel-all":
        return await client.cancel_all(args.asset)
    assert command == "batch", command
    return await client.batch(args.file)


def order_lines(result: RequestResult, quote_asset: str | None) -> list[str]:
    """Returns the human lines of what the request's orders did and what it cancelled."""
    lines = [outcome_line(outcome, quote_asset or "") for outcome in result.order_outcomes]
    removed = result.removed_order_ids
    if removed:
        lines.append(f"cancelled open orders: {', '.join(str(i) for i in removed)}")
    return lines


def order_json(result: RequestResult) -> dict[str, Any]:
    """Returns the JSON view of the same (amounts in decimal text)."""
    return {
        "orders": [outcome_json(outcome) for outcome in result.order_outcomes],
        "removed_orders": result.removed_order_ids,
    }
