"""The CLI as a trader uses it, as subprocesses against a real one-node demo constellation.

Goal: a CLI-only newcomer can fund a key (`faucet`), is refused up front when a first deposit
could not register the key, registers a fresh key by paying it the minimum balance in the
quote asset (the Centaurus rule, end to end), sees a fill of a resting order streamed by
`watch`, and reads `trades`, `depth`, `ticker` and `nodes` in decimals; `--json` answers are
JSON on stdout with the documented exit codes.
Method: one single-node cluster (acknowledged is final) in demo mode; the CLI runs as
`python -m constellation_client`; the Python client only awaits events (a deposit credited)
and the chronicler's trade feed is awaited before the market verbs are asked.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect

from constellation_client import BUY, ConstellationClient
from quanta.core.keys import KeyPair
from quanta.core.xdr.schema import BalanceUpdateEffect
from tests.cluster.conftest import cluster_start, run
from tests.cluster.pins import pin
from tests.cluster.test_payments import balances, until_effect
from tools.cluster import Cluster

pytestmark = pytest.mark.cluster

ROOT = Path(__file__).resolve().parents[2]
UNIT = 10_000_000
CLI_TIMEOUT_S = 60


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    cluster = cluster_start(
        1, tmp_path_factory, CONSTELLATION_DEMO="1", CONSTELLATION_SNAPSHOT_INTERVAL_S="1"
    )
    yield cluster
    cluster.stop()


def _argv(cluster: Cluster, secret: str | None, *argv: str) -> list[str]:
    base = [sys.executable, "-m", "constellation_client", "--node", cluster.alpha.url]
    base += ["--constellation", pin(cluster).hex()]
    return base + (["--secret", secret] if secret else []) + list(argv)


def cli(cluster: Cluster, secret: str | None, *argv: str) -> tuple[int, str]:
    done = subprocess.run(
        _argv(cluster, secret, *argv),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
        check=False,
        env={**os.environ, "CONSTELLATION_SECRET": ""},
    )
    return done.returncode, done.stdout + done.stderr


def cli_json(cluster: Cluster, secret: str | None, *argv: str) -> tuple[int, Any]:
    code, output = cli(cluster, secret, "--json", *argv)
    return code, json.loads(output)


async def until_handshake_knows(cluster: Cluster, key: KeyPair, timeout_s: float = 20) -> None:
    """Waits until a new connection of `key` is told its account id. The gateway reads it
    from the snapshot rows (up to a snapshot interval behind the engine), and a client told
    0 ignores its own results (a known limit, reported): nothing signals the snapshot, so
    this asks again, bounded, once per snapshot interval."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        probe = await ConstellationClient.connect(
            cluster.alpha.url, key, constellation_id=pin(cluster)
        )
        known = probe.account_id
        await probe.close()
        if known:
            return
        assert asyncio.get_running_loop().time() < deadline, "the account row never appeared"
        await asyncio.sleep(1)


async def _next_trade_update(cluster: Cluster, ready: asyncio.Event) -> list[Any]:
    """Subscribes to the XLM trades feed, says so, and returns the first update's trades."""
    url = cluster.alpha.url.replace("http", "ws") + "/ws/chronicler/"
    async with connect(url) as socket:
        await socket.send(json.dumps({"op": "subscribe", "feed": "trades", "market": "XLM"}))
        while True:
            data = await asyncio.wait_for(socket.recv(), 30)
            if not isinstance(data, str):  # The history protocol's binary handshake.
                continue
            frame = json.loads(data)
            if frame.get("op") == "snapshot":
                ready.set()
            if frame.get("op") == "update":
                return list(frame["data"])


def test_a_cli_trader_funds_registers_trades_and_reads_the_market(demo: Cluster) -> None:
    seller, buyer = KeyPair.random(), KeyPair.random()

    async def scenario() -> None:
        client = await ConstellationClient.connect(
            demo.alpha.url, seller, constellation_id=pin(demo)
        )
        code, answer = await asyncio.to_thread(
            cli_json, demo, seller.secret, "faucet", "usd", "100"
        )
        assert (code, answer["asset"], answer["amount"]) == (0, "USD", "100"), answer
        await until_effect(client, BalanceUpdateEffect)

        code, refused = await asyncio.to_thread(
            cli_json, demo, None, "faucet", "XLM", "5", "--to", buyer.public_key_strkey
        )
        assert code == 1 and "no account yet" in refused["error"], refused
        assert "at least 1 USD" in refused["error"], refused

        code, answer = await asyncio.to_thread(cli_json, demo, seller.secret, "faucet", "XLM", "50")
        assert code == 0, answer
        await until_effect(client, BalanceUpdateEffect)

        await until_handshake_knows(demo, seller)
        # Connected before the payment registers it: a key registered less than a snapshot
        # interval ago is still told account 0 at the handshake (the gateway reads snapshot
        # rows), and the client then cannot place its own results.
        payee = await ConstellationClient.connect(demo.alpha.url, buyer, constellation_id=pin(demo))
        code, output = await asyncio.to_thread(
            cli, demo, seller.secret, "pay", buyer.public_key_strkey, "USD", "10"
        )
        assert code == 0 and "finalized (1 of 1 signatures verified, 1 needed)" in output, output
        await until_effect(payee, BalanceUpdateEffect)
        assert await balances(payee) == {"USD": (10 * UNIT, 0)}

        watch = await asyncio.create_subprocess_exec(
            *_argv(demo, seller.secret, "watch", "--count", "1", "--for", "30"),
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
        )
        assert watch.stdout is not None
        first = await asyncio.wait_for(watch.stdout.readline(), CLI_TIMEOUT_S)
        assert first.decode().startswith("watching account"), first
        code, output = await asyncio.to_thread(
            cli, demo, seller.secret, "order", "sell", "xlm", "8", "0.125"
        )
        assert code == 0 and "rests on the book: sell 8 XLM at 0.125" in output, output
        ready = asyncio.Event()
        trades = asyncio.create_task(_next_trade_update(demo, ready))
        await asyncio.wait_for(ready.wait(), 30)
        bought = await payee.place_order("XLM", BUY, 8 * UNIT, 0.125)
        assert bought.ok and await bought.wait_final(10), bought.description
        assert [t["amount"] for t in await asyncio.wait_for(trades, 30)] == [8 * UNIT]
        streamed, _ = await asyncio.wait_for(watch.communicate(), CLI_TIMEOUT_S)
        assert "sold 8 XLM at 0.125 (1 USD; order" in streamed.decode(), streamed
        for each in (client, payee):
            await each.close()

    run(scenario())
    code, trades = cli_json(demo, None, "trades", "xlm")
    assert code == 0 and trades["market"] == "XLM/USD", trades
    assert (trades["trades"][0]["price"], trades["trades"][0]["amount"]) == ("0.125", "8")
    code, ticker = cli_json(demo, None, "ticker", "XLM")
    assert (code, ticker["last"], ticker["volume_24h"]) == (0, "0.125", "8"), ticker
    code, output = cli(demo, None, "depth", "XLM")
    assert code == 0 and "XLM/USD depth" in output and "no orders in the book" in output, output
    code, nodes = cli_json(demo, None, "nodes")
    assert code == 0 and [(n["is_alpha"], n["state"]) for n in nodes["nodes"]] == [
        (True, "Ready")
    ], nodes
    code, unknown = cli_json(demo, None, "depth", "DOGE")
    assert code == 1 and "unknown market 'DOGE'" in unknown["error"], unknown
    _history_names_the_counterparties(demo, seller, buyer)


def _history_names_the_counterparties(demo: Cluster, seller: KeyPair, buyer: KeyPair) -> None:
    """`history` names who paid whom from each item's checked quantum, in words and in
    --json: the payer and the payee of the payment, the provider of the faucet's deposits;
    the maker's trade names nobody (the book: the taker's quantum is not handed out)."""
    code, output = cli(demo, buyer.secret, "history")
    assert code == 0 and f"counterparty: paid by {seller.public_key_strkey}" in output, output
    code, page = cli_json(demo, seller.secret, "history", "--oldest-first")
    assert code == 0 and all(item["final"] for item in page["items"]), page
    named = [item["counterparty"] for item in page["items"]]
    deposits = [c for c in named if c and c["kind"] == "deposit"]
    assert len(deposits) == 2 and all(c["provider"] and c["external"] for c in deposits), named
    assert {"kind": "payment sent", "account": buyer.public_key_strkey} in [
        {"kind": c["kind"], "account": c["account"]} for c in named if c
    ], named
    sold = [i for i in page["items"] if any("sold 8 XLM" in e for e in i["events"])]
    assert len(sold) == 1 and sold[0]["counterparty"] is None, sold
    assert sold[0]["quantum"] is None, sold
