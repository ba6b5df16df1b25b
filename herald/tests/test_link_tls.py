"""The herald link's TLS (`herald.link.tls_context`): a wss:// link checks alpha's certificate
and host name, against the operators' own CA when CONSTELLATION_ALPHA_CA_FILE names one;
ws:// (loopback only) gets no TLS. Method: a `websockets` TLS server on 127.0.0.1 with a
certificate of a test CA (tools/test_ca.py); the link's context connects to it, a default
context (the system's CAs) does not."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve

from herald.link import tls_context
from tools.test_ca import TestCA


def test_ws_has_no_tls_and_wss_verifies() -> None:
    assert tls_context("ws://127.0.0.1:8000/ws/herald/", "") is None
    context = tls_context("wss://alpha.example/ws/herald/", "")
    assert context is not None
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname


async def test_a_wss_link_trusts_alpha_by_the_ca_file_and_only_then(tmp_path: Path) -> None:
    ca = TestCA(tmp_path)
    files = ca.issue("alpha", "127.0.0.1")
    server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_tls.load_cert_chain(files.certificate, files.key)

    async def echo(connection: ServerConnection) -> None:
        async for frame in connection:
            await connection.send(frame)

    async with serve(echo, "127.0.0.1", 0, ssl=server_tls) as server:
        port = server.sockets[0].getsockname()[1]
        url = f"wss://127.0.0.1:{port}/ws/herald/"
        async with connect(url, ssl=tls_context(url, str(ca.certificate))) as link:
            await link.send(b"hello")
            assert await link.recv() == b"hello"
        with pytest.raises(ssl.SSLCertVerificationError):
            async with connect(url, ssl=ssl.create_default_context(cafile=None, capath=None)):
                pass
