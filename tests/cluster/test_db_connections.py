"""A node's PostgreSQL connections stay within its pools, whatever the request rate.

Goal: show that HTTP requests and WebSocket sessions do not each leave a database connection
behind. Before the pools, every request to the web process (daphne runs each in a thread of
its own) kept an idle connection open for CONN_MAX_AGE = 60 s: 200 `GET /api/constellation/info`
took alpha's web process from 4 to 204 connections, and an open page exhausted PostgreSQL's
100 in about 80 s. Method: a single-node constellation; many concurrent `/info` requests and
client sessions (handshake, a read, close); `pg_stat_activity` counted for the node's
databases before and after. Every process holds at most `DB_POOL_MAX` connections per
database alias, so the node holds at most that times its processes (web and engine) and
aliases, however many requests came.
"""

from __future__ import annotations

import asyncio
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import psycopg

from constellation_client import ConstellationClient
from quanta.core.keys import KeyPair
from tests.cluster.conftest import run
from tests.cluster.pins import pin
from tools.cluster import PG_ADMIN_URL, Cluster

HTTP_REQUESTS = 600
SESSIONS = 100
POOL_MAX = 8
"""The default CONSTELLATION_DB_POOL_MAX."""
PROCESSES = 2
"""A single node's processes: web and engine (no herald link)."""


def connections(cluster: Cluster) -> int:
    """Returns the connections PostgreSQL holds for the node's own and ledger databases."""
    databases = [cluster.alpha.database, cluster.ledger_database]
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as connection:
        row = connection.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = ANY(%s)", (databases,)
        ).fetchone()
    assert row is not None
    return int(row[0])


def info_ok(url: str) -> bool:
    with urllib.request.urlopen(f"{url}/api/constellation/info", timeout=10) as response:
        return bool(response.status == 200)


def test_http_requests_do_not_each_keep_a_connection(single_node: Cluster) -> None:
    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(info_ok, [single_node.alpha.url] * HTTP_REQUESTS))
    assert all(answers)
    held = connections(single_node)
    assert held <= POOL_MAX * PROCESSES * 2, f"{held} connections after {HTTP_REQUESTS} requests"


def test_client_sessions_do_not_each_keep_a_connection(single_node: Cluster) -> None:
    async def session() -> None:
        client = await ConstellationClient.connect(
            single_node.alpha.url, KeyPair.random(), constellation_id=pin(single_node)
        )
        await client.close()

    async def scenario() -> None:
        for _ in range(SESSIONS // 10):
            await asyncio.gather(*(session() for _ in range(10)))

    run(scenario())
    held = connections(single_node)
    assert held <= POOL_MAX * PROCESSES * 2, f"{held} connections after {SESSIONS} sessions"
