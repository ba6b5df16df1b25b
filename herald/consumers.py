"""Alpha's herald endpoint (`/ws/herald/`): one connection per auditor.

The session is the shared one (`ClientSessionMixin`: challenge, signed frames, errors answered
and, on a failed handshake, the connection closed), with the auditors' own handshake check:
only the admitted auditor keys (`quanta.herald_admission`: the settings in force at the engine
and the last persisted ones), never alpha's own. Then quanta batches from the engine go
out to the auditor, and result (signature) batches and resend requests come in and go to the
engine. The engine also hears of the auditor's presence (`quanta.auditor_state`): its
handshake, each `StateUpdate` it reports, and its disconnection, so alpha can tell when a
majority of auditors cannot sign. Thin: every check is in `herald.core.protocol`.

An auditor's catchup (at its handshake, and whenever it asks with a `QuantaCursorRequest`) is
served here from the database, in pages, for the final quanta persisted; only the rest (what
is in alpha's memory, from below its oldest unfinal quantum) is asked of the engine. The
engine is sequential: streaming a long catchup there held every client request behind it, and
an auditor asking again and again from 0 could stall alpha. One catchup runs per connection;
one asked for meanwhile runs after it, from the lowest cursor asked.
"""

from __future__ import annotations

import asyncio

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from herald.core.protocol import check_auditor_handshake, check_auditor_message
from quanta import events
from quanta.consumers.client_session import NOT_INITIALIZED_CLOSE_CODE, ClientSessionMixin
from quanta.core.xdr.codec import encode
from quanta.core.xdr.schema import (
    MESSAGE,
    CatchupQuantaBatch,
    CatchupQuantaBatchRequest,
    QuantaBatch,
    QuantaCursorRequest,
    ResultsBatch,
    StateUpdate,
)
from quanta.dispatch import DirectDispatchMixin
from quanta.groups import ENGINE_CHANNEL, HERALD_GROUP
from quanta.herald_admission import admitted_auditor_keys
from quanta.node_status import status_read
from quanta.selectors import quanta_signed_after

REFUSED_CLOSE_CODE = 4403
"""Closes a connection whose handshake failed (not an auditor, or a bad answer)."""


class HeraldConsumer(ClientSessionMixin, DirectDispatchMixin, AsyncWebsocketConsumer):  # type: ignore[misc]
    """One auditor's connection to alpha."""

    handshake_failed_close_code = REFUSED_CLOSE_CODE
    link_ids: tuple[bytes, ...] = ()
    catchup_task: asyncio.Task[None] | None = None
    catchup_again: int | None = None
    """The lowest cursor asked for while a catchup ran: served once it is done."""

    CATCHUP_PAGE = 500

    async def connect(self) -> None:
        await self.open_session()

    async def disconnect(self, code: int) -> None:
        if self.catchup_task is not None:
            self.catchup_task.cancel()
        await self.channel_layer.group_discard(HERALD_GROUP, self.channel_name)
        if self.public_key is not None:
            gone = events.quanta_auditor_state(self.public_key, self.channel_name, False)
            await self.channel_layer.send(ENGINE_CHANNEL, gone)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if bytes_data is not None:  # Auditors speak XDR only; anything else is ignored.
            await self.receive_signed(bytes_data)

    async def handshake(self, data: bytes) -> None:
        """Binds the connection to an admitted auditor key; starts its catchup."""
        admitted = await database_sync_to_async(admitted_auditor_keys)()
        if admitted is None:
            await self.close(code=NOT_INITIALIZED_CLOSE_CODE)
            return
        hello = check_auditor_handshake(data, self.challenge, admitted, self.constellation_id)
        self.public_key = hello.public_key
        self.link_ids = hello.link_ids
        await self.channel_layer.group_add(HERALD_GROUP, self.channel_name)
        await self._report(int(hello.state), "connected")
        await self._catchup(hello.quanta_cursor)

    async def _report(self, state: int, reason: str) -> None:
        assert self.public_key is not None
        report = events.quanta_auditor_state(
            self.public_key, self.channel_name, True, state, reason
        )
        await self.channel_layer.send(ENGINE_CHANNEL, report)

    async def signed_frame(self, data: bytes) -> None:
        """Relays the auditor's signatures and catchup batches to the engine."""
        assert self.public_key is not None
        message = check_auditor_message(data, self.public_key, self.link_ids).message
        if isinstance(message, ResultsBatch):
            event = events.quanta_signatures(self.public_key, data)
            await self.channel_layer.send(ENGINE_CHANNEL, event)
        elif isinstance(message, StateUpdate):
            await self._report(int(message.state), str(message.reason))
        elif isinstance(message, QuantaCursorRequest):
            await self._catchup(int(message.quanta_cursor))
        elif isinstance(message, CatchupQuantaBatch):
            catchup = events.quanta_catchup(self.public_key, encode(message))
            await self.channel_layer.send(ENGINE_CHANNEL, catchup)

    async def _catchup(self, cursor: int) -> None:
        """Starts serving a catchup from `cursor`, or queues it behind the one running."""
        if self.catchup_task is not None and not self.catchup_task.done():
            waiting = self.catchup_again
            self.catchup_again = cursor if waiting is None else min(waiting, cursor)
            return
        self.catchup_task = asyncio.create_task(self._serve_catchups(cursor))

    async def _serve_catchups(self, cursor: int) -> None:
        while True:
            await self._catchup_once(cursor)
            if self.catchup_again is None:
                return
            cursor, self.catchup_again = self.catchup_again, None

    async def _catchup_once(self, cursor: int) -> None:
        """Sends the persisted quanta above `cursor` in pages (not while alpha is Rising: it
        must not look in step), then asks the engine for the rest."""
        # A Redis read: not on the one thread-sensitive thread every handshake's lookups need.
        status = await asyncio.to_thread(status_read)
        if status.state != "Rising":
            cursor = await self._send_persisted_after(cursor, int(status.apex))
        event = events.herald_catchup(cursor, self.channel_name)
        await self.channel_layer.send(ENGINE_CHANNEL, event)

    async def _send_persisted_after(self, cursor: int, alpha_apex: int) -> int:
        """Sends the persisted quanta above `cursor`; returns the apex sent up to."""
        while True:
            quanta = await database_sync_to_async(quanta_signed_after)(cursor, self.CATCHUP_PAGE)
            if not quanta:
                return cursor
            cursor = int(quanta[-1].quantum.apex)
            batch = QuantaBatch(0, tuple(quanta), max(alpha_apex, cursor))
            await self._send_message(encode(batch, MESSAGE))
            if len(quanta) < self.CATCHUP_PAGE:
                return cursor

    async def herald_rising(self, event: events.HeraldRising) -> None:
        """Asks the auditor for every quantum it holds above alpha's apex (alpha is Rising)."""
        request = CatchupQuantaBatchRequest(0, int(event["apex"]))
        await self._send_message(encode(request, MESSAGE))

    async def herald_quanta(self, event: events.HeraldQuanta) -> None:
        """Sends a quanta batch from the engine to the auditor."""
        await self._send_message(event["batch"])
