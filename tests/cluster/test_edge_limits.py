"""The web process refuses oversized WebSocket messages and connection floods at the edge.

Goal: an unauthenticated peer cannot make alpha's web process buffer more than a route's
largest message, nor hold more connections than the per-address cap. Before the per-route
limits, daphne took any message up to its one limit of 1 MiB on every route (the gateway's
64 KiB check ran only after buffering it), and one address could open any number of
connections. Method: a single-node constellation started with the real server
(`python -m constellation_site.server`, tools/cluster.py); raw WebSocket connections from
the `websockets` library; no handshake is ever completed by the attacker.
"""

from __future__ import annotations

import asyncio

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from constellation_site.edge import ENVELOPE_SLACK_BYTES
from quanta.core.xdr.schema import Limits
from tests.cluster.conftest import run
from tools.cluster import Cluster

pytestmark = pytest.mark.cluster

PER_ADDRESS_MAX = 64
"""The default CONSTELLATION_WS_PER_ADDRESS_MAX."""


def ws_url(cluster: Cluster, path: str) -> str:
    return cluster.alpha.url.replace("http://", "ws://") + path


def test_a_client_frame_above_the_route_limit_is_refused_as_it_arrives(
    single_node: Cluster,
) -> None:
    async def scenario() -> int | None:
        async with connect(ws_url(single_node, "/ws/"), max_size=None) as socket:
            await asyncio.wait_for(socket.recv(), 10)  # the challenge
            too_big = bytes(Limits.ENVELOPE_BYTES_MAX + ENVELOPE_SLACK_BYTES + 1)
            with pytest.raises(ConnectionClosed):
                await socket.send(too_big)
                await asyncio.wait_for(socket.recv(), 10)
            return socket.close_code

    assert run(scenario()) == 1009  # message too big


def test_a_large_message_is_refused_on_the_chronicler_too(single_node: Cluster) -> None:
    async def scenario() -> int | None:
        async with connect(ws_url(single_node, "/ws/chronicler/"), max_size=None) as socket:
            await asyncio.wait_for(socket.recv(), 10)
            with pytest.raises(ConnectionClosed):
                await socket.send("x" * (1024 * 1024))
                await asyncio.wait_for(socket.recv(), 10)
            return socket.close_code

    assert run(scenario()) == 1009


def test_one_address_gets_at_most_the_cap_of_connections(single_node: Cluster) -> None:
    async def scenario() -> int:
        sockets = [await connect(ws_url(single_node, "/ws/")) for _ in range(PER_ADDRESS_MAX)]
        try:
            with pytest.raises(InvalidStatus) as refused:
                await connect(ws_url(single_node, "/ws/"))
            status = refused.value.response.status_code
        finally:
            await asyncio.gather(*(socket.close() for socket in sockets))
        # Room again once they are closed.
        async with connect(ws_url(single_node, "/ws/")) as again:
            await asyncio.wait_for(again.recv(), 10)
        return status

    assert run(scenario()) == 429
