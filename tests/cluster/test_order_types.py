"""Each order type, self-trade prevention and batches on a real three-node constellation.

Goal: show the new order rules hold end to end, finalized by the auditors re-executing them:
post-only rests (and is refused when it would trade), fill-or-kill fills entirely or applies
nothing, immediate-or-cancel says the rest was cancelled, a batch places several labelled
orders under one signature, an account reaching its own resting order cancels it, cancel-all
empties a market, and the CLI prints the outcome in human units with `--json` saying the same.
Every node ends with the same state hash. Method: a module-scoped cluster of alpha and two
auditors (tools/cluster.py, real daphne/worker/herald processes, PostgreSQL, Redis), the real
Python client and the CLI in a subprocess; deposits through the local ledger's faucet. Every
wait is bounded.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from constellation_client import BUY, SELL, ConstellationClient, StatusCode
from constellation_client.outcome import (
    FILLED,
    NOTHING_FILLED,
    PARTLY_FILLED_CANCELLED,
    RESTING,
)
from constellation_client.result import RequestResult
from exchange.core.matching import TimeInForce, order_id_of
from quanta.core.keys import KeyPair
from quanta.core.xdr.schema import BatchOrder
from tests.cluster.conftest import cluster_start, run
from tests.cluster.pins import pin
from tests.cluster.test_alpha_node import funded
from tests.cluster.test_consensus import converged_state_hashes
from tools.cluster import Cluster

UNIT = 10_000_000
ROOT = Path(__file__).resolve().parents[2]
POST_ONLY = TimeInForce.POST_ONLY
FOK = TimeInForce.FILL_OR_KILL
IOC = TimeInForce.IMMEDIATE_OR_CANCEL


@pytest.fixture(scope="module")
def three(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Alpha and two auditors: a result is final with 2 of 3 signatures."""
    cluster = cluster_start(3, tmp_path_factory, CONSTELLATION_SNAPSHOT_INTERVAL_S="1")
    yield cluster
    cluster.stop()


async def final(result: RequestResult) -> RequestResult:
    """Asserts the request was accepted and finalized by a verified majority."""
    assert result.ok, (result.status, result.description)
    assert await result.wait_final(10), result
    return result


def test_each_order_type_on_a_real_constellation(three: Cluster) -> None:
    async def scenario() -> None:
        maker = await funded(three, [("USD", "100"), ("XLM", "100")])
        taker = await funded(three, [("USD", "100")])
        # Post-only rests; a post-only that would trade is refused and changes nothing.
        ask = await final(await maker.place_order("XLM", SELL, 10 * UNIT, 1.0, POST_ONLY))
        (rests,) = ask.order_outcomes
        assert (rests.status, rests.resting, rests.order_id) == (
            RESTING,
            10 * UNIT,
            order_id_of(ask.apex),
        )
        refused = await taker.place_order("XLM", BUY, 1 * UNIT, 1.0, POST_ONLY)
        assert refused.status == StatusCode.BAD_REQUEST
        assert "post-only" in refused.description
        # Fill-or-kill: 20 cannot fill against 10, so nothing happens; 4 fills entirely.
        killed = await final(await taker.place_order("XLM", BUY, 20 * UNIT, 1.0, FOK))
        assert [o.status for o in killed.order_outcomes] == [NOTHING_FILLED]
        fok = await final(await taker.place_order("XLM", BUY, 4 * UNIT, 1.0, FOK))
        assert [(o.status, o.filled) for o in fok.order_outcomes] == [(FILLED, 4 * UNIT)]
        # Immediate-or-cancel: 6 left on the book fill, the other 4 are cancelled.
        ioc = await final(await taker.place_order("XLM", BUY, 10 * UNIT, 1.0, IOC))
        (partial,) = ioc.order_outcomes
        assert (partial.status, partial.filled, partial.cancelled) == (
            PARTLY_FILLED_CANCELLED,
            6 * UNIT,
            4 * UNIT,
        )
        assert [fill.price for fill in partial.fills] == [1 * UNIT]
        # A batch: two labelled asks under one signature, ids apex·1000 + item index.
        batch = await final(
            await maker.batch(
                [
                    BatchOrder(11, "XLM", SELL, 5 * UNIT, 1.1, TimeInForce.GOOD_TILL_EXPIRE),
                    BatchOrder(12, "XLM", SELL, 5 * UNIT, 1.2, TimeInForce.GOOD_TILL_EXPIRE),
                ]
            )
        )
        labelled = [(o.terms.client_order_id, o.order_id, o.status) for o in batch.order_outcomes]
        assert labelled == [
            (11, order_id_of(batch.apex, 0), RESTING),
            (12, order_id_of(batch.apex, 1), RESTING),
        ]
        # Self-trade prevention: the maker's bid at 1.1 cancels its own ask there and rests.
        own = await final(await maker.place_order("XLM", BUY, 1 * UNIT, 1.1))
        assert own.removed_order_ids == [order_id_of(batch.apex, 0)]
        assert [o.status for o in own.order_outcomes] == [RESTING]
        # Cancel-all takes the maker's bid at 1.1 and ask at 1.2 off the market.
        cleared = await final(await maker.cancel_all("XLM"))
        # Cancel-all removes in id order: the older ask first.
        assert cleared.removed_order_ids == [order_id_of(batch.apex, 1), order_id_of(own.apex)]
        data = (await maker.account_data()).account_data
        assert data is not None and data.orders == ()
        await maker.close()
        await taker.close()

    run(scenario())
    assert len(converged_state_hashes(three)) == 1


def _cli(cluster: Cluster, keypair: KeyPair, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CONSTELLATION_SECRET": keypair.secret}
    command = [sys.executable, "-m", "constellation_client", "--node", cluster.alpha.url]
    command += ["--constellation", pin(cluster).hex(), *argv]
    return subprocess.run(  # noqa: S603 (our own CLI, fixed arguments)
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False
    )


def test_the_cli_states_the_outcome_in_human_units(three: Cluster) -> None:
    taker = KeyPair.random()

    async def setup() -> None:
        maker = await funded(three, [("USD", "100"), ("XLM", "100")])
        await final(await maker.place_order("XLM", SELL, 25_000_000, 0.5))
        client = await ConstellationClient.connect(
            three.alpha.url, taker, constellation_id=pin(three)
        )
        await asyncio.to_thread(three.faucet, taker.public_key_strkey, "USD", "100")
        assert await client.next_notification(timeout_s=15) is not None
        await maker.close()
        await client.close()

    run(setup())
    human = _cli(three, taker, "order", "buy", "XLM", "4", "0.5", "--ioc")
    assert human.returncode == 0, human.stderr
    assert "partly filled, rest cancelled; filled 2.5 at 0.5 USD; cancelled 1.5" in human.stdout
    machine = _cli(three, taker, "--json", "order", "buy", "XLM", "1", "0.4", "--client-id", "77")
    assert machine.returncode == 0, machine.stderr
    (order,) = json.loads(machine.stdout)["orders"]
    assert (order["status"], order["resting"], order["client_order_id"]) == (RESTING, "1", 77)
    cleared = _cli(three, taker, "--json", "cancel-all", "XLM")
    assert json.loads(cleared.stdout)["removed_orders"] == [order["order_id"]]


def test_client_order_ids_on_a_real_constellation(three: Cluster) -> None:
    """A labelled order rests with its label (outcome, account data), a second order with the
    same label is refused while it rests, a cancel by an unknown label is refused, and a
    cancel by label takes it off; then the same through the CLI (`order --client-id`, the
    `balance` listing, `cancel --client-id`). Every node ends with the same state hash."""
    trader = KeyPair.random()

    async def scenario() -> None:
        client = await funded(three, [("USD", "100")])
        placed = await final(
            await client.place_order("XLM", BUY, 2 * UNIT, 0.3, client_order_id=51)
        )
        (outcome,) = placed.order_outcomes
        assert (outcome.client_order_id, outcome.status) == (51, RESTING)
        data = (await client.account_data()).account_data
        assert data is not None
        assert [(o.order_id, o.client_order_id) for o in data.orders] == [(outcome.order_id, 51)]
        again = await client.place_order("XLM", BUY, 1 * UNIT, 0.3, client_order_id=51)
        assert again.status == StatusCode.BAD_REQUEST
        assert "client order id 51 is already used" in again.description
        unknown = await client.cancel_order(client_order_id=52)
        assert unknown.status == StatusCode.BAD_REQUEST
        assert unknown.description == "no resting order has client order id 52"
        cancelled = await final(await client.cancel_order(client_order_id=51))
        assert cancelled.removed_order_ids == [outcome.order_id]
        await client.close()
        funded_cli = await ConstellationClient.connect(
            three.alpha.url, trader, constellation_id=pin(three)
        )
        await asyncio.to_thread(three.faucet, trader.public_key_strkey, "USD", "100")
        assert await funded_cli.next_notification(timeout_s=15) is not None
        await funded_cli.close()

    run(scenario())
    placed = _cli(three, trader, "--json", "order", "buy", "XLM", "1", "0.3", "--client-id", "61")
    assert placed.returncode == 0, placed.stderr
    (order,) = json.loads(placed.stdout)["orders"]
    assert (order["client_order_id"], order["status"]) == (61, RESTING)
    listing = _cli(three, trader, "balance")
    assert listing.returncode == 0, listing.stderr
    assert f"order {order['order_id']} (client id 61): buy 1 XLM" in listing.stdout
    machine = json.loads(_cli(three, trader, "--json", "balance").stdout)
    assert [o["client_order_id"] for o in machine["account_data"]["orders"]] == [61]
    refused = _cli(three, trader, "cancel", "--client-id", "62")
    assert refused.returncode != 0
    assert "no resting order has client order id 62" in refused.stdout + refused.stderr
    cancelled = _cli(three, trader, "--json", "cancel", "--client-id", "61")
    assert cancelled.returncode == 0, cancelled.stderr
    assert json.loads(cancelled.stdout)["removed_orders"] == [order["order_id"]]
    assert len(converged_state_hashes(three)) == 1
