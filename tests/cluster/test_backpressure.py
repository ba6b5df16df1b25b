"""Backpressure instead of loss: a flooded engine answers TooManyRequests, never silence.

Goal: when the engine is behind, every request still gets exactly one answer — executed
(acknowledged, then final) or refused with 429 — and what was executed is exactly what the
balances show. Nothing is dropped between the gateway and the engine.
Method: a one-node constellation whose gateway admits only `INFLIGHT` requests waiting at the
engine. The engine is frozen with SIGSTOP (so it is certainly behind, with no timing
guesswork), a client sends `FLOOD` payments without waiting, and the gateway refuses what is
beyond the limit; once those refusals arrived the engine is resumed with SIGCONT and executes
exactly the admitted ones.
"""

from __future__ import annotations

import asyncio
import signal

import pytest

from constellation_client import StatusCode
from constellation_client.result import RequestResult
from tests.cluster.conftest import cluster_start, run
from tests.cluster.test_alpha_node import balances, funded
from tools.cluster import Cluster

INFLIGHT = 20
FLOOD = 200
AMOUNT = 1_000_000


@pytest.fixture(scope="module")
def narrow(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    cluster = cluster_start(1, tmp_path_factory, CONSTELLATION_GATEWAY_INFLIGHT=str(INFLIGHT))
    yield cluster
    cluster.stop()


def test_flooded_engine_refuses_with_429_and_loses_nothing(narrow: Cluster) -> None:
    async def scenario() -> None:
        payer = await funded(narrow, [("USD", "1000")])
        payee = await funded(narrow, [("USD", "10")])
        payer_before, payee_before = (await balances(payer))["USD"], (await balances(payee))["USD"]
        narrow.signal_process(narrow.alpha, "engine", signal.SIGSTOP)
        try:
            tasks = [
                asyncio.create_task(payer.pay(payee.public_key, "USD", AMOUNT))
                for _ in range(FLOOD)
            ]
            # Whatever is beyond the admission limit is refused while the engine is frozen.
            refused_count = FLOOD - INFLIGHT
            while sum(t.done() for t in tasks) < refused_count:
                await asyncio.wait(tasks, timeout=10, return_when=asyncio.FIRST_COMPLETED)
        finally:
            narrow.signal_process(narrow.alpha, "engine", signal.SIGCONT)
        results: list[RequestResult] = await asyncio.wait_for(asyncio.gather(*tasks), 60)

        executed = [r for r in results if r.ok]
        refused = [r for r in results if r.status == StatusCode.TOO_MANY_REQUESTS]
        assert len(executed) + len(refused) == FLOOD, {r.status for r in results}
        assert len(refused) == refused_count
        assert len(executed) == INFLIGHT
        assert all("busy" in r.description for r in refused)
        for result in executed:
            assert await result.wait_final(10)
        paid = len(executed) * AMOUNT
        assert (await balances(payer))["USD"] == (payer_before[0] - paid, payer_before[1])
        assert (await balances(payee))["USD"] == (payee_before[0] + paid, payee_before[1])
        # The node keeps serving after the flood.
        assert (await payer.pay(payee.public_key, "USD", AMOUNT)).ok
        await payer.close()
        await payee.close()

    run(scenario())
