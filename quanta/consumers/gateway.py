"""`GatewayConsumer` (`/ws/`): the client gateway.

Decodes, authenticates, checks size and signature, hands requests to the engine over the
channel layer and relays results back. Overload of the engine's channel is answered with 429.
"""

from __future__ import annotations

import logging
from typing import Any

from channels.db import database_sync_to_async
from channels.exceptions import ChannelFull
from channels.generic.websocket import AsyncWebsocketConsumer

from quanta.consumers.client_session import ClientSessionMixin
from quanta.core.gateway import GatewayError, check_request
from quanta.core.status import StatusCode
from quanta.core.xdr.schema import (
    QuantumInfoRequest,
)
from quanta.dispatch import DirectDispatchMixin
from quanta.groups import ENGINE_CHANNEL, account_group
from quanta.selectors import quantum_info_page

logger = logging.getLogger(__name__)


class GatewayConsumer(ClientSessionMixin, DirectDispatchMixin, AsyncWebsocketConsumer):
    """One client connection: handshake, then signed requests in and results out."""

    async def connect(self) -> None:
        await self.open_session()

    async def disconnect(self, code: int) -> None:
        if self.public_key is not None:
            await self.channel_layer.group_discard(
                account_group(self.public_key), self.channel_name
            )

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        await self.receive_signed(bytes_data)

    async def authenticated(self) -> None:
        """Joins the account's group: results and notifications of the key reach it."""
        assert self.public_key is not None
        await self.channel_layer.group_add(account_group(self.public_key), self.channel_name)

    async def signed_frame(self, data: bytes) -> None:
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
