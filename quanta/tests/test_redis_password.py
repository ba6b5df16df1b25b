"""A node reaches a Redis that takes a password through `CONSTELLATION_REDIS_URL` alone.

Goal: the engine executes what arrives through Redis as verified, so production Redis needs a
password or an ACL user (README, environment table); both of a node's uses of it, the
channel layer and the node status, must take the credentials from the one URL, and a wrong
or missing one must fail loudly rather than reach another Redis. Method: a real
`redis-server` started by the test on a free loopback port with `requirepass` and an ACL
user, the node's own channel layer and status functions pointed at it.
"""

from __future__ import annotations

import os
import select
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from quanta.channel_layer import NodeChannelLayer
from quanta.core.xdr.schema import NodeState
from quanta.node_status import status_publish, status_read
from quanta.redis_client import _client_for

PASSWORD = "correct horse battery staple"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def redis_port() -> Iterator[int]:
    """A password-protected redis-server of this test, with an ACL user `node`."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    port = _free_port()
    server = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--requirepass",
            PASSWORD,
            "--user",
            "node",
            "on",
            f">{PASSWORD}",
            "~*",
            "&*",
            "+@all",
        ],  # fmt: skip
        stdout=subprocess.PIPE,
    )
    try:
        _await_ready(server)
        yield port
    finally:
        server.terminate()
        server.wait(timeout=10)


def _await_ready(server: subprocess.Popen[bytes]) -> None:
    """Reads the server's log until it says it accepts connections (10 s at most). Read from
    the file descriptor itself: a buffered reader may hold the line while `select` says the
    descriptor has nothing more."""
    assert server.stdout is not None
    descriptor = server.stdout.fileno()
    log = b""
    deadline = time.monotonic() + 10
    while b"Ready to accept connections" not in log and time.monotonic() < deadline:
        ready, _, _ = select.select([descriptor], [], [], max(0.0, deadline - time.monotonic()))
        chunk = os.read(descriptor, 65536) if ready else b""
        if not chunk and server.poll() is not None:
            break
        log += chunk
    if b"Ready to accept connections" not in log:
        pytest.fail(f"redis-server did not start (exit {server.poll()}): {log[-500:]!r}")


def _url(port: int, credentials: str) -> str:
    return f"redis://{credentials}127.0.0.1:{port}/0"


@pytest.mark.parametrize("credentials", [f":{PASSWORD}@", f"node:{PASSWORD}@"])
def test_the_node_status_goes_through_the_url_s_credentials(
    redis_port: int, credentials: str, settings: Any
) -> None:
    settings.REDIS_URL = _url(redis_port, credentials.replace(" ", "%20"))
    status_publish(state=NodeState.READY, apex=42, reason="")
    assert (status_read().state, status_read().apex) == ("Ready", 42)


@pytest.mark.parametrize("credentials", ["", ":wrong@", "node:wrong@"])
def test_a_missing_or_wrong_password_fails_loudly(
    redis_port: int, credentials: str, settings: Any
) -> None:
    settings.REDIS_URL = _url(redis_port, credentials)
    _client_for.cache_clear()
    with pytest.raises((redis.AuthenticationError, redis.ResponseError)):
        status_read()


async def test_the_channel_layer_goes_through_the_url_s_credentials(redis_port: int) -> None:
    url = _url(redis_port, f"node:{PASSWORD.replace(' ', '%20')}@")
    layer = NodeChannelLayer(hosts=[{"address": url}], prefix="password-test")
    await layer.send("quanta", {"type": "test.message", "n": 1})
    assert await layer.receive("quanta") == {"type": "test.message", "n": 1}
    await layer.flush()
    refused = NodeChannelLayer(hosts=[{"address": _url(redis_port, "")}], prefix="pw-test")
    with pytest.raises((redis.AuthenticationError, redis.ResponseError)):
        await refused.send("quanta", {"type": "test.message"})
