"""The CLI's read and demo verbs: faucet, nodes, depth, trades, ticker, watch.

Each verb returns JSON-ready data and the human lines for it (the CLI prints one or the
other); `watch` yields them, one notification at a time. None of them signs a quantum: the
faucet is the demo node's HTTP endpoint, the market verbs read the chronicler's public feeds,
`nodes` is the node's view of its peers, and `watch` only listens on the account's socket.
"""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from typing import Any

from constellation_client.amounts import format_amount
from constellation_client.client import ConstellationClient
from constellation_client.describe import effects_sentences, time_text
from constellation_client.market import VerbRefusedError as VerbRefusedError
from constellation_client.market import (
    depth_lines,
    depth_view,
    feed_snapshot,
    ticker_lines,
    ticker_view,
    trades_lines,
    trades_view,
)
from constellation_client.result import RequestResult
from constellation_client.wire import ConstellationClientError, fetch_info, node_urls
from quanta.core.xdr.schema import EffectsGroupHash, TradeEffect

FAUCET_PATH = "/api/faucet"
NODES_PATH = "/api/constellation/nodes"
Output = tuple[dict[str, Any], list[str]]


def _base(node: str) -> str:
    """Returns the node's HTTP base URL (http://host:port)."""
    return node_urls(node)[1].removesuffix("/api/constellation/info")


def faucet(node: str, public_key: str, asset: str, amount: int, timeout_s: float) -> Output:
    """Asks the demo faucet to pay `amount` of `asset` into the vault for `public_key`."""
    body = json.dumps(
        {"public_key": public_key, "asset": asset, "amount": format_amount(amount)}
    ).encode()
    request = urllib.request.Request(  # noqa: S310 (node_urls allows http(s) only)
        _base(node) + FAUCET_PATH, body, {"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310
            answer = json.loads(response.read())
    except urllib.error.HTTPError as error:
        raise VerbRefusedError(_refusal(error)) from None
    except (OSError, ValueError) as error:
        raise ConstellationClientError(f"cannot reach the faucet: {error}") from None
    text = f"{format_amount(int(answer['amount']))} {answer['asset']}"
    data = {"asset": answer["asset"], "amount": format_amount(int(answer["amount"]))}
    data |= {"public_key": public_key, "transfer": answer.get("transfer")}
    line = (
        f"faucet: {text} paid into the vault for {public_key}; it is credited when the "
        "deposit quantum is final (a few seconds; see `balance` or `watch`)"
    )
    return data, [line]


def _refusal(error: urllib.error.HTTPError) -> str:
    """Returns the node's sentence from a refused faucet call."""
    if error.code == 404:
        return "this node has no faucet (it is not in demo mode)"
    try:
        return str(json.loads(error.read()).get("description", error.reason))
    except ValueError:
        return f"the faucet answered {error.code} {error.reason}"


def nodes(node: str, timeout_s: float) -> Output:
    """Returns every node's state and apex as the node sees them, marking laggards."""
    data = fetch_info(_base(node) + NODES_PATH, timeout_s)
    rows = data.get("nodes") or []
    alpha_apex = max((int(row.get("apex") or 0) for row in rows), default=0)
    lines = ["node states (the asked node's view, unverified)"]
    for row in rows:
        role = "alpha" if row.get("is_alpha") else "auditor"
        apex = row.get("apex")
        behind = alpha_apex - int(apex) if isinstance(apex, int) else None
        row["behind"] = behind
        lag = f", {behind} behind" if behind else ""
        lines.append(
            f"  {row.get('index')} {role:7} {row.get('public_key')} {row.get('address')} "
            f"{row.get('state')} at apex {apex if apex is not None else '-'}{lag}"
        )
    if not rows:
        lines.append("  none: the constellation is not initialized")
    return {"nodes": rows}, lines


async def market(node: str, verb: str, asset: str, timeout_s: float) -> Output:
    """Returns depth, trades or the ticker of the `asset` market in a trader's units."""
    ws_url = node_urls(node)[0]
    info = await asyncio.to_thread(fetch_info, node_urls(node)[1], timeout_s)
    quote = str(info.get("quote_asset") or "quote")
    if verb == "depth":
        view = depth_view(asset, quote, await feed_snapshot(ws_url, "depth", asset, timeout_s))
        return view, depth_lines(view)
    if verb == "trades":
        view = trades_view(asset, quote, await feed_snapshot(ws_url, "trades", asset, timeout_s))
        return view, trades_lines(view, time_text)
    ticker = await feed_snapshot(ws_url, "ticker", asset, timeout_s)
    depth = await feed_snapshot(ws_url, "depth", asset, timeout_s)
    view = ticker_view(asset, quote, ticker, depth)
    return view, ticker_lines(view)


def other_accounts(result: RequestResult) -> list[int]:
    """Returns the other accounts the proven result's quantum touched (account 0, the
    constellation's own group, left out): the payer of a payment received."""
    if result.message is None or result.effects is None:
        return []
    own = int(result.effects.account)
    return [
        int(info.account)
        for info in result.message.effects
        if isinstance(info, EffectsGroupHash) and int(info.account) not in (0, own)
    ]


def notification_output(result: RequestResult, quote: str) -> Output:
    """Returns one notification (a fill of a resting order, funds received...) as output,
    naming the other account of a payment ("from account 7")."""
    effects = result.effects.effects if result.effects is not None else ()
    sentences = effects_sentences(effects, quote)
    others = other_accounts(result)
    if len(others) == 1 and not any(isinstance(e, TradeEffect) for e in effects):
        sentences = [f"{sentence} (from account {others[0]})" for sentence in sentences]
    final = "final" if result.finalized else "acknowledged, not final yet"
    data = {"apex": result.apex, "events": sentences, "finalized": result.finalized}
    data["other_accounts"] = others
    return data, [f"apex {result.apex} ({final}): {sentence}" for sentence in sentences]


async def watch(
    client: ConstellationClient, quote: str, count: int, seconds: float
) -> AsyncIterator[Output]:
    """Yields the account's notifications as they arrive: `count` of them (0: no limit) or
    until `seconds` pass without one."""
    seen = 0
    while count == 0 or seen < count:
        result = await client.next_notification(seconds)
        if result is None:
            return
        seen += 1
        yield notification_output(result, quote)
