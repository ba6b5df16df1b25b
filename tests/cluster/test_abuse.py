"""The quick forms of the abuse suite (issue 17): a fuzz of every WebSocket route and the cheap
attacks, against real processes, leave every process alive, no traceback in any log, and a node
that still serves an honest client.

Goal: what a peer can send at the edge (random bytes, bit-flipped and re-signed envelopes,
truncations, huge XDR length prefixes, deep XDR and JSON nesting, oversized frames) is answered
with the protocol's status or close codes, never with a crash; re-sent init/update requests are
refused by the web process without moving the engine; 1 000-item history pages are answered.
Method: a single-node constellation (tools/cluster.py: the real web server and engine worker);
the attacks and frame generators of tools/abuse.py, the same as bench/abuse.py runs for longer
while honest clients trade; attackers connect from their own loopback addresses. The longer runs
and their figures are in bench/README.md.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterator

import pytest
from websockets.exceptions import ConnectionClosed

from constellation_client import ConstellationClient
from quanta.core.keys import KeyPair
from tests.cluster.conftest import cluster_start, run
from tests.cluster.pins import pin
from tools import abuse
from tools.cluster import Cluster

pytestmark = pytest.mark.cluster

CLIENT_ROUTE_FRAMES = 3_000
HERALD_FRAMES = 600
"""Without auditors nobody can authenticate on the herald: each frame is a connection's first
message (a connection each, hence fewer)."""
UNIT = 10_000_000


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """One node (alpha alone), shared by the attacks of this module, in order."""
    cluster = cluster_start(1, tmp_path_factory, CONSTELLATION_SNAPSHOT_INTERVAL_S="1")
    yield cluster
    cluster.stop()


REPORT_PERIOD_S = 1.5
"""Daphne logs an application's exception at its next once-a-second check of the running
applications: a traceback that is coming shows in the log within this time."""


def assert_unharmed(cluster: Cluster) -> None:
    """Every node process runs, no node log holds a traceback, and /info answers."""
    assert abuse.dead_processes(cluster) == {}
    found = abuse.traceback_excerpts(cluster.workdir)
    assert found == {}, "\n\n".join(excerpt for log in found.values() for excerpt in log[:3])
    assert cluster.info()["state"] == "Ready"


async def funded(cluster: Cluster, amount: str) -> ConstellationClient:
    """Connects a new client and registers it with a deposit of `amount` USD."""
    client = await ConstellationClient.connect(
        cluster.alpha.url, KeyPair.random(), constellation_id=pin(cluster)
    )
    await asyncio.to_thread(cluster.faucet, client.public_key, "USD", amount)
    notification = await client.next_notification(timeout_s=60)
    assert notification is not None and await notification.wait_final(10)
    return client


def test_a_fuzz_of_every_route_is_answered_with_codes_and_harms_nothing(node: Cluster) -> None:
    """Goal: thousands of malformed and mutated frames on /ws/, /ws/herald/ and
    /ws/chronicler/ get status or close codes only. Method: tools.abuse.fuzz on each route
    (4 addresses each), then the node's processes, logs, /info, and a payment end to end."""

    async def scenario() -> dict[str, abuse.FuzzTally]:
        tallies = {}
        for index, path in enumerate(abuse.ROUTES):
            count = HERALD_FRAMES if path == abuse.HERALD else CLIENT_ROUTE_FRAMES
            tallies[path] = await abuse.fuzz(
                node.alpha.url, path, count, seed=17 + index, lanes=4, first_host=10 * index
            )
        payer, payee = await funded(node, "10"), await funded(node, "1")
        payment = await payer.pay(payee.public_key, "USD", UNIT)
        assert payment.ok and await payment.wait_final(10), payment.description
        await payer.close()
        await payee.close()
        return tallies

    tallies = run(scenario())
    for path, tally in tallies.items():
        count = HERALD_FRAMES if path == abuse.HERALD else CLIENT_ROUTE_FRAMES
        assert tally.sent.total() == count, path
        assert "silent" not in tally.outcomes and "unauth:silent" not in tally.outcomes, path
        assert not any(name.startswith("error:") for name in tally.outcomes), tally.outcomes
        assert "close:1011" not in tally.outcomes, path  # an unhandled error in a consumer
    # Deep JSON that fits the limit is a clean 400 on the chronicler, not a 1011.
    assert tallies[abuse.CHRONICLER].outcomes["answer:json:error:400"] > 0
    assert_unharmed(node)


def test_answers_cut_short_by_an_oversized_frame_leave_no_traceback(node: Cluster) -> None:
    """Goal: when the edge closes a connection (1009) while the consumer still answers earlier
    frames, those answers are dropped quietly. Before the fix each one raised autobahn's
    "Attempt to send on a closed protocol" through the consumer: a traceback in the log per
    answer (found by the fuzz). Method: 300 malformed frames then one above the route's limit,
    on an authenticated gateway and chronicler connection."""

    async def burst(path: str) -> int | None:
        ws = await abuse.session(node.alpha.url, path, KeyPair.random(), host="127.0.3.1")
        async with ws:
            for _ in range(300):
                await ws.send(b"\x00\x00\x00\x05junk")
            await ws.send(bytes(abuse.CLIENT_MESSAGE_MAX + 1))
            with pytest.raises(ConnectionClosed):
                while True:
                    await asyncio.wait_for(ws.recv(), 10)
            return ws.close_code

    assert run(burst(abuse.GATEWAY)) == 1009
    assert run(burst(abuse.CHRONICLER)) == 1009
    # Bounded wait for something that must not come: a traceback is logged up to a second
    # after the application raised.
    deadline = time.monotonic() + REPORT_PERIOD_S
    while time.monotonic() < deadline and not any(abuse.tracebacks(node.workdir).values()):
        time.sleep(0.1)
    assert_unharmed(node)


def test_init_and_update_loops_are_refused_without_moving_the_engine(node: Cluster) -> None:
    """Goal: a re-sent init (409) and updates with 200 fake signatures (401) cost the engine
    nothing. Method: both in a loop from 8 threads for 3 s; the apex before and after."""
    apex = node.info()["apex"]
    counts = abuse.init_update_loop(node, time.monotonic() + 3.0)
    assert set(counts) == {"http:409", "http:401"}, counts
    assert min(counts.values()) > 10, counts
    assert node.info()["apex"] == apex
    assert_unharmed(node)


def test_1000_item_history_pages_in_a_loop_are_answered(node: Cluster) -> None:
    """Goal: the largest history pages, asked one after the other on the gateway and the
    chronicler at once, are answered at the connection's pace (5 a second, 10 at once) and
    the rest refused 429 at no database cost, and the node is unharmed. Before the pace every
    page was a 1 000-item read on the thread every handshake needs. Method:
    tools.abuse.history_loop for 3 s each."""

    async def scenario() -> list[Counter[str]]:
        client = await funded(node, "1")  # an account with a history (its deposit)
        account = client.keypair
        await client.close()
        deadline = time.monotonic() + 3.0
        return list(
            await asyncio.gather(
                abuse.history_loop(node.alpha.url, abuse.GATEWAY, account, deadline, "127.0.3.2"),
                abuse.history_loop(
                    node.alpha.url, abuse.CHRONICLER, account, deadline, "127.0.3.3"
                ),
            )
        )

    paced = 10 + 5 * 3 + 1  # the burst, the pace over 3 s, and one for rounding
    for counts in run(scenario()):
        answered = counts["answer:QuantumInfoResponse"]
        assert 10 <= answered <= paced, counts
        assert answered + counts["answer:429"] == counts["sent"], counts
    assert_unharmed(node)
