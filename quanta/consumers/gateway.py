"""`GatewayConsumer` (`/ws/`): the client gateway.

Decodes, authenticates, checks size and signature, hands requests to the engine over the
channel layer and relays results back. Overload of the engine's channel is answered with 429.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from typing import Any

from channels.db import database_sync_to_async
from channels.exceptions import ChannelFull
from channels.generic.websocket import AsyncWebsocketConsumer

from quanta import worker
from quanta.core.alpha import result_message
from quanta.core.gateway import GatewayError, check_handshake, check_request, envelope_bytes
from quanta.core.keys import KeyPair
from quanta.core.status import StatusCode
from quanta.core.xdr.codec import encode
from quanta.core.xdr.schema import (
    MESSAGE,
    ClientConnectionSuccess,
    HandshakeRequest,
    QuantumInfoRequest,
)
from quanta.dispatch import DirectDispatchMixin
from quanta.groups import ENGINE_CHANNEL, account_group
from quanta.selectors import account_id_for_key, quantum_info_page

logger = logging.getLogger(__name__)


class GatewayConsumer(DirectDispatchMixin, AsyncWebsocketConsumer):
    """One client connection: handshake, then signed requests in and results out."""

    async def connect(self) -> None:
        self.keypair: KeyPair = await asyncio.to_thread(worker.node_keypair)
        self.challenge = secrets.token_bytes(32)
        self.public_key: bytes | None = None
        await self.accept()
        await self._send_message(encode(HandshakeRequest(0, self.challenge), MESSAGE))

    async def disconnect(self, code: int) -> None:
        if self.public_key is not None:
            await self.channel_layer.group_discard(
                account_group(self.public_key), self.channel_name
            )

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        try:
            if bytes_data is None:
                raise GatewayError(StatusCode.BAD_REQUEST, "frames must be binary XDR", 0)
            if self.public_key is None:
                await self._handshake(bytes_data)
            else:
                await self._request(bytes_data)
        except GatewayError as error:
            await self._send_message(result_message(error.message_id, error.status, error.text))
            if error.close:
                await self.close(code=4401)

    async def _handshake(self, data: bytes) -> None:
        envelope = check_handshake(data, self.challenge)
        self.public_key = envelope.signature.signer
        await self.channel_layer.group_add(account_group(self.public_key), self.channel_name)
        account_id = await database_sync_to_async(account_id_for_key)(self.public_key)
        message = envelope.message
        await self._send_message(
            encode(ClientConnectionSuccess(message.message_id, account_id), MESSAGE)
        )

    async def _request(self, data: bytes) -> None:
        assert self.public_key is not None
        envelope = check_request(data, self.public_key)
        if isinstance(envelope.message, QuantumInfoRequest):
            page = await database_sync_to_async(quantum_info_page)(envelope.message)
            await self._send_message(page)
            return
        event = {"type": "quanta.request", "envelope": data, "reply": self.channel_name}
        try:
            await self.channel_layer.send(ENGINE_CHANNEL, event)
        except ChannelFull:
            message_id = int(envelope.message.message_id)
            raise GatewayError(
                StatusCode.TOO_MANY_REQUESTS, "the engine is busy, retry later", message_id
            ) from None

    async def quanta_results(self, event: dict[str, Any]) -> None:
        """Relays results and notifications from the engine to the client, in order."""
        for message in event["messages"]:
            await self._send_message(message)

    async def _send_message(self, message: bytes) -> None:
        await self.send(bytes_data=envelope_bytes(message, self.keypair))
