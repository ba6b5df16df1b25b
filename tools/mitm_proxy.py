"""A man in the middle between a client and a node, for the attacks of issue 16.

It listens on 127.0.0.1, forwards HTTP (the page, static files, the API) and every WebSocket
route to an upstream node, and tampers with what passes according to its flags:

- `--rewrite-status [CODE]`: unsigned `QuantumResultMessage` frames (a request's
  acknowledgement and finalization) get status CODE (500 by default) instead of 200.
- `--rewrite-id zero|stale`: `zero` sets the `message_id` of those frames to 0 (the request
  looks unanswered, its result a notification); `stale` answers every request after the first
  with the last finalized result of an earlier request, relabelled with the new request's id
  (its real answers, a refusal included, are dropped).
- `--replay [COUNT]`: each finalized notification (`message_id` 0) is sent again COUNT times
  (3 by default), `--replay-delay` seconds apart.
- `--forge-keys`: a fake alpha whose auditors are the attacker's keys: `/api/constellation/info`
  and `/api/constellation/settings-chain` name them (a genesis update signed by them), and
  `/ws/` is served by the proxy itself: a handshake signed by the fake alpha, then a
  fabricated final `QuantumResultMessage` (own effects with the request's nonce, signed by
  every attacker key) for each request, and fabricated balances.
- `--relay-to URL`: the `/ws/` connection (handshake and session) goes to another node, e.g.
  the alpha of a second constellation, while HTTP still goes to the upstream.

Pass-through (no attack flag) forwards faithfully. It prints `ready <port>` on stdout once
listening, logs each tampering on stderr as `mitm: ...`, and exits cleanly on SIGTERM or
SIGINT. Bounds: connections at once, request and response sizes, WebSocket message sizes
(per direction), header sizes and read deadlines.

Run: python tools/mitm_proxy.py --upstream http://127.0.0.1:8000 --port 8100 --rewrite-status
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import itertools
import json
import os
import secrets
import signal
import struct
import sys
import time
import urllib.parse
import urllib.request
from collections import deque
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from quanta.core.envelopes import SIGNATURE_TAIL, envelope_bytes  # noqa: E402
from quanta.core.hashing import effects_proof, group_hash, sha256  # noqa: E402
from quanta.core.keys import KeyPair  # noqa: E402
from quanta.core.signatures import constellation_id_of, payload_hash, update_digest  # noqa: E402
from quanta.core.status import StatusCode  # noqa: E402
from quanta.core.testing import default_settings  # noqa: E402
from quanta.core.xdr.codec import XdrError, decode, decode_prefix, encode  # noqa: E402
from quanta.core.xdr.schema import (  # noqa: E402
    CLIENT_REQUESTS,
    MESSAGE,
    AccountDataInfo,
    AccountDataRequest,
    BalanceInfo,
    BalanceUpdateEffect,
    BalanceUpdateSign,
    ClientConnectionSuccess,
    ConstellationMessageEnvelope,
    ConstellationSettings,
    ConstellationUpdate,
    EffectsGroup,
    EffectsGroupHash,
    HandshakeRequest,
    HandshakeResponse,
    Limits,
    Message,
    MessageEnvelope,
    NodeSignature,
    NonceUpdateEffect,
    PayloadProof,
    PaymentRequest,
    QuantumInfoRequest,
    QuantumInfoResponse,
    QuantumResultMessage,
    Signature,
    WithdrawalRequest,
)

HEAD_BYTES_MAX = 32 * 1024
REQUEST_BODY_MAX = 1024 * 1024
RESPONSE_BYTES_MAX = 32 * 1024 * 1024
CLIENT_MESSAGE_MAX = Limits.ENVELOPE_BYTES_MAX + 1024
SERVER_MESSAGE_MAX = Limits.BATCH_BYTES_MAX + 1024
HEAD_TIMEOUT_S = 10.0
CONNECTIONS_MAX = 64
WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
INFO_PATH = "/api/constellation/info"
CHAIN_PATH = "/api/constellation/settings-chain"
WS_PATH = "/ws/"
RECORDED_MAX = 64

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0, 1, 2, 8, 9, 10


def log(text: str) -> None:
    """Reports one event on stderr (what was tampered, what failed)."""
    print(f"mitm: {text}", file=sys.stderr, flush=True)


# --- WebSocket frames (RFC 6455; no extension is ever negotiated through the proxy) --------


class RefusedError(Exception):
    """A peer broke a bound or the protocol: the connection is closed."""

    def __init__(self, text: str, close_code: int = 1002) -> None:
        super().__init__(text)
        self.close_code = close_code


async def read_frame(reader: asyncio.StreamReader, limit: int) -> tuple[bool, int, bytes]:
    """Returns (fin, opcode, unmasked payload) of one frame; refuses one above `limit`."""
    head = await reader.readexactly(2)
    fin, opcode = bool(head[0] & 0x80), head[0] & 0x0F
    if head[0] & 0x70:
        raise RefusedError("reserved bits set (no extension was negotiated)")
    masked, length = bool(head[1] & 0x80), head[1] & 0x7F
    if length == 126:
        (length,) = struct.unpack(">H", await reader.readexactly(2))
    elif length == 127:
        (length,) = struct.unpack(">Q", await reader.readexactly(8))
    if length > limit:
        raise RefusedError(f"frame of {length} bytes above {limit}", 1009)
    mask = await reader.readexactly(4) if masked else b""
    payload = await reader.readexactly(length)
    if masked:
        payload = _unmask(payload, mask)
    return fin, opcode, payload


def _unmask(payload: bytes, mask: bytes) -> bytes:
    key = int.from_bytes((mask * (len(payload) // 4 + 1))[: len(payload)] or b"\0", "big")
    value = int.from_bytes(payload or b"\0", "big") ^ key
    return value.to_bytes(len(payload), "big") if payload else b""


def frame_bytes(opcode: int, payload: bytes, *, masked: bool, fin: bool = True) -> bytes:
    """Returns one frame; clients mask theirs (RFC 6455, 5.3)."""
    first = (0x80 if fin else 0) | opcode
    length = len(payload)
    flag = 0x80 if masked else 0
    if length < 126:
        head = struct.pack(">BB", first, flag | length)
    elif length < 2**16:
        head = struct.pack(">BBH", first, flag | 126, length)
    else:
        head = struct.pack(">BBQ", first, flag | 127, length)
    if not masked:
        return head + payload
    mask = secrets.token_bytes(4)
    return head + mask + _unmask(payload, mask)


class WsEnd:
    """One side of a WebSocket: reads whole messages, writes frames."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        masks: bool,
        limit: int,
    ) -> None:
        self.reader, self.writer, self.masks, self.limit = reader, writer, masks, limit
        self.closed = False

    async def receive(self) -> tuple[int, bytes]:
        """Returns (opcode, payload) of the next message or control frame."""
        fin, opcode, payload = await read_frame(self.reader, self.limit)
        if opcode >= OP_CLOSE or fin:
            return opcode, payload
        parts, size = [payload], len(payload)
        while True:
            fin, more, payload = await read_frame(self.reader, self.limit)
            if more >= OP_CLOSE:
                await self.send(more, payload)  # Control frames may interleave; answer later.
                continue
            if more != OP_CONT:
                raise RefusedError("a new message inside a fragmented one")
            size += len(payload)
            if size > self.limit:
                raise RefusedError(f"message above {self.limit} bytes", 1009)
            parts.append(payload)
            if fin:
                return opcode, b"".join(parts)

    async def send(self, opcode: int, payload: bytes) -> None:
        """Writes one frame (a whole message)."""
        if self.closed:
            return
        self.writer.write(frame_bytes(opcode, payload, masked=self.masks))
        await self.writer.drain()

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Sends a close frame (once) and closes the stream."""
        if not self.closed:
            with contextlib.suppress(OSError, ConnectionError):
                await self.send(OP_CLOSE, struct.pack(">H", code) + reason.encode()[:100])
            self.closed = True
        self.writer.close()
        with contextlib.suppress(OSError, ConnectionError):
            await self.writer.wait_closed()


# --- HTTP ------------------------------------------------------------------------------


@dataclass
class Head:
    """A parsed HTTP request or response head."""

    start: str
    headers: list[tuple[str, str]]

    def get(self, name: str) -> str:
        """Returns a header's value ('' when absent)."""
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return ""

    def without(self, *names: str) -> list[tuple[str, str]]:
        """Returns the headers except `names`."""
        drop = {name.lower() for name in names}
        return [(key, value) for key, value in self.headers if key.lower() not in drop]

    @staticmethod
    def render(start: str, headers: list[tuple[str, str]]) -> bytes:
        """Returns the bytes of a head."""
        lines = [start, *(f"{key}: {value}" for key, value in headers), "", ""]
        return "\r\n".join(lines).encode("latin-1")


async def read_head(reader: asyncio.StreamReader) -> Head | None:
    """Reads one head (bounded in size and time); None at a clean end of stream."""
    try:
        data = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), HEAD_TIMEOUT_S)
    except asyncio.IncompleteReadError as error:
        if not error.partial:
            return None
        raise RefusedError("truncated HTTP head") from None
    except asyncio.LimitOverrunError:
        raise RefusedError("HTTP head too large") from None
    lines = data.decode("latin-1").split("\r\n")
    headers = []
    for line in lines[1:]:
        if line:
            key, _, value = line.partition(":")
            headers.append((key.strip(), value.strip()))
    return Head(lines[0], headers)


def simple_response(status: str, body: bytes, content_type: str = "text/plain") -> bytes:
    """Returns a whole HTTP response that closes the connection."""
    headers = [
        ("Content-Type", content_type),
        ("Content-Length", str(len(body))),
        ("Cache-Control", "no-store"),
        ("Connection", "close"),
    ]
    return Head.render(f"HTTP/1.1 {status}", headers) + body


def json_response(value: object) -> bytes:
    """Returns a 200 JSON response."""
    return simple_response("200 OK", json.dumps(value).encode(), "application/json")


# --- the attacker's constellation (--forge-keys) -----------------------------------------


@dataclass
class Forgery:
    """The attacker's alpha and auditors, their genesis settings and chain.

    Everything is signed under `constellation_id`: the real constellation's id when the
    upstream tells it (the id is public, so a client that checked signatures against its
    pinned id but took the keys from the node would be fooled), else the forged genesis'
    own id. Only a client that checks the genesis settings against its pin sees the lie."""

    keys: list[KeyPair]
    settings: ConstellationSettings
    constellation_id: bytes
    genesis: bytes  # XDR of the ConstellationMessageEnvelope, signed by every attacker key
    apexes: itertools.count[int] = field(default_factory=lambda: itertools.count(1_000_000))

    @classmethod
    def make(
        cls, auditors: int, assets: list[str], addresses: list[str], claimed: bytes | None
    ) -> Forgery:
        keys = [KeyPair.random() for _ in range(auditors)]
        settings = default_settings(
            keys,
            assets=[code for code in assets if code != "USD"] or ["XLM"],
            addresses=(addresses + [f"http://127.0.0.1:{9000 + i}" for i in range(auditors)])[
                :auditors
            ],
        )
        constellation_id = claimed or constellation_id_of(settings)
        update = ConstellationUpdate(1, settings)
        digest = update_digest(constellation_id, update)
        envelope = ConstellationMessageEnvelope(
            update, tuple(Signature(key.public_key, key.sign(digest)) for key in keys)
        )
        return cls(keys, settings, constellation_id, encode(envelope))

    @property
    def alpha(self) -> KeyPair:
        return self.keys[0]

    def info(self, real: dict[str, Any]) -> dict[str, Any]:
        """Returns the real node's info with the attacker's keys and id put in."""
        info = dict(real)
        info["alpha"] = self.alpha.public_key_strkey
        info["auditors"] = [
            {"public_key": key.public_key_strkey, "address": auditor.address}
            for key, auditor in zip(self.keys, self.settings.auditors, strict=True)
        ]
        info["constellation_id"] = self.constellation_id.hex()
        info["settings_version"] = 1
        info["state"] = "Ready"
        return info

    def chain(self, after: int) -> dict[str, Any]:
        """Returns the forged settings chain: one genesis update signed by the attackers."""
        updates = [] if after >= 1 else [{"version": 1, "apex": 1, "envelope": self.b64()}]
        return {"constellation_id": self.constellation_id.hex(), "updates": updates, "more": False}

    def b64(self) -> str:
        return base64.b64encode(self.genesis).decode()

    def frame(self, message: Message) -> bytes:
        """Returns a frame signed by the fake alpha (or unsigned for a quantum result)."""
        body = encode(message, MESSAGE)
        if isinstance(message, QuantumResultMessage) and message.account_data is None:
            return body
        return envelope_bytes(body, self.alpha, self.constellation_id)

    def result(self, request: Any, account_id: int, sequence: int) -> QuantumResultMessage:
        """Fabricates a final result of `request`: the account's effects (its nonce, and for
        a payment or withdrawal the debit), another account's group for a payment, and a
        payload proof signed by every attacker key."""
        effects: list[Any] = [NonceUpdateEffect(int(request.nonce), int(request.nonce) - 1)]
        if isinstance(request, (PaymentRequest, WithdrawalRequest)):
            amount = int(request.amount)
            effects.append(BalanceUpdateEffect(request.asset, BalanceUpdateSign.MINUS, amount))
        own = EffectsGroup(account_id, sequence, tuple(effects))
        groups: list[EffectsGroup | EffectsGroupHash] = [own]
        if isinstance(request, PaymentRequest):
            groups.append(EffectsGroupHash(account_id + 1, secrets.token_bytes(32)))
        apex = next(self.apexes)
        quantum = secrets.token_bytes(32)
        proof_of_effects = effects_proof(
            group_hash(g) if isinstance(g, EffectsGroup) else g.hash for g in groups
        )
        digest = payload_hash(self.constellation_id, apex, quantum, proof_of_effects)
        signatures = tuple(
            NodeSignature(index, key.sign(digest)) for index, key in enumerate(self.keys)
        )
        account_data = None
        if isinstance(request, AccountDataRequest):
            account_data = AccountDataInfo(
                account_id,
                int(request.nonce),
                tuple(
                    BalanceInfo(asset.code, 1_000_000 * 10**7, 0) for asset in self.settings.assets
                ),
                (),
                secrets.token_bytes(32),
            )
        return QuantumResultMessage(
            int(request.message_id),
            StatusCode.SUCCESS,
            "",
            apex,
            quantum,
            PayloadProof(digest, signatures),
            tuple(groups),
            account_data,
        )


# --- the proxy ---------------------------------------------------------------------------


@dataclass
class Options:
    upstream: urllib.parse.SplitResult
    relay_to: urllib.parse.SplitResult | None = None
    rewrite_status: int | None = None
    rewrite_id: str | None = None
    replay: int = 0
    replay_delay_s: float = 0.3
    forge_keys: bool = False
    connections_max: int = CONNECTIONS_MAX


class Proxy:
    """The listening proxy: one task per client connection, at most `connections_max`."""

    def __init__(self, options: Options) -> None:
        self.options = options
        self.connections = 0
        self.tasks: set[asyncio.Task[None]] = set()
        self.forgery: Forgery | None = None
        self.counts: dict[str, int] = {}

    def count(self, what: str, text: str) -> None:
        """Counts and logs one tampering."""
        self.counts[what] = self.counts.get(what, 0) + 1
        log(f"{what} #{self.counts[what]}: {text}")

    # Connections ------------------------------------------------------------------------

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.tasks.add(task)
        self.connections += 1
        try:
            if self.connections > self.options.connections_max:
                writer.write(simple_response("503 Service Unavailable", b"too many connections"))
                await writer.drain()
                return
            await self.serve(reader, writer)
        except (RefusedError, OSError, asyncio.IncompleteReadError, ConnectionError) as error:
            log(f"connection ended: {error!r}")
        except asyncio.CancelledError:
            pass
        finally:
            self.connections -= 1
            self.tasks.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await read_head(reader)
        if head is None:
            return
        method, _, rest = head.start.partition(" ")
        target = rest.rpartition(" ")[0] or rest
        parts = urllib.parse.urlsplit(target)
        websocket = head.get("Upgrade").lower() == "websocket"
        if self.options.forge_keys and parts.path in (INFO_PATH, CHAIN_PATH) and method == "GET":
            await self.forged_http(writer, parts)
        elif self.options.forge_keys and websocket and parts.path == WS_PATH:
            await self.fake_alpha(reader, writer, head)
        elif websocket:
            relay = self.options.relay_to if parts.path == WS_PATH else None
            await self.relay_websocket(reader, writer, head, relay or self.options.upstream)
        else:
            await self.relay_http(reader, writer, head)

    async def open_upstream(
        self, where: urllib.parse.SplitResult
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        host, port = where.hostname or "127.0.0.1", where.port or 80
        return await asyncio.wait_for(
            asyncio.open_connection(host, port, limit=HEAD_BYTES_MAX), HEAD_TIMEOUT_S
        )

    # HTTP -------------------------------------------------------------------------------

    async def relay_http(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, head: Head
    ) -> None:
        """Forwards one request (with its body) and its whole response, then closes."""
        if head.get("Transfer-Encoding"):
            writer.write(simple_response("411 Length Required", b"send a Content-Length"))
            return
        length = int(head.get("Content-Length") or 0)
        if not 0 <= length <= REQUEST_BODY_MAX:
            writer.write(simple_response("413 Payload Too Large", b"request body too large"))
            return
        body = await reader.readexactly(length)
        upstream = self.options.upstream
        up_reader, up_writer = await self.open_upstream(upstream)
        try:
            headers = head.without("Host", "Connection", "Keep-Alive", "Proxy-Connection")
            headers += [("Host", upstream.netloc), ("Connection", "close")]
            up_writer.write(Head.render(head.start, headers) + body)
            await up_writer.drain()
            answer = await read_head(up_reader)
            if answer is None:
                raise RefusedError("the upstream closed without answering")
            headers = answer.without("Connection", "Keep-Alive") + [("Connection", "close")]
            writer.write(Head.render(answer.start, headers))
            total = 0
            while chunk := await up_reader.read(65536):
                total += len(chunk)
                if total > RESPONSE_BYTES_MAX:
                    raise RefusedError("upstream response too large")
                writer.write(chunk)
                await writer.drain()
        finally:
            up_writer.close()

    async def forged_http(
        self, writer: asyncio.StreamWriter, parts: urllib.parse.SplitResult
    ) -> None:
        """Serves the attacker's info or settings chain."""
        real = await self.upstream_info()
        forgery = self.forgery_for(real)
        if parts.path == INFO_PATH:
            self.count("forged-info", f"alpha {forgery.alpha.public_key_strkey}")
            writer.write(json_response(forgery.info(real)))
        else:
            query = urllib.parse.parse_qs(parts.query)
            after = int((query.get("after") or ["0"])[0] or 0)
            self.count("forged-chain", f"id {forgery.constellation_id.hex()} after={after}")
            writer.write(json_response(forgery.chain(after)))
        await writer.drain()

    async def upstream_info(self) -> dict[str, Any]:
        """Returns the upstream's info JSON ({} when it cannot be read)."""
        url = urllib.parse.urlunsplit(("http", self.options.upstream.netloc, INFO_PATH, "", ""))

        def fetch() -> dict[str, Any]:
            with urllib.request.urlopen(url, timeout=5) as response:
                value = json.loads(response.read(RESPONSE_BYTES_MAX))
            return value if isinstance(value, dict) else {}

        try:
            return await asyncio.to_thread(fetch)
        except (OSError, ValueError) as error:
            log(f"cannot read the upstream's info: {error}")
            return {}

    def forgery_for(self, real: dict[str, Any]) -> Forgery:
        if self.forgery is None:
            auditors = real.get("auditors") if isinstance(real.get("auditors"), list) else []
            assets = [str(a.get("code")) for a in real.get("assets") or [] if isinstance(a, dict)]
            addresses = [str(a.get("address", "")) for a in auditors or [] if isinstance(a, dict)]
            claimed = None
            with contextlib.suppress(TypeError, ValueError):
                claimed = bytes.fromhex(str(real.get("constellation_id")))
            claimed = claimed if claimed and len(claimed) == 32 else None
            count = max(3, len(auditors or []))
            self.forgery = Forgery.make(count, assets, addresses, claimed)
        return self.forgery

    # WebSocket relay --------------------------------------------------------------------

    async def relay_websocket(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        head: Head,
        where: urllib.parse.SplitResult,
    ) -> None:
        """Relays the upgrade, then every message both ways through the tampering hooks."""
        up_reader, up_writer = await self.open_upstream(where)
        if where != self.options.upstream:
            self.count("relay", f"{head.start.split(' ')[1]} handshake -> {where.netloc}")
        headers = head.without("Host", "Sec-WebSocket-Extensions") + [("Host", where.netloc)]
        up_writer.write(Head.render(head.start, headers))
        await up_writer.drain()
        answer = await read_head(up_reader)
        if answer is None:
            up_writer.close()
            return
        writer.write(Head.render(answer.start, answer.without("Sec-WebSocket-Extensions")))
        await writer.drain()
        if " 101 " not in f"{answer.start} ":
            # A refusal (403, 429...): pass its (bounded) body on and end.
            with contextlib.suppress(asyncio.IncompleteReadError, RefusedError):
                writer.write(await up_reader.read(HEAD_BYTES_MAX))
            up_writer.close()
            return
        client = WsEnd(reader, writer, masks=False, limit=CLIENT_MESSAGE_MAX)
        server = WsEnd(up_reader, up_writer, masks=True, limit=SERVER_MESSAGE_MAX)
        session = Session(self, client, server)
        await session.run()

    # The fake alpha ---------------------------------------------------------------------

    async def fake_alpha(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, head: Head
    ) -> None:
        """Accepts the WebSocket itself and answers as the attacker's alpha."""
        key = head.get("Sec-WebSocket-Key").encode()
        accept = base64.b64encode(hashlib.sha1(key + WS_GUID).digest()).decode()  # noqa: S324
        headers = [("Upgrade", "websocket"), ("Connection", "Upgrade")]
        writer.write(
            Head.render(
                "HTTP/1.1 101 Switching Protocols", headers + [("Sec-WebSocket-Accept", accept)]
            )
        )
        await writer.drain()
        forgery = self.forgery_for(await self.upstream_info())
        client = WsEnd(reader, writer, masks=False, limit=CLIENT_MESSAGE_MAX)
        await client.send(OP_BINARY, forgery.frame(HandshakeRequest(0, secrets.token_bytes(32))))
        account_id = 0
        sequence = itertools.count(1)
        try:
            while True:
                opcode, payload = await client.receive()
                if opcode == OP_CLOSE:
                    break
                if opcode == OP_PING:
                    await client.send(OP_PONG, payload)
                if opcode != OP_BINARY:
                    continue
                try:
                    message = decode(MessageEnvelope, payload).message
                except XdrError:
                    continue
                message_id = int(getattr(message, "message_id", 0))
                if isinstance(message, HandshakeResponse):
                    account_id = 1 + int.from_bytes(sha256(payload[-SIGNATURE_TAIL:-64])[:3])
                    self.count("forged-handshake", f"account {account_id}")
                    answer: Message = ClientConnectionSuccess(message_id, account_id)
                    await client.send(OP_BINARY, forgery.frame(answer))
                elif isinstance(message, CLIENT_REQUESTS):
                    result = forgery.result(message, account_id, next(sequence))
                    self.count(
                        "forged-result",
                        f"{type(message).__name__} id {message_id} nonce {message.nonce} "
                        f"apex {result.apex}, signed by {len(forgery.keys)} attacker keys",
                    )
                    await client.send(OP_BINARY, forgery.frame(result))
                elif isinstance(message, QuantumInfoRequest):
                    empty = QuantumInfoResponse(message_id, StatusCode.SUCCESS, "", (), None, None)
                    await client.send(OP_BINARY, forgery.frame(empty))
        finally:
            await client.close()


class Session:
    """One relayed WebSocket: the client's and the server's pumps, with the tampering."""

    def __init__(self, proxy: Proxy, client: WsEnd, server: WsEnd) -> None:
        self.proxy, self.client, self.server = proxy, client, server
        self.options = proxy.options
        self.auditors = 0
        self.requests: deque[int] = deque(maxlen=RECORDED_MAX)
        self.last_final: QuantumResultMessage | None = None
        self.substituted: set[int] = set()
        self.replayed: set[bytes] = set()
        self.timers: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        if self.options.replay or self.options.rewrite_id == "stale":
            auditors = (await self.proxy.upstream_info()).get("auditors")
            self.auditors = len(auditors) if isinstance(auditors, list) else 0
        pumps = [
            asyncio.create_task(self.pump(self.client, self.server, self.upstream_bound)),
            asyncio.create_task(self.pump(self.server, self.client, self.client_bound)),
        ]
        try:
            done, _ = await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if (error := task.exception()) is not None and isinstance(error, RefusedError):
                    log(f"websocket refused: {error}")
                    await self.client.close(error.close_code, str(error))
        finally:
            for task in [*pumps, *self.timers]:
                task.cancel()
            await asyncio.gather(*pumps, *self.timers, return_exceptions=True)
            await self.server.close()
            await self.client.close()

    async def pump(self, source: WsEnd, target: WsEnd, hook: Any) -> None:
        while True:
            opcode, payload = await source.receive()
            if opcode == OP_CLOSE:
                await target.send(OP_CLOSE, payload)
                target.closed = True
                return
            if opcode == OP_BINARY:
                for frame in await hook(payload):
                    await target.send(OP_BINARY, frame)
            else:
                await target.send(opcode, payload)

    async def upstream_bound(self, payload: bytes) -> list[bytes]:
        """Client -> node: forwarded unchanged; the request ids are noted."""
        with contextlib.suppress(XdrError):
            message = decode(MessageEnvelope, payload).message
            if isinstance(message, CLIENT_REQUESTS):
                self.requests.append(int(message.message_id))
        return [payload]

    def final(self, message: QuantumResultMessage) -> bool:
        signers = {int(s.auditor_index) for s in message.payload_proof.signatures}
        return self.auditors > 0 and len(signers) >= self.auditors // 2 + 1

    async def client_bound(self, payload: bytes) -> list[bytes]:
        """Node -> client: the tampering happens here."""
        try:
            message, end = decode_prefix(MESSAGE, payload)
        except XdrError:
            return [payload]
        unsigned = end == len(payload)
        message_id = int(getattr(message, "message_id", 0))
        options = self.options
        if options.rewrite_id == "stale" and message_id in self.requests:
            return self.stale(message, unsigned, payload)
        if not isinstance(message, QuantumResultMessage) or not unsigned:
            return [payload]
        if options.replay and message_id == 0 and self.final(message):
            key = message.payload_proof.payload_hash
            if key not in self.replayed:
                self.replayed.add(key)
                timer = asyncio.create_task(self.replay(payload, message))
                self.timers.add(timer)
                timer.add_done_callback(self.timers.discard)
        if message_id == 0:
            return [payload]
        changed = message
        if options.rewrite_status is not None and message.status != options.rewrite_status:
            changed = replace(changed, status=StatusCode(options.rewrite_status))
        if options.rewrite_id == "zero":
            changed = replace(changed, message_id=0)
        if changed is message:
            return [payload]
        self.proxy.count(
            "rewrite",
            f"apex {message.apex} status {int(message.status)}->{int(changed.status)} "
            f"message_id {message_id}->{changed.message_id} "
            f"({len(message.payload_proof.signatures)} signatures)",
        )
        return [encode(changed, MESSAGE)]

    def stale(self, message: Message, unsigned: bool, payload: bytes) -> list[bytes]:
        """Answers a request with the last final result of an earlier one, relabelled with
        the request's id; the request's own answers (a refusal too) are dropped."""
        message_id = int(getattr(message, "message_id", 0))
        previous = self.last_final
        if (
            isinstance(message, QuantumResultMessage)
            and unsigned
            and self.final(message)
            and message_id not in self.substituted
        ):
            self.last_final = message
        if previous is None or previous.message_id == message_id:
            return [payload]
        if message_id in self.substituted:
            return []
        self.substituted.add(message_id)
        self.proxy.count(
            "stale",
            f"request {message_id} ({type(message).__name__} dropped) answered with the final "
            f"result of request {previous.message_id} (apex {previous.apex})",
        )
        return [encode(replace(previous, message_id=message_id), MESSAGE)]

    async def replay(self, payload: bytes, message: QuantumResultMessage) -> None:
        for copy in range(1, self.options.replay + 1):
            await asyncio.sleep(self.options.replay_delay_s)
            self.proxy.count("replay", f"finalized notification apex {message.apex} again ({copy})")
            await self.client.send(OP_BINARY, payload)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--upstream", required=True, help="the node, e.g. http://127.0.0.1:8000")
    parser.add_argument("--port", type=int, default=0, help="listening port (0: any free one)")
    parser.add_argument("--rewrite-status", type=int, nargs="?", const=500, default=None)
    parser.add_argument("--rewrite-id", choices=("zero", "stale"), default=None)
    parser.add_argument("--replay", type=int, nargs="?", const=3, default=0)
    parser.add_argument("--replay-delay", type=float, default=0.3)
    parser.add_argument("--forge-keys", action="store_true")
    parser.add_argument("--relay-to", default=None, help="another node's URL for /ws/")
    parser.add_argument("--max-connections", type=int, default=CONNECTIONS_MAX)
    return parser.parse_args(argv)


def options_of(args: argparse.Namespace) -> Options:
    def url(text: str) -> urllib.parse.SplitResult:
        parts = urllib.parse.urlsplit(text)
        if parts.scheme not in ("http", "ws") or not parts.hostname:
            raise SystemExit(f"mitm: not a plain http:// node URL: {text!r}")
        return parts

    if args.rewrite_status is not None and args.rewrite_status not in set(StatusCode):
        raise SystemExit(f"mitm: {args.rewrite_status} is not a status code")
    return Options(
        upstream=url(args.upstream),
        relay_to=url(args.relay_to) if args.relay_to else None,
        rewrite_status=args.rewrite_status,
        rewrite_id=args.rewrite_id,
        replay=max(0, min(args.replay, 100)),
        replay_delay_s=args.replay_delay,
        forge_keys=args.forge_keys,
        connections_max=args.max_connections,
    )


async def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    proxy = Proxy(options_of(args))
    server = await asyncio.start_server(proxy.handle, "127.0.0.1", args.port, limit=HEAD_BYTES_MAX)
    port = server.sockets[0].getsockname()[1]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    modes = [
        name
        for name in ("rewrite_status", "rewrite_id", "replay", "forge_keys", "relay_to")
        if getattr(args, name)
    ]
    log(f"pid {os.getpid()} on 127.0.0.1:{port} -> {args.upstream} modes {modes or ['pass']}")
    print(f"ready {port}", flush=True)
    started = time.monotonic()
    await stop.wait()
    server.close()
    for task in list(proxy.tasks):
        task.cancel()
    await asyncio.gather(*proxy.tasks, return_exceptions=True)
    await server.wait_closed()
    log(f"stopped after {time.monotonic() - started:.1f} s, tampered {proxy.counts}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
