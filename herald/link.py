"""The auditor's herald link: one outgoing WebSocket to alpha, kept open with backoff.

It answers alpha's handshake with this node's key and cursor, once it checked that alpha
signed it (`check_alpha_handshake`, against `alpha()`: the settings' alpha key and
constellation id, else the pinned ones; a refusal is logged at ERROR and the link tries
again), hands every quanta batch to the node's own engine (channel `quanta`), and sends back
what the engine answers: result (signature) batches, state reports, and resend requests when
the engine saw a gap. A rising alpha's catchup request it answers from the database, once
the engine persisted every quantum it signed (its signatures leave before its rows do).
When the connection drops (or WebSocket pings go unanswered for `PING_TIMEOUT_S`) it tells
the engine at once (`quanta.link_down`), so the node does not stay Ready without alpha.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from typing import Any

from channels.db import database_sync_to_async
from django.db import DatabaseError
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, WebSocketException

from herald.consumers import REFUSED_CLOSE_CODE
from herald.core.protocol import AlphaExpected, check_alpha_handshake
from quanta import events
from quanta.consumers.client_session import HANDSHAKE_TIMEOUT_CLOSE_CODE, NOT_INITIALIZED_CLOSE_CODE
from quanta.core.envelopes import GatewayError, envelope_bytes
from quanta.core.keys import KeyPair
from quanta.core.signatures import NO_CONSTELLATION
from quanta.core.xdr.codec import decode, encode
from quanta.core.xdr.schema import (
    MESSAGE,
    AuditorHandshakeResponse,
    CatchupQuantaBatch,
    CatchupQuantaBatchRequest,
    HandshakeRequest,
    MessageEnvelope,
    MessageType,
    NodeState,
    QuantaCursorRequest,
)
from quanta.groups import ENGINE_CHANNEL
from quanta.node_status import status_read
from quanta.selectors import constellation_id, quanta_signed_after

logger = logging.getLogger(__name__)

CATCHUP_PAGE = 500
BACKOFF_S_MIN = 0.2
BACKOFF_S_MAX = 5.0
REFUSED_BACKOFF_S_MAX = 1.0
"""The longest wait after a session alpha opened but closed at the handshake (not
initialized yet): it may be initialized any moment, and then the auditors should be up
within a second, not five."""
FRAME_BYTES_MAX = 32 * 1024 * 1024
PING_INTERVAL_S = 2.0
PING_TIMEOUT_S = 5.0
"""A connection whose pings go unanswered this long is dead (a peer gone without a close)."""
ALPHA_CLOSE_MEANINGS = {
    NOT_INITIALIZED_CLOSE_CODE: "alpha is not initialized yet (it holds no settings)",
    REFUSED_CLOSE_CODE: "alpha refused this node's handshake (is its key one of the auditors?)",
    HANDSHAKE_TIMEOUT_CLOSE_CODE: "alpha did not get this node's handshake in time",
}
"""What alpha's herald endpoint means by the close codes it ends a session with (it sends
no reason: daphne drops it)."""
FOLLOW_CHECK_S = 2.0
"""How often a connected link checks whether a replacement named another alpha."""
ENGINE_FLUSH_WAIT_S = 5.0
"""How long a rising alpha's catchup waits for the engine to persist what it signed."""


def link_failure(error: Exception) -> tuple[int, str]:
    """Returns the log level and the words for why a link ended or was refused: alpha's close
    code in words when it is one of its own (an alpha not yet initialized, which every
    auditor meets while the constellation starts, only at INFO), else the error itself."""
    if isinstance(error, ConnectionClosed) and error.rcvd is not None:
        code = error.rcvd.code
        meaning = ALPHA_CLOSE_MEANINGS.get(code)
        if meaning is not None:
            level = logging.INFO if code == NOT_INITIALIZED_CLOSE_CODE else logging.WARNING
            return level, f"{meaning}, close code {code}"
    return logging.WARNING, str(error) or type(error).__name__


def tls_context(url: str, ca_file: str) -> ssl.SSLContext | None:
    """Returns the TLS context of a wss:// link (certificate and host name checked, against
    `ca_file`'s CAs if given), None for ws:// (loopback only, README "Configuration")."""
    if not url.startswith("wss://"):
        return None
    return ssl.create_default_context(cafile=ca_file or None)


class HeraldLink:
    """Keeps this auditor connected to alpha."""

    def __init__(
        self,
        url: str,
        keypair: KeyPair,
        layer: Any,
        cursor: Callable[[], int],
        alpha: Callable[[], AlphaExpected],
        ca_file: str = "",
        follow: Callable[[], str | None] | None = None,
    ) -> None:
        """`cursor()` returns this node's current apex (what it asks alpha to send after);
        `alpha()` what alpha's handshake must show (its key, the constellation id it signs
        under; either None while not known), each called in a thread: they may read the
        database. `ca_file`: the CA certificates a wss:// URL's certificate must chain to
        ("" = the system's). `follow()`, called (in the database thread) before each
        connection, returns the herald URL of an alpha that replaced the one `url` names (None:
        `url`)."""
        self.url = url
        self.follow = follow
        self._ca_file = ca_file
        self.keypair = keypair
        self.layer = layer
        self.cursor = cursor
        self.alpha = alpha
        self._unpinned_warned = False
        self._constellation_id: bytes | None = None
        # Whether alpha took this session's handshake (sent a frame after it): `run_forever`
        # resets its backoff only then.
        self._admitted = False
        self._tls = tls_context(url, ca_file)

    async def _signing_id(self) -> bytes:
        """Returns the id this node signs its frames under: its constellation's once it holds
        the genesis settings (then kept: it never changes), `NO_CONSTELLATION` before."""
        if self._constellation_id is None:
            self._constellation_id = await database_sync_to_async(constellation_id)()
        return self._constellation_id or NO_CONSTELLATION

    async def _envelope(self, message: bytes) -> bytes:
        return envelope_bytes(message, self.keypair, await self._signing_id())

    async def run_forever(self) -> None:
        """Connects, relays until the connection drops, and reconnects with backoff."""
        backoff = BACKOFF_S_MIN
        while True:
            self._admitted = opened = False
            failure: Exception | None = None
            try:
                await self._follow_alpha()
                async with connect(
                    self.url,
                    max_size=FRAME_BYTES_MAX,
                    open_timeout=10,
                    ping_interval=PING_INTERVAL_S,
                    ping_timeout=PING_TIMEOUT_S,
                    ssl=self._tls,
                ) as ws:
                    opened = True
                    await self._session(ws)
            except (OSError, WebSocketException, TimeoutError, DatabaseError) as error:
                # A database error too (a full connection pool): the link retries rather than
                # end its process, which nothing would restart.
                failure = error
            # Only a session alpha took resets the backoff: one that opened and was closed at
            # the handshake (4450, alpha not initialized yet; a refused key) keeps backing off
            # (to REFUSED_BACKOFF_S_MAX), instead of reconnecting five times a second.
            wait = BACKOFF_S_MIN if self._admitted else backoff
            if failure is not None:
                level, why = link_failure(failure)
                logger.log(level, "herald link to %s: %s; retrying in %.1f s", self.url, why, wait)
                await self.layer.send(
                    ENGINE_CHANNEL, events.quanta_link_down(f"herald link: {why}")
                )
            await asyncio.sleep(wait)
            backoff = min(wait * 2, REFUSED_BACKOFF_S_MAX if opened else BACKOFF_S_MAX)

    async def _follow_alpha(self) -> None:
        """Moves the link to the alpha a replacement named (docs/admin.md, "Replacing
        alpha"), if one did since the last connection."""
        if self.follow is None:
            return
        try:
            url = await database_sync_to_async(self.follow)()
        except DatabaseError as error:  # the current URL is tried; the next attempt asks again
            logger.warning("herald link: cannot read which alpha to follow: %s", error)
            return
        if url is not None and url != self.url:
            logger.warning("herald link follows the new alpha at %s (was %s)", url, self.url)
            self.url = url
            self._tls = tls_context(url, self._ca_file)

    async def _until_alpha_replaced(self) -> None:
        """Ends the session once a replacement names another alpha (checked every
        FOLLOW_CHECK_S): the link then reconnects to it (`_follow_alpha`)."""
        if self.follow is None:
            await asyncio.Event().wait()  # never
        assert self.follow is not None
        while True:
            await asyncio.sleep(FOLLOW_CHECK_S)
            try:
                url = await database_sync_to_async(self.follow)()
            except DatabaseError:
                continue
            if url is not None and url != self.url:
                raise WebSocketException(f"alpha replaced: the new one is at {url}")

    async def _alpha_hello(self, ws: ClientConnection) -> HandshakeRequest:
        """Returns alpha's challenge once its signature checked out; raises otherwise."""
        frame = await ws.recv()
        if not isinstance(frame, bytes):
            raise WebSocketException("alpha did not start with a handshake")
        alpha = await asyncio.to_thread(self.alpha)
        if None in (alpha.key, alpha.constellation_id) and not self._unpinned_warned:
            self._unpinned_warned = True
            logger.warning(
                "no settings yet and CONSTELLATION_ALPHA_KEY or CONSTELLATION_GENESIS_ID unset: "
                "alpha's handshake cannot be fully checked (this node takes only a genesis its "
                "own key signed anyway)"
            )
        try:
            return check_alpha_handshake(frame, alpha)
        except GatewayError as error:
            logger.error("herald link to %s: alpha's handshake refused: %s", self.url, error)
            raise WebSocketException(f"alpha's handshake refused: {error}") from None

    async def _session(self, ws: ClientConnection) -> None:
        hello = await self._alpha_hello(ws)
        apex = await asyncio.to_thread(self.cursor)
        state = NodeState[(await asyncio.to_thread(status_read)).state.upper()]
        answer = AuditorHandshakeResponse(1, hello.handshake_data, apex, apex, state)
        await ws.send(await self._envelope(encode(answer, MESSAGE)))
        logger.info("herald link up at apex %d", apex)
        reply = await self.layer.new_channel()
        tasks = [
            asyncio.create_task(self._from_alpha(ws, reply)),
            asyncio.create_task(self._to_alpha(ws, reply)),
            asyncio.create_task(self._until_alpha_replaced()),
        ]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                task.result()
        finally:
            for task in tasks:
                task.cancel()

    async def _from_alpha(self, ws: ClientConnection, reply: str) -> None:
        async for frame in ws:
            if not isinstance(frame, bytes):
                continue
            self._admitted = True  # Alpha sends its first batch once it took the handshake.
            # Quanta batches go to the engine undecoded (it decodes them anyway): the union's
            # type, the first 4 bytes, is all this relay needs to look at.
            if int.from_bytes(frame[:4], "big") == MessageType.CATCHUP_QUANTA_BATCH_REQUEST:
                message = decode(MessageEnvelope, frame).message
                assert isinstance(message, CatchupQuantaBatchRequest)
                await self._send_catchup(ws, int(message.last_known_apex))
            else:
                await self.layer.send(ENGINE_CHANNEL, events.quanta_batch(frame, reply))
        raise WebSocketException("alpha closed the connection")

    async def _send_catchup(self, ws: ClientConnection, apex: int) -> None:
        """Sends a rising alpha every quantum this node holds above `apex`, in pages, once its
        engine persisted every quantum it signed (`quanta.flush_ask`; without an answer within
        ENGINE_FLUSH_WAIT_S the link drops and alpha asks again after the next handshake)."""
        flushed = await self.layer.new_channel()
        await self.layer.send(ENGINE_CHANNEL, events.quanta_flush_ask(flushed))
        async with asyncio.timeout(ENGINE_FLUSH_WAIT_S):
            await self.layer.receive(flushed)
        while True:
            quanta = await database_sync_to_async(quanta_signed_after)(apex, CATCHUP_PAGE)
            has_more = len(quanta) == CATCHUP_PAGE
            batch = CatchupQuantaBatch(0, tuple(quanta), has_more)
            await ws.send(await self._envelope(encode(batch, MESSAGE)))
            if not has_more:
                return
            apex = quanta[-1].quantum.apex

    async def _to_alpha(self, ws: ClientConnection, reply: str) -> None:
        while True:
            event: events.HeraldResults | events.HeraldResend = await self.layer.receive(reply)
            if event["type"] == "herald.results":
                await ws.send(await self._envelope(event["message"]))
            elif event["type"] == "herald.resend":
                request = QuantaCursorRequest(0, int(event["apex"]), int(event["apex"]))
                await ws.send(await self._envelope(encode(request, MESSAGE)))
