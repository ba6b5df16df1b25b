"""The harness's HTTP reads the trust store at each request (`tools/fetch.py`).

Goal: the deployment test (nodes on TLS only, a test CA trusted through SSL_CERT_FILE) failed
whenever other tests had run before it in the same pytest process: its nodes "did not come up
in 60 s" although their logs showed them serving the auditors' links. Cause: urllib's
module-level opener makes its TLS context once, at the process's first `urlopen`, with the
trust store of that moment, so a CA put in SSL_CERT_FILE afterwards was never trusted; and
`wait_for_http` took the certificate error for a node not up yet, and said nothing of it.
Method: a TLS server on loopback with a certificate of a fresh test CA; a first plain-HTTP
`urlopen` builds urllib's opener (as any earlier cluster test does); then SSL_CERT_FILE names
the CA and the harness fetches over HTTPS. No node processes.
"""

from __future__ import annotations

import ssl
import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tools.cluster import http_post_json, wait_for_http
from tools.fetch import urlopen
from tools.metrics_scrape import scrape
from tools.test_ca import TestCA


class _Answer(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - the http.server API
        self._answer(b"up 1\n", "text/plain")

    def do_POST(self) -> None:  # noqa: N802 - the http.server API
        self.rfile.read(int(self.headers["Content-Length"]))
        self._answer(b'{"status": 200}', "application/json")

    def _answer(self, body: bytes, kind: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        """Quiet."""


def _serving(server: ThreadingHTTPServer) -> Iterator[str]:
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


@pytest.fixture()
def plain() -> Iterator[str]:
    yield from _serving(ThreadingHTTPServer(("127.0.0.1", 0), _Answer))


@pytest.fixture()
def tls(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    ca = TestCA(tmp_path / "ca")
    issued = ca.issue("node", "127.0.0.1")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Answer)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(issued.certificate, issued.key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    for address in _serving(server):
        yield address, ca.certificate


def test_a_ca_trusted_after_the_first_request_is_trusted(
    plain: str, tls: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    with urllib.request.urlopen(f"http://{plain}/", timeout=5) as first:
        assert first.status == 200  # urllib's module-level opener exists from here on
    address, ca = tls
    monkeypatch.setenv("SSL_CERT_FILE", str(ca))
    wait_for_http(f"https://{address}/", timeout_s=5)
    with urlopen(f"https://{address}/", timeout=5) as answer:
        assert answer.read() == b"up 1\n"
    assert scrape(f"https://{address}")[("up", ())] == 1.0
    assert http_post_json(f"https://{address}/", "{}")["status"] == 200


def test_an_untrusted_certificate_is_named_when_the_wait_gives_up(tls: tuple[str, Path]) -> None:
    address, _ = tls  # SSL_CERT_FILE is the system's: the test CA is not trusted
    with pytest.raises(TimeoutError, match="CERTIFICATE_VERIFY_FAILED"):
        wait_for_http(f"https://{address}/", timeout_s=0.5)
