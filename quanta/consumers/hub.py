"""`GatewayHub`: one per web process, the single link between its client connections and the
engine.

Why it exists: one channel-layer message costs about eight Redis round trips (channels_redis
sends with ZREMRANGEBYSCORE, ZCOUNT, ZADD and EXPIRE, and receives with a clean-up script,
BZPOPMIN, ZADD and ZPOPMIN). One message per request and per result made the channel layer,
not the engine, the limit of a node. So the connections of a process share one hub:

- Requests: `submit` queues a verified request; one sender task sends everything queued
  during its previous send and a short linger as one `quanta.requests` message to the engine.
  Under load the batches grow by themselves.
- Admission: at most `inflight_max` requests of this process may wait at the engine, and at
  most `session_inflight_max` of one connection, so one connection cannot take the whole
  room from the others. Beyond that the client gets TooManyRequests at once ("the engine is
  busy"), so a stalled engine turns into refusals, never into silence or an unbounded queue.
  At most `key_sessions_max` connections may be bound to one key: every result for a key is
  copied to each of them. The engine credits each batch
  it took (`consumed`); a batch never credited (the engine crashed; the channel layer drops
  what waits longer than its expiry) stops counting after `expiry_s`, or as soon as a
  restarted engine announces itself (`hub.engine_started`).
- Answers: the engine sends each hub one `hub.replies` message per drain (answers to one
  connection, such as refusals, plus the credits) and every hub one `hub.accounts` message
  (results for account keys: acknowledgements, finalizations, notifications), which the hub
  hands to its connections bound to those keys, in order.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
import uuid
import weakref
from collections import Counter, OrderedDict
from typing import Any, Protocol, cast

from channels.exceptions import ChannelFull

from quanta import events, web_metrics
from quanta.groups import ENGINE_CHANNEL, GATEWAYS_GROUP
from quanta.web_metrics import RefusalCause

logger = logging.getLogger(__name__)

GROUP_RENEW_S = 30.0
"""How often the hub re-joins GATEWAYS_GROUP. The layer forgets members that did not re-join
for GATEWAYS_GROUP_EXPIRY_S (settings), so a web process that died without leaving stops
being sent results soon after."""


class Session(Protocol):
    """A client connection as the hub sees it."""

    async def deliver(self, message: bytes, signed: bool = True) -> None:
        """Sends one result (XDR of the Message union) to the client; `signed`: in a signed
        envelope, else alone (quanta.core.envelopes.may_be_signless)."""

    async def refused(self, envelope: bytes) -> None:
        """Answers a request the engine's channel had no room for (TooManyRequests)."""


class GatewayHub:
    """The process's request batcher, admission control and result dispatcher."""

    # One hub per event loop (a web process has one; tests may run several loops).
    _instances: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, GatewayHub] = (
        weakref.WeakKeyDictionary()
    )

    LINGER_S = 0.005
    """How long the sender gathers requests before a send: a little latency for far fewer
    channel messages when busy."""

    SESSION_INFLIGHT_MAX = 1_000
    KEY_SESSIONS_MAX = 16

    def __init__(
        self,
        layer: Any,
        inflight_max: int,
        expiry_s: float,
        *,
        session_inflight_max: int = SESSION_INFLIGHT_MAX,
        key_sessions_max: int = KEY_SESSIONS_MAX,
    ) -> None:
        """Uses `layer` (a Channels layer); call `start` before use."""
        self.layer = layer
        self.inflight_max = inflight_max
        self.session_inflight_max = session_inflight_max
        self.key_sessions_max = key_sessions_max
        self.expiry_s = expiry_s
        self.channel = ""
        self._session_ids = itertools.count(1)
        self._sessions: dict[int, Session] = {}
        self._by_key: dict[bytes, dict[int, Session]] = {}
        self._queue: list[tuple[int, bytes]] = []
        self._sender: asyncio.Task[None] | None = None
        self._batch_ids = itertools.count(1)
        # Batches at the engine, oldest first: batch id -> (sent at, requests per connection).
        self._inflight: OrderedDict[int, tuple[float, Counter[int]]] = OrderedDict()
        self._inflight_count = 0
        self._session_waiting: Counter[int] = Counter()
        self._tasks: list[asyncio.Task[None]] = []
        self._started: asyncio.Future[None] | None = None

    @classmethod
    async def for_process(
        cls, layer: Any, inflight_max: int, expiry_s: float, **limits: int
    ) -> GatewayHub:
        """Returns this process's hub, starting it on first use (`limits`: the keyword
        limits of the constructor)."""
        loop = asyncio.get_running_loop()
        hub = cls._instances.get(loop)
        if hub is None:
            # Registered before the first await, so concurrent first connections share it.
            hub = cls._instances[loop] = cls(layer, inflight_max, expiry_s, **limits)
            hub._started = asyncio.ensure_future(hub.start())
        assert hub._started is not None
        await asyncio.shield(hub._started)
        return hub

    async def start(self) -> None:
        """Takes a channel of this process and starts receiving the engine's answers."""
        # A general channel (no "!"), unique to this process: channels_redis receives it with
        # a plain pop, where a process-specific channel goes through the shared receive of all
        # of the process's channels (a lock, buffers and tasks per message).
        self.channel = f"gateway-hub.{uuid.uuid4().hex}"
        await self.layer.group_add(GATEWAYS_GROUP, self.channel)
        self._tasks = [
            asyncio.create_task(self._receive_forever()),
            asyncio.create_task(self._renew_group_forever()),
        ]

    # --- connections ------------------------------------------------------------------------

    def open(self, session: Session) -> int:
        """Registers a connection; returns its number, its reply address at the engine."""
        number = next(self._session_ids)
        self._sessions[number] = session
        return number

    def bind(self, number: int, public_key: bytes) -> bool:
        """Routes results for `public_key` to the connection (after its handshake); False if
        the key has `key_sessions_max` connections already (the connection stays unbound)."""
        bound = self._by_key.setdefault(public_key, {})
        if len(bound) >= self.key_sessions_max:
            return False
        bound[number] = self._sessions[number]
        return True

    def close(self, number: int, public_key: bytes | None) -> None:
        """Forgets a closed connection."""
        self._sessions.pop(number, None)
        self._session_waiting.pop(number, None)
        bound = self._by_key.get(public_key) if public_key is not None else None
        if bound is not None:
            bound.pop(number, None)
            if not bound:
                del self._by_key[public_key]  # type: ignore[arg-type]

    # --- requests ---------------------------------------------------------------------------

    def admit(self, number: int | None = None) -> bool:
        """Tells whether one more request (of connection `number`, if given) may go to the
        engine now."""
        self._forget_expired()
        if number is not None and self._session_waiting[number] >= self.session_inflight_max:
            return False
        return self.waiting < self.inflight_max

    def submit(self, number: int, envelope: bytes) -> None:
        """Queues an admitted, verified request of connection `number` for the engine."""
        self._queue.append((number, envelope))
        self._session_waiting[number] += 1
        if self._sender is None or self._sender.done():
            self._sender = asyncio.create_task(self._send_queued())

    @property
    def waiting(self) -> int:
        """Returns how many requests of this process are queued or at the engine."""
        return self._inflight_count + len(self._queue)

    async def _send_queued(self) -> None:
        # Whatever arrives while a send is in flight, or while the sender lingers, goes out
        # with the next one: under load a message carries many requests.
        while self._queue:
            await asyncio.sleep(self.LINGER_S)
            batch, self._queue = self._queue, []
            batch_id = next(self._batch_ids)
            self._inflight[batch_id] = (time.monotonic(), Counter(n for n, _ in batch))
            self._inflight_count += len(batch)
            event = events.quanta_requests(self.channel, batch_id, batch)
            try:
                await self.layer.send(ENGINE_CHANNEL, event)
            except ChannelFull:
                self._credit([batch_id])
                web_metrics.refused(RefusalCause.ENGINE_CHANNEL_FULL, len(batch))
                await self._refuse(batch)
            except Exception:
                logger.exception("sending %d requests to the engine failed", len(batch))
                self._credit([batch_id])
                web_metrics.refused(RefusalCause.ENGINE_BUSY, len(batch))
                await self._refuse(batch)

    async def _refuse(self, batch: list[tuple[int, bytes]]) -> None:
        for number, envelope in batch:
            session = self._sessions.get(number)
            if session is not None:
                await session.refused(envelope)

    def _credit(self, batch_ids: list[int]) -> None:
        for batch_id in batch_ids:
            entry = self._inflight.pop(batch_id, None)
            if entry is None:
                continue
            per_session = entry[1]
            self._inflight_count -= per_session.total()
            for number, count in per_session.items():
                left = self._session_waiting.get(number, 0) - count
                if left > 0:
                    self._session_waiting[number] = left
                else:
                    self._session_waiting.pop(number, None)

    def _forget_expired(self) -> None:
        horizon = time.monotonic() - self.expiry_s
        while self._inflight:
            batch_id, (sent_at, _) = next(iter(self._inflight.items()))
            if sent_at >= horizon:
                break
            logger.warning("the engine never took request batch %d; forgetting it", batch_id)
            self._credit([batch_id])

    # --- answers ----------------------------------------------------------------------------

    async def _receive_forever(self) -> None:
        while True:
            try:
                event = await self.layer.receive(self.channel)
                await self.dispatch(event)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("dispatching the engine's answers failed")

    async def dispatch(self, event: dict[str, Any]) -> None:
        """Hands an engine message's results to the connections they are for, in order."""
        kind = event.get("type")
        if kind == "hub.replies":
            replies = cast(events.HubReplies, event)
            consumed = list(replies.get("consumed", ()))
            self._measure_acknowledged(consumed)
            self._credit(consumed)
            for number, message in replies.get("replies", ()):
                session = self._sessions.get(number)
                if session is not None:
                    await session.deliver(message)
        elif kind == "hub.engine_started":
            # A restarted engine never credits what its predecessor took: free that room now
            # rather than after the expiry. (Batches still queued in the channel will be
            # credited by the new engine; crediting an id no longer counted does nothing.)
            self._inflight.clear()
            self._inflight_count = 0
            self._session_waiting.clear()
            for number, _ in self._queue:  # still queued here: still this process's
                self._session_waiting[number] += 1
        elif kind == "hub.accounts":
            accounts = cast(events.HubAccounts, event)
            for public_key, message, signed in accounts.get("messages", ()):
                for session in list(self._by_key.get(public_key, {}).values()):
                    await session.deliver(message, signed)
        else:
            logger.warning("the gateway hub got an unknown message type %r", kind)

    def _measure_acknowledged(self, batch_ids: list[int]) -> None:
        """Counts how long the requests of each credited batch waited at the engine: its
        credit travels with their acknowledgements (`quanta.node.outbox.send_batched`)."""
        now = time.monotonic()
        for batch_id in batch_ids:
            entry = self._inflight.get(batch_id)
            if entry is not None:
                web_metrics.acknowledged(int((now - entry[0]) * 1000), entry[1].total())

    async def _renew_group_forever(self) -> None:
        while True:
            await asyncio.sleep(GROUP_RENEW_S)
            try:
                await self.layer.group_add(GATEWAYS_GROUP, self.channel)
            except Exception:
                logger.exception("re-joining the gateways group failed; will retry")
