"""Attacks and fuzz frames against a running constellation (issue 17's abuse suite).

Shared by `bench/abuse.py` (every attack while honest clients trade, with figures) and
`tests/cluster/test_abuse.py` (the quick forms). Everything here talks to real processes over
loopback: authenticated sessions through the `websockets` library, and a minimal raw
WebSocket client (`RawSocket`) for what a library would refuse to send (a frame header that
announces more bytes than ever follow, a 2^62-byte length).

Attackers connect from their own loopback addresses (127.0.0.2 and up: Linux routes all of
127/8 to lo), so the per-address caps (docs/protocol.md) limit them, not the honest clients
on 127.0.0.1. Every attack returns a `Counter` of outcomes: `answer:<status>` for a
ResultMessage, `answer:<Type>` for another message, `close:<code>` for a close frame,
`http:<status>` for a refused WebSocket handshake or an HTTP answer, `silent` for a frame
nothing answered within the bound, `error:<Type>` for a connection that failed otherwise.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import os
import random
import struct
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from exchange.core.matching import TimeInForce
from exchange.core.orderbook import Side
from quanta.core.envelopes import envelope_bytes
from quanta.core.keys import KeyPair
from quanta.core.settings_json import settings_from_json
from quanta.core.settings_update import update_envelope
from quanta.core.xdr.codec import XdrError, decode_prefix, encode
from quanta.core.xdr.schema import (
    MESSAGE,
    AccountDataRequest,
    AuditorHandshakeResponse,
    ConstellationUpdate,
    HandshakeRequest,
    HandshakeResponse,
    Limits,
    NodeState,
    OrderRequest,
    PaymentRequest,
    QuantaCursorRequest,
    QuantumInfoRequest,
    QueryOrder,
    ResultMessage,
    Signature,
    WithdrawalRequest,
)
from tools.cluster import PG_ADMIN_URL, Cluster

GATEWAY, HERALD, CHRONICLER = "/ws/", "/ws/herald/", "/ws/chronicler/"
ROUTES = (GATEWAY, HERALD, CHRONICLER)
CLIENT_MESSAGE_MAX = Limits.ENVELOPE_BYTES_MAX + 1024
"""The client routes' message limit (docs/protocol.md: 64 KiB + 1 KiB)."""
HERALD_MESSAGE_MAX = Limits.BATCH_BYTES_MAX + 1024
ANSWER_TIMEOUT_S = 15.0
"""Bound on waiting for an answer: above the 10 s handshake deadline, so a connection the node
closes for not answering the challenge is seen closed, not silent."""
BATCH = 32
BROADCASTS = ("answer:QuantaBatch", "answer:ResultsBatch")
"""Fuzz frames sent before reading their answers (a connection's frames are handled in order)."""


def attacker_host(index: int) -> str:
    """Returns the loopback address of attacker `index` (127.0.0.2 and up, never the honest
    clients' 127.0.0.1)."""
    return f"127.0.{2 + index // 250}.{2 + index % 250}"


def ws_url(http_url: str, path: str) -> str:
    """Returns the WebSocket URL of a route of a node."""
    return http_url.replace("http://", "ws://") + path


def outcome(data: bytes | str) -> str:
    """Names a frame the node sent: a ResultMessage by its status, JSON by op and status,
    anything else by its message type."""
    if isinstance(data, str):
        try:
            answer = json.loads(data)
        except ValueError:
            return "answer:text"
        return f"answer:json:{answer.get('op')}:{answer.get('status', '')}".rstrip(":")
    try:
        message, _ = decode_prefix(MESSAGE, data)
    except XdrError:
        return "answer:undecodable"
    if isinstance(message, ResultMessage):
        return f"answer:{int(message.status)}"
    return f"answer:{type(message).__name__}"


# --- sessions --------------------------------------------------------------------------------


async def session(
    http_url: str,
    path: str,
    keypair: KeyPair | None,
    *,
    host: str | None = None,
    auditor_cursor: int | None = None,
    constellation_id: bytes | None = None,
) -> ClientConnection:
    """Opens a connection to a route; with `keypair`, answers the challenge (as an auditor at
    `auditor_cursor` if given) signed for `constellation_id` (by default the one the node's
    info serves) and, on the client routes, reads ClientConnectionSuccess."""
    if keypair is not None and constellation_id is None:
        constellation_id = await asyncio.to_thread(constellation_id_at, http_url)
    extra: dict[str, Any] = {"local_addr": (host, 0)} if host else {}
    ws = await connect(
        ws_url(http_url, path), max_size=None, open_timeout=10, ping_interval=None, **extra
    )
    try:
        hello, _ = decode_prefix(MESSAGE, await asyncio.wait_for(ws.recv(), 10))
        assert isinstance(hello, HandshakeRequest), hello
        if keypair is None:
            return ws
        assert constellation_id is not None
        if auditor_cursor is not None:
            answer: Any = AuditorHandshakeResponse(
                1, hello.handshake_data, auditor_cursor, auditor_cursor, NodeState.RUNNING
            )
            await ws.send(signed(answer, keypair, constellation_id))
            return ws
        await ws.send(signed(HandshakeResponse(1, hello.handshake_data), keypair, constellation_id))
        success = outcome(await asyncio.wait_for(ws.recv(), 10))
        assert success == "answer:ClientConnectionSuccess", success
        return ws
    except BaseException:
        await ws.close()
        raise


def signed(message: Any, keypair: KeyPair, constellation_id: bytes) -> bytes:
    """Returns the envelope of `message` signed by `keypair` for the constellation."""
    return envelope_bytes(encode(message, MESSAGE), keypair, constellation_id)


def constellation_id_at(http_url: str) -> bytes:
    """Returns the constellation id a node's info serves (every signature is bound to it)."""
    with urllib.request.urlopen(f"{http_url}/api/constellation/info", timeout=10) as response:
        found = json.loads(response.read()).get("constellation_id")
    if not isinstance(found, str):
        raise RuntimeError(f"{http_url} is not initialized: no constellation id to sign for")
    return bytes.fromhex(found)


# --- fuzz frames -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Frame:
    """One fuzz frame: what kind of mutation made it, and its bytes (or text)."""

    kind: str
    data: bytes | str


def templates(keypair: KeyPair, rng: random.Random) -> list[bytes]:
    """Returns the XDR of valid client messages of `keypair`, the seeds of the mutations."""
    me, other = keypair.public_key, rng.randbytes(32)
    nonce = time.time_ns() // 1000
    messages: list[Any] = [
        PaymentRequest(7, me, nonce, "USD", 1, other),
        OrderRequest(8, me, nonce, "XLM", Side.SELL, 1_000_000, 1000.0, TimeInForce(0)),
        AccountDataRequest(9, me, nonce),
        QuantumInfoRequest(10, me, 0, QueryOrder.DESC, 50),
        WithdrawalRequest(11, me, nonce, "local-vault", "USD", 1, "G" + "A" * 55, 0),
        HandshakeResponse(12, rng.randbytes(32)),
        QuantaCursorRequest(13, 0, 0),
    ]
    return [encode(message, MESSAGE) for message in messages]


PROBE_KEY = KeyPair.random()
"""Signs the probe that ends an unauthenticated fuzz connection."""
HUGE_WORDS = (0xFFFFFFFF, 0x7FFFFFFF, 0x80000000, 0x00010001, 0x01000000, 0xFFFFFFF0)


class FrameMaker:
    """Draws fuzz frames for one route: random bytes, bit flips of valid signed envelopes
    (re-signed too on the client routes, so a mutated request reaches the engine), truncations,
    huge XDR length prefixes, deep XDR nesting, and JSON text (deep nesting included)."""

    def __init__(
        self, rng: random.Random, keypair: KeyPair, constellation_id: bytes, *, resign: bool
    ) -> None:
        """Seeds the mutations with `keypair`'s valid messages for the constellation."""
        self.rng = rng
        self.keypair = keypair
        self.constellation_id = constellation_id
        self.resign = resign
        self.bodies = templates(keypair, rng)
        self.envelopes = [envelope_bytes(body, keypair, constellation_id) for body in self.bodies]
        self.kinds: list[Callable[[], Frame]] = [
            self.random_bytes,
            self.bit_flipped,
            self.bit_flipped,
            self.truncated,
            self.huge_length,
            self.deep_xdr,
            self.json_text,
        ]
        if resign:
            self.kinds += [self.bit_flipped_resigned, self.bit_flipped_resigned]

    def make(self) -> Frame:
        """Returns the next frame (mostly small; a deep JSON frame now and then)."""
        if self.rng.random() < 0.002:
            return self.json_deep()
        return self.rng.choice(self.kinds)()

    def random_bytes(self) -> Frame:
        size = self.rng.choice((0, 1, 3, 4, 8, 40, 100, 500, 4000, self.rng.randrange(65_000)))
        return Frame("random_bytes", self.rng.randbytes(size))

    def _flip(self, data: bytes) -> bytes:
        mutable = bytearray(data)
        for _ in range(self.rng.randint(1, 8)):
            mutable[self.rng.randrange(len(mutable))] ^= 1 << self.rng.randrange(8)
        return bytes(mutable)

    def bit_flipped(self) -> Frame:
        return Frame("bit_flipped", self._flip(self.rng.choice(self.envelopes)))

    def bit_flipped_resigned(self) -> Frame:
        body = self._flip(self.rng.choice(self.bodies))
        resigned = envelope_bytes(body, self.keypair, self.constellation_id)
        return Frame("bit_flipped_resigned", resigned)

    def truncated(self) -> Frame:
        envelope = self.rng.choice(self.envelopes)
        return Frame("truncated", envelope[: self.rng.randrange(len(envelope))])

    def huge_length(self) -> Frame:
        envelope = bytearray(self.rng.choice(self.envelopes))
        offset = 4 * self.rng.randrange(len(envelope) // 4)
        envelope[offset : offset + 4] = struct.pack(">I", self.rng.choice(HUGE_WORDS))
        return Frame("huge_length", bytes(envelope))

    def deep_xdr(self) -> Frame:
        # A message discriminant then thousands of "one more element" words: what nesting
        # looks like to an XDR reader.
        body = self.rng.choice(self.bodies)
        depth = self.rng.choice((100, 1000, 10_000))
        return Frame("deep_xdr", body[:4] + b"\x00\x00\x00\x01" * depth)

    def json_text(self) -> Frame:
        ops = ("markets", "subscribe", "unsubscribe", "nope", None, 1, [])
        request: Any = {
            "op": self.rng.choice(ops),
            "feed": self.rng.choice(("depth", "trades", "ticker", "frames", "x", 3)),
            "market": self.rng.choice(("XLM/USD", "XLM", "", None)),
            "period": self.rng.choice((None, "1m", "1h", "bogus", -1)),
        }
        text = json.dumps(self.rng.choice((request, [request], "op", 1e308, {"op": {}})))
        if self.rng.random() < 0.3:
            text = text[: self.rng.randrange(len(text) + 1)]
        return Frame("json_text", text)

    def json_deep(self) -> Frame:
        # 100 000 deep is above the client routes' limit (close 1009); 30 000 fits in it and
        # is far beyond the parser's recursion limit (a clean 400 expected on the chronicler).
        depth = self.rng.choice((30_000, 100_000))
        return Frame(f"json_deep_{depth}", "[" * depth + "]" * depth)


def answers_expected(path: str, frame: Frame) -> bool:
    """Tells whether the node answers the frame on an authenticated connection (the herald
    ignores text; every other frame gets one answer or a close)."""
    return not (path == HERALD and isinstance(frame.data, str))


@dataclass
class FuzzTally:
    """What a fuzz run sent and what came back."""

    sent: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    connections: int = 0

    def merge(self, other: FuzzTally) -> None:
        """Adds another tally's counts to this one."""
        self.sent.update(other.sent)
        self.outcomes.update(other.outcomes)
        self.connections += other.connections

    def as_json(self) -> dict[str, object]:
        """Returns the tally as JSON-ready counts."""
        return {
            "frames_sent": self.sent.total(),
            "connections": self.connections,
            "sent_by_kind": dict(self.sent.most_common()),
            "outcomes": dict(self.outcomes.most_common()),
        }


async def _read_answers(ws: ClientConnection, expected: int, tally: FuzzTally) -> bool:
    """Reads up to `expected` answers; counts them, a close, or the silent rest. Tells
    whether the connection is still open. Quanta batches alpha sends every auditor connection
    are not answers: they are counted as `broadcast:...`."""
    received = 0
    while received < expected:
        try:
            data = await asyncio.wait_for(ws.recv(), ANSWER_TIMEOUT_S)
        except ConnectionClosed:
            tally.outcomes[f"close:{ws.close_code}"] += 1
            return False
        except TimeoutError:
            tally.outcomes["silent"] += expected - received
            return True
        name = outcome(data)
        if name in BROADCASTS:
            tally.outcomes[name.replace("answer:", "broadcast:")] += 1
            continue
        tally.outcomes[name] += 1
        received += 1
    return True


async def _send_batch(ws: ClientConnection, frames: list[Frame], tally: FuzzTally) -> int:
    """Sends frames (stopping at a close); returns how many of them expect an answer."""
    expected = 0
    path = ws.request.path if ws.request is not None else ""
    for frame in frames:
        tally.sent[frame.kind] += 1
        try:
            await ws.send(frame.data)
        except ConnectionClosed:
            break
        expected += answers_expected(path, frame)
    return expected


async def fuzz_lane(
    http_url: str,
    path: str,
    count: int,
    maker: FrameMaker,
    *,
    host: str,
    keypair: KeyPair | None,
    auditor_cursor: int | None = None,
) -> FuzzTally:
    """Sends `count` fuzz frames to one route from one address: on an authenticated
    connection if `keypair` is given (reconnecting after every close), else each frame as
    the first message of a fresh connection (the handshake answer)."""
    tally = FuzzTally()
    left = count
    while left > 0:
        try:
            if keypair is None:
                left -= await _fuzz_unauthenticated(http_url, path, maker, host, tally)
                continue
            ws = await session(
                http_url,
                path,
                keypair,
                host=host,
                auditor_cursor=auditor_cursor,
                constellation_id=maker.constellation_id,
            )
        except InvalidStatus as refused:
            tally.outcomes[f"http:{refused.response.status_code}"] += 1
            left -= 1
            continue
        except (OSError, TimeoutError, ConnectionClosed) as error:
            tally.outcomes[f"error:{type(error).__name__}"] += 1
            left -= 1
            continue
        tally.connections += 1
        async with ws:
            while left > 0:
                frames = [maker.make() for _ in range(min(BATCH, left))]
                left -= len(frames)
                expected = await _send_batch(ws, frames, tally)
                if not await _read_answers(ws, expected, tally):
                    break
    return tally


async def _fuzz_unauthenticated(
    http_url: str, path: str, maker: FrameMaker, host: str, tally: FuzzTally
) -> int:
    """Sends one frame instead of the handshake answer, then a probe that fails the handshake
    for sure (a signed request that is not a handshake answer: the node answers and closes);
    counts what came back as `unauth:...` (the probe's answer included when the frame did not
    close the connection by itself)."""
    frame = maker.make()
    probe = signed(
        AccountDataRequest(1, PROBE_KEY.public_key, 1), PROBE_KEY, maker.constellation_id
    )
    async with await session(http_url, path, None, host=host) as ws:
        tally.connections += 1
        tally.sent[f"unauthenticated_{frame.kind}"] += 1
        try:
            await ws.send(frame.data)
            await ws.send(probe)
            while True:
                data = await asyncio.wait_for(ws.recv(), ANSWER_TIMEOUT_S)
                tally.outcomes[f"unauth:{outcome(data)}"] += 1
        except ConnectionClosed:
            tally.outcomes[f"unauth:close:{ws.close_code}"] += 1
        except TimeoutError:
            tally.outcomes["unauth:silent"] += 1
    return 1


async def fuzz(
    http_url: str,
    path: str,
    count: int,
    *,
    seed: int,
    lanes: int,
    first_host: int,
    auditor: KeyPair | None = None,
    auditor_cursor: int = 0,
    unauthenticated_share: float = 0.02,
) -> FuzzTally:
    """Fuzzes one route with `count` frames over `lanes` connections from their own
    addresses: on the client routes authenticated as random keys, on the herald as `auditor`
    (all frames unauthenticated without one); `unauthenticated_share` of the frames go as a
    fresh connection's first message."""
    plain = int(count * unauthenticated_share) if path != HERALD or auditor else count
    signed_count = count - plain
    constellation_id = await asyncio.to_thread(constellation_id_at, http_url)
    jobs = []
    for lane in range(lanes):
        rng = random.Random(seed * 1000 + lane)  # noqa: S311 (reproducible fuzz, not secrets)
        if path == HERALD:
            key = auditor
        else:
            key = KeyPair.random()
        maker = FrameMaker(rng, key or KeyPair.random(), constellation_id, resign=path != HERALD)
        host = attacker_host(first_host + lane)
        share = signed_count // lanes + (lane < signed_count % lanes)
        plain_share = plain // lanes + (lane < plain % lanes)
        if key is not None and share:
            jobs.append(
                fuzz_lane(
                    http_url,
                    path,
                    share,
                    maker,
                    host=host,
                    keypair=key,
                    auditor_cursor=auditor_cursor if path == HERALD else None,
                )
            )
        if plain_share:
            plain_maker = FrameMaker(
                random.Random(seed * 1000 + lanes + lane),  # noqa: S311
                KeyPair.random(),
                constellation_id,
                resign=False,
            )
            jobs.append(
                fuzz_lane(http_url, path, plain_share, plain_maker, host=host, keypair=None)
            )
    total = FuzzTally()
    for part in await asyncio.gather(*jobs):
        total.merge(part)
    return total


# --- the raw WebSocket client ----------------------------------------------------------------


class RawSocket:
    """A WebSocket connection spoken by hand: frames whose header may lie about their length."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Wraps an upgraded connection."""
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, http_url: str, path: str, host: str) -> RawSocket | int:
        """Opens the connection from `host`; returns it, or the HTTP status that refused it."""
        server_host, port = http_url.removeprefix("http://").split(":")
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(server_host, int(port), local_addr=(host, 0)), 10
        )
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            f"GET {path} HTTP/1.1\r\nHost: {server_host}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        status = int(head.split(b" ", 2)[1])
        if status != 101:
            writer.close()
            return status
        return cls(reader, writer)

    def send_header(self, length: int, opcode: int = 2) -> None:
        """Writes a final frame's header announcing `length` payload bytes (mask of zeros, so
        the payload goes as it is)."""
        if length < 126:
            size = bytes([0x80 | length])
        elif length < 1 << 16:
            size = bytes([0x80 | 126]) + struct.pack(">H", length)
        else:
            size = bytes([0x80 | 127]) + struct.pack(">Q", length)
        self.writer.write(bytes([0x80 | opcode]) + size + b"\0\0\0\0")

    def send_payload(self, data: bytes) -> None:
        """Writes payload bytes of the current frame."""
        self.writer.write(data)

    async def close_code(self, timeout_s: float = ANSWER_TIMEOUT_S) -> str:
        """Reads server frames until a close frame; returns `close:<code>`, `eof` or
        `timeout`."""
        try:
            while True:
                head = await asyncio.wait_for(self.reader.readexactly(2), timeout_s)
                length = head[1] & 0x7F
                if length == 126:
                    length = struct.unpack(">H", await self.reader.readexactly(2))[0]
                elif length == 127:
                    length = struct.unpack(">Q", await self.reader.readexactly(8))[0]
                payload = await asyncio.wait_for(self.reader.readexactly(length), timeout_s)
                if head[0] & 0x0F == 8:
                    code = struct.unpack(">H", payload[:2])[0] if len(payload) >= 2 else 1005
                    return f"close:{code}"
        except (asyncio.IncompleteReadError, ConnectionError):
            return "eof"
        except TimeoutError:
            return "timeout"
        finally:
            self.writer.close()


# --- attacks ---------------------------------------------------------------------------------


async def held_frames(
    http_url: str, deadline: float, connections: int, first_host: int
) -> Counter[str]:
    """Attack (a): `connections` unauthenticated `/ws/` connections, each holding a frame of
    the route's largest size that never completes, reopened whenever the node closes one."""
    tally: Counter[str] = Counter()

    async def hold(index: int) -> None:
        host = attacker_host(first_host + index // 60)
        while time.monotonic() < deadline:
            tally["sent"] += 1
            try:
                opened = await RawSocket.open(http_url, GATEWAY, host)
            except (OSError, TimeoutError) as error:
                tally[f"error:{type(error).__name__}"] += 1
                continue
            if isinstance(opened, int):
                tally[f"http:{opened}"] += 1
                continue
            opened.send_header(CLIENT_MESSAGE_MAX)
            opened.send_payload(bytes(CLIENT_MESSAGE_MAX - 1))
            tally[await opened.close_code(max(1.0, deadline - time.monotonic() + 12))] += 1

    await asyncio.gather(*(hold(index) for index in range(connections)))
    return tally


async def connection_flood(http_url: str, deadline: float, host_index: int) -> Counter[str]:
    """Attack (b): one address opens `/ws/` connections as fast as it can and holds every one
    it gets (never answering the challenge)."""
    tally: Counter[str] = Counter()
    held: list[RawSocket] = []
    host = attacker_host(host_index)

    async def one() -> None:
        tally["sent"] += 1
        try:
            opened = await RawSocket.open(http_url, GATEWAY, host)
        except (OSError, TimeoutError) as error:
            tally[f"error:{type(error).__name__}"] += 1
            return
        if isinstance(opened, int):
            tally[f"http:{opened}"] += 1
        else:
            tally["http:101"] += 1
            held.append(opened)

    while time.monotonic() < deadline:
        await asyncio.gather(*(one() for _ in range(50)))
    for raw in held:
        raw.writer.close()
    return tally


async def oversized(http_url: str, deadline: float, first_host: int) -> Counter[str]:
    """Attack (c): on each route, frames announcing more than the route's limit (just above
    it, and 2^62 bytes), a few real bytes sent; counts the close codes per route."""
    tally: Counter[str] = Counter()
    index = 0
    while time.monotonic() < deadline:
        for path, limit in ((GATEWAY, CLIENT_MESSAGE_MAX), (CHRONICLER, CLIENT_MESSAGE_MAX),
                            (HERALD, HERALD_MESSAGE_MAX)):  # fmt: skip
            for length in (limit + 1, 1 << 62):
                index += 1
                tally[f"{path}:sent"] += 1
                try:
                    opened = await RawSocket.open(
                        http_url, path, attacker_host(first_host + index % 8)
                    )
                except (OSError, TimeoutError) as error:
                    tally[f"{path}:error:{type(error).__name__}"] += 1
                    continue
                if isinstance(opened, int):
                    tally[f"{path}:http:{opened}"] += 1
                    continue
                opened.send_header(length)
                opened.send_payload(bytes(64 * 1024))
                tally[f"{path}:{await opened.close_code()}"] += 1
    return tally


def http_status(request: urllib.request.Request | str) -> str:
    """Returns `http:<status>` of one request (the body is read and dropped)."""
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            response.read()
            return f"http:{response.status}"
    except urllib.error.HTTPError as error:
        error.read()
        return f"http:{error.code}"
    except (urllib.error.URLError, OSError) as error:
        return f"error:{type(error).__name__}"


def init_and_update_bodies(cluster: Cluster, fake_signatures: int) -> tuple[bytes, bytes]:
    """Returns a re-sent init (the genesis settings, validly signed by every node) and an
    update of version + 1 carrying `fake_signatures` signatures of listed keys that do not
    verify."""
    from quanta.core.testing import default_settings, settings_quantum

    keys = [node.keypair for node in cluster.nodes]
    genesis = default_settings(keys, addresses=[node.url for node in cluster.nodes])
    init = encode(settings_quantum(genesis, keys).update)
    current = settings_from_json(cluster.info())
    settings = type(current)(**{**_fields(current), "version": current.version + 1})
    update = ConstellationUpdate(int(time.time()), settings)
    signatures = [
        Signature(keys[i % len(keys)].public_key, os.urandom(64)) for i in range(fake_signatures)
    ]
    return init, encode(update_envelope(update, signatures))


def _fields(record: Any) -> dict[str, Any]:
    return {name: getattr(record, name) for name in record.__dataclass_fields__}


def post_request(url: str, envelope: bytes) -> urllib.request.Request:
    """Returns a POST of an envelope as the JSON the endpoints take."""
    body = json.dumps({"envelope": base64.b64encode(envelope).decode()}).encode()
    return urllib.request.Request(
        url, data=body, headers={"Content-Type": "application/json"}, method="POST"
    )


def http_loop(
    deadline: float, make: Callable[[], urllib.request.Request | str], threads: int
) -> Counter[str]:
    """Sends `make()`'s requests from `threads` threads, each one after the other, until
    `deadline` (monotonic); counts the statuses."""

    def worker() -> Counter[str]:
        counts: Counter[str] = Counter()
        while time.monotonic() < deadline:
            counts[http_status(make())] += 1
        return counts

    total: Counter[str] = Counter()
    with ThreadPoolExecutor(threads) as pool:
        for counts in pool.map(lambda _: worker(), range(threads)):
            total.update(counts)
    return total


def init_update_loop(cluster: Cluster, deadline: float, fake_signatures: int = 200) -> Counter[str]:
    """Attack (d): re-sent init and many-signature updates, alternately, until `deadline`."""
    init, update = init_and_update_bodies(cluster, fake_signatures)
    alpha = cluster.alpha.url
    turn = itertools.count()

    def make() -> urllib.request.Request:
        if next(turn) % 2:
            return post_request(f"{alpha}/api/constellation/update", update)
        return post_request(f"{alpha}/api/constellation/init", init)

    return http_loop(deadline, make, 8)


def nodes_hammer(cluster: Cluster, deadline: float) -> Counter[str]:
    """Attack (e): `GET /api/constellation/nodes` from 16 threads until `deadline`."""
    url = f"{cluster.alpha.url}/api/constellation/nodes"
    return http_loop(deadline, lambda: url, 16)


async def account_data_flood(
    http_url: str, attacker: KeyPair, deadline: float, window: int, host: str
) -> Counter[str]:
    """Attack (f): signed AccountDataRequests from a registered account, `window` in flight,
    until `deadline`; counts the answers."""
    tally: Counter[str] = Counter()
    constellation_id = await asyncio.to_thread(constellation_id_at, http_url)
    ws = await session(http_url, GATEWAY, attacker, host=host, constellation_id=constellation_id)
    async with ws:
        nonce = time.time_ns() // 1000
        while time.monotonic() < deadline:
            for _ in range(window):
                nonce += 1
                request = AccountDataRequest(nonce % (1 << 62), attacker.public_key, nonce)
                await ws.send(signed(request, attacker, constellation_id))
            tally["sent"] += window
            for _ in range(window):
                tally[outcome(await asyncio.wait_for(ws.recv(), ANSWER_TIMEOUT_S))] += 1
    return tally


async def history_loop(
    http_url: str, path: str, account: KeyPair, deadline: float, host: str, limit: int = 1000
) -> Counter[str]:
    """Attack (g): `limit`-item history pages (DESC from the top) in a loop, one in flight,
    on the gateway or the chronicler, until `deadline`."""
    tally: Counter[str] = Counter()
    constellation_id = await asyncio.to_thread(constellation_id_at, http_url)
    ws = await session(http_url, path, account, host=host, constellation_id=constellation_id)
    async with ws:
        message_id = 1
        while time.monotonic() < deadline:
            message_id += 1
            request = QuantumInfoRequest(message_id, account.public_key, 0, QueryOrder.DESC, limit)
            await ws.send(signed(request, account, constellation_id))
            tally["sent"] += 1
            tally[await _answer_to(ws, message_id)] += 1
    return tally


async def _answer_to(ws: ClientConnection, message_id: int) -> str:
    """Reads frames until the answer to `message_id` (results of the account's quanta for its
    other connections may come between)."""
    while True:
        data = await asyncio.wait_for(ws.recv(), ANSWER_TIMEOUT_S)
        assert isinstance(data, bytes)
        message, _ = decode_prefix(MESSAGE, data)
        if int(getattr(message, "message_id", -1)) == message_id:
            return outcome(data)


async def cursor_zero_loop(
    http_url: str, auditor: KeyPair, deadline: float, host: str, in_flight: int = 4
) -> Counter[str]:
    """Attack (i): a second connection with an auditor's key asks alpha for every quantum
    from cursor 0 again and again (`in_flight` requests between reads); counts the requests
    and the bytes alpha streamed back."""
    tally: Counter[str] = Counter()
    constellation_id = await asyncio.to_thread(constellation_id_at, http_url)
    ws = await session(
        http_url, HERALD, auditor, host=host, auditor_cursor=0, constellation_id=constellation_id
    )
    async with ws:
        reader = asyncio.create_task(_drain(ws, tally))
        try:
            while time.monotonic() < deadline and not reader.done():
                for _ in range(in_flight):
                    await ws.send(signed(QuantaCursorRequest(0, 0, 0), auditor, constellation_id))
                tally["sent"] += in_flight
                await asyncio.sleep(0.05)  # Pacing the attack, not synchronizing.
        finally:
            reader.cancel()
    return tally


async def _drain(ws: ClientConnection, tally: Counter[str]) -> None:
    try:
        async for data in ws:
            tally["frames_received"] += 1
            tally["bytes_received"] += len(data)
    except ConnectionClosed:
        pass
    tally[f"close:{ws.close_code}"] += 1


def pg_connections(cluster: Cluster) -> dict[str, int]:
    """Returns PostgreSQL's connections per node database (and the shared ledger)."""
    names = {node.database: f"node{node.index}" for node in cluster.nodes}
    names[cluster.ledger_database] = "ledger"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as connection:
        rows = connection.execute(
            "SELECT datname, count(*) FROM pg_stat_activity WHERE datname = ANY(%s)"
            " GROUP BY datname",
            (list(names),),
        ).fetchall()
    found = {names[name]: int(count) for name, count in rows}
    return {label: found.get(label, 0) for label in names.values()}


def tracebacks(workdir: Path) -> dict[str, int]:
    """Returns how many "Traceback" lines each node log holds."""
    return {
        log.name: log.read_text(errors="replace").count("Traceback")
        for log in sorted(workdir.glob("node*.log"))
    }


def traceback_excerpts(workdir: Path, lines_after: int = 25) -> dict[str, list[str]]:
    """Returns each traceback of the node logs with the lines that follow it."""
    found: dict[str, list[str]] = {}
    for log in sorted(workdir.glob("node*.log")):
        text = log.read_text(errors="replace").splitlines()
        for index, line in enumerate(text):
            if "Traceback" in line:
                excerpt = "\n".join(text[max(0, index - 2) : index + lines_after])
                found.setdefault(log.name, []).append(excerpt)
    return found


def dead_processes(cluster: Cluster) -> dict[str, int]:
    """Returns the exit code of every node process that is no longer running."""
    return {
        f"node{node.index}-{name}": code
        for node in cluster.nodes
        for name, process in node.processes.items()
        if (code := process.poll()) is not None
    }
