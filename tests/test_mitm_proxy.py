"""The man-in-the-middle proxy's own plumbing, without a constellation (tools/mitm_proxy.py).

Goal: the proxy forwards HTTP faithfully (status, headers, body both ways, the Host the
upstream expects), refuses connections beyond its bound with 503, reads and writes
WebSocket frames of every length form (masked or not), refuses a frame above its bound,
and exits 0 on SIGTERM after printing `ready <port>`. The attacks themselves run against a
real constellation in tests/cluster/test_mitm.py.
"""

from __future__ import annotations

import asyncio
import http.client
import http.server
import json
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tools.mitm_proxy import OP_BINARY, RefusedError, frame_bytes, read_frame

ROOT = Path(__file__).resolve().parents[1]


class Echo(http.server.BaseHTTPRequestHandler):
    """Answers every request with what it received, as JSON."""

    def do_GET(self) -> None:  # noqa: N802 (the http.server API)
        self.answer(b"")

    def do_POST(self) -> None:  # noqa: N802
        self.answer(self.rfile.read(int(self.headers["Content-Length"])))

    def answer(self, body: bytes) -> None:
        payload = json.dumps(
            {"path": self.path, "host": self.headers["Host"], "body": body.decode()}
        ).encode()
        self.send_response(201)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Upstream", "echo")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def upstream() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture
def proxy(upstream: int) -> Iterator[int]:
    process = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "tools" / "mitm_proxy.py"),
            "--upstream",
            f"http://127.0.0.1:{upstream}",
            "--max-connections",
            "2",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    assert line.startswith("ready "), line
    yield int(line.split()[1])
    process.send_signal(signal.SIGTERM)
    assert process.wait(10) == 0
    assert process.stderr is not None
    assert "tampered {}" in process.stderr.read()


def test_http_is_forwarded_faithfully(proxy: int, upstream: int) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", proxy, timeout=10)
    connection.request("POST", "/api/faucet?x=1", body=b'{"amount": "5"}')
    response = connection.getresponse()
    assert response.status == 201
    assert response.getheader("X-Upstream") == "echo"
    assert json.loads(response.read()) == {
        "path": "/api/faucet?x=1",
        "host": f"127.0.0.1:{upstream}",
        "body": '{"amount": "5"}',
    }
    connection.close()


def test_connections_beyond_the_bound_get_503(proxy: int) -> None:
    held = [socket.create_connection(("127.0.0.1", proxy)) for _ in range(2)]
    try:
        extra = http.client.HTTPConnection("127.0.0.1", proxy, timeout=10)
        extra.request("GET", "/")
        assert extra.getresponse().status == 503
    finally:
        for sock in held:
            sock.close()


@pytest.mark.parametrize("length", [0, 5, 125, 126, 65535, 65536, 200_000])
@pytest.mark.parametrize("masked", [False, True])
def test_frames_round_trip(length: int, masked: bool) -> None:
    payload = bytes(range(256)) * (length // 256) + bytes(length % 256)

    async def roundtrip() -> tuple[bool, int, bytes]:
        reader = asyncio.StreamReader()
        reader.feed_data(frame_bytes(OP_BINARY, payload, masked=masked))
        reader.feed_eof()
        return await read_frame(reader, 1 << 20)

    assert asyncio.run(roundtrip()) == (True, OP_BINARY, payload)


def test_a_frame_above_the_bound_is_refused_before_its_payload() -> None:
    async def oversize() -> None:
        reader = asyncio.StreamReader()
        reader.feed_data(frame_bytes(OP_BINARY, b"\0" * 70_000, masked=True)[:20])
        await read_frame(reader, 65_536)

    with pytest.raises(RefusedError) as refused:
        asyncio.run(oversize())
    assert refused.value.close_code == 1009
