"""Alpha's herald endpoint (`/ws/herald/`): one connection per auditor.

Handshake (only keys listed among the auditors, never alpha's own), then: quanta batches from
the engine go out to the auditor, result (signature) batches and resend requests come in and go
to the engine. Thin: every check is in `herald.core.protocol`.
"""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from herald.core.protocol import check_auditor_handshake, check_auditor_message
from quanta import worker
from quanta.core.envelopes import GatewayError, envelope_bytes
from quanta.core.keys import KeyPair
from quanta.core.results import result_message
from quanta.core.xdr.codec import encode
from quanta.core.xdr.schema import (
    MESSAGE,
    CatchupQuantaBatch,
    CatchupQuantaBatchRequest,
    HandshakeRequest,
    QuantaCursorRequest,
    ResultsBatch,
)
from quanta.dispatch import DirectDispatchMixin
from quanta.groups import ENGINE_CHANNEL, HERALD_GROUP
from quanta.selectors import settings_current


class HeraldConsumer(DirectDispatchMixin, AsyncWebsocketConsumer):
    """One auditor's connection to alpha."""

    async def connect(self) -> None:
        self.keypair: KeyPair = await asyncio.to_thread(worker.node_keypair)
        self.challenge = secrets.token_bytes(32)
        self.auditor_key: bytes | None = None
        self.auditor_index = -1
        await self.accept()
        await self._send_message(encode(HandshakeRequest(0, self.challenge), MESSAGE))

    async def disconnect(self, code: int) -> None:
        await self.channel_layer.group_discard(HERALD_GROUP, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        try:
            if bytes_data is None:
                return
            if self.auditor_key is None:
                await self._handshake(bytes_data)
            else:
                await self._message(bytes_data)
        except GatewayError as error:
            await self._send_message(result_message(error.message_id, error.status, error.message))
            if error.close:
                await self.close(code=4403)

    async def _handshake(self, data: bytes) -> None:
        settings = await database_sync_to_async(settings_current)()
        if settings is None:
            await self.close(code=4450)
            return
        keys = tuple(a.public_key for a in settings.auditors)
        hello = check_auditor_handshake(data, self.challenge, keys, keys.index(settings.alpha))
        self.auditor_key = keys[hello.auditor_index]
        self.auditor_index = hello.auditor_index
        await self.channel_layer.group_add(HERALD_GROUP, self.channel_name)
        await self._catchup(hello.quanta_cursor)

    async def _message(self, data: bytes) -> None:
        assert self.auditor_key is not None
        envelope = check_auditor_message(data, self.auditor_key)
        message = envelope.message
        if isinstance(message, ResultsBatch):
            event = {
                "type": "quanta.signatures",
                "auditor_index": self.auditor_index,
                "results": encode(message),
            }
            await self.channel_layer.send(ENGINE_CHANNEL, event)
        elif isinstance(message, QuantaCursorRequest):
            await self._catchup(int(message.quanta_cursor))
        elif isinstance(message, CatchupQuantaBatch):
            event = {
                "type": "quanta.catchup",
                "auditor_index": self.auditor_index,
                "batch": encode(message),
            }
            await self.channel_layer.send(ENGINE_CHANNEL, event)

    async def _catchup(self, cursor: int) -> None:
        event = {"type": "herald.catchup", "cursor": cursor, "reply": self.channel_name}
        await self.channel_layer.send(ENGINE_CHANNEL, event)

    async def herald_rising(self, event: dict[str, Any]) -> None:
        """Asks the auditor for every quantum it holds above alpha's apex (alpha is Rising)."""
        request = CatchupQuantaBatchRequest(0, int(event["apex"]))
        await self._send_message(encode(request, MESSAGE))

    async def herald_quanta(self, event: dict[str, Any]) -> None:
        """Sends a quanta batch from the engine to the auditor."""
        await self._send_message(event["batch"])

    async def _send_message(self, message: bytes) -> None:
        await self.send(bytes_data=envelope_bytes(message, self.keypair))
