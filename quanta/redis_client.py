"""The node's synchronous Redis client, one per process (status, chronicler feed snapshots).

A client per call opened a new connection each time, with redis-py's handshake (which reads
its own version from package metadata): the engine does this every flush, 50 times a second,
and it cost each engine a fifth of its time. redis-py clients are thread-safe and pool their
connections, so one per process (and per URL, for tests that change it) serves everyone.
"""

from __future__ import annotations

import functools

import redis
from django.conf import settings

SOCKET_TIMEOUT_S = 5


def node_redis() -> redis.Redis:
    """Returns this process's client of the node's Redis (settings.REDIS_URL)."""
    return _client_for(settings.REDIS_URL)


@functools.cache
def _client_for(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=SOCKET_TIMEOUT_S)
