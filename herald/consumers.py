"""Alpha's herald endpoint (`/ws/herald/`): one connection per auditor.

The session is the shared one (`ClientSessionMixin`: challenge, signed frames, errors answered
and, on a failed handshake, the connection closed), with the auditors' own handshake check:
only the admitted auditor keys (`quanta.herald_admission`: the settings in force at the engine
and the last persisted ones), never alpha's own. Then quanta batches from the engine go
out to the auditor, and result (signature) batches and resend requests come in and go to the
engine. The engine also hears of the auditor's presence (`quanta.auditor_state`): its
handshake, each `StateUpdate` it reports, and its disconnection, so alpha can tell when a
majority of auditors cannot sign. Thin: every check is in `herald.core.protocol`.
"""

from __future__ import annotations

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
    QuantaCursorRequest,
    ResultsBatch,
    StateUpdate,
)
from quanta.dispatch import DirectDispatchMixin
from quanta.groups import ENGINE_CHANNEL, HERALD_GROUP
from quanta.herald_admission import admitted_auditor_keys

REFUSED_CLOSE_CODE = 4403
"""Closes a connection whose handshake failed (not an auditor, or a bad answer)."""


class HeraldConsumer(ClientSessionMixin, DirectDispatchMixin, AsyncWebsocketConsumer):  # type: ignore[misc]
    """One auditor's connection to alpha."""

    handshake_failed_close_code = REFUSED_CLOSE_CODE
    link_ids: tuple[bytes, ...] = ()

    async def connect(self) -> None:
        await self.open_session()

    async def disconnect(self, code: int) -> None:
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
        event = events.herald_catchup(cursor, self.channel_name)
        await self.channel_layer.send(ENGINE_CHANNEL, event)

    async def herald_rising(self, event: events.HeraldRising) -> None:
        """Asks the auditor for every quantum it holds above alpha's apex (alpha is Rising)."""
        request = CatchupQuantaBatchRequest(0, int(event["apex"]))
        await self._send_message(encode(request, MESSAGE))

    async def herald_quanta(self, event: events.HeraldQuanta) -> None:
        """Sends a quanta batch from the engine to the auditor."""
        await self._send_message(event["batch"])
