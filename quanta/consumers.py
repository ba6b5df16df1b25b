"""Channels consumers of the quanta app.

- `GatewayConsumer` (`/ws/`): the client gateway. Decodes, authenticates, checks size and
  signature, hands requests to the engine over the channel layer and relays results back.
- `EngineConsumer` (`runworker quanta`): adapts the sequential `AlphaNode` to the channel
  layer; one instance handles every message of the `quanta` channel, one at a time.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from typing import Any

from channels.consumer import AsyncConsumer
from channels.db import database_sync_to_async
from channels.exceptions import ChannelFull
from channels.generic.websocket import AsyncWebsocketConsumer

from quanta import worker
from quanta.core.alpha import AlphaNode, Delivery, result_message
from quanta.core.gateway import GatewayError, check_handshake, check_request, envelope_bytes
from quanta.core.keys import KeyPair
from quanta.core.status import ConstellationError, StatusCode
from quanta.core.xdr.codec import decode, encode
from quanta.core.xdr.schema import (
    MESSAGE,
    ClientConnectionSuccess,
    ConstellationMessageEnvelope,
    DepositQuantum,
    HandshakeRequest,
    MessageEnvelope,
    NodeState,
    QuantumInfoRequest,
)
from quanta.groups import ENGINE_CHANNEL, account_group
from quanta.selectors import account_id_for_key, quantum_info_page

logger = logging.getLogger(__name__)


class GatewayConsumer(AsyncWebsocketConsumer):
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

    async def quanta_result(self, event: dict[str, Any]) -> None:
        """Relays a result or notification from the engine to the client."""
        await self._send_message(event["message"])

    async def _send_message(self, message: bytes) -> None:
        await self.send(bytes_data=envelope_bytes(message, self.keypair))


class EngineConsumer(AsyncConsumer):
    """The engine worker: executes quanta one at a time and persists them."""

    FLUSH_INTERVAL_S = 0.05
    DEPOSIT_POLL_S = 0.2

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.node: AlphaNode = await database_sync_to_async(worker.alpha_node_load)()
        await asyncio.to_thread(worker.node_status_publish, self.node)
        self._last_cut = time.monotonic()
        self.providers = worker.providers_for(self.node)
        tasks = [
            asyncio.create_task(self._flush_forever()),
            asyncio.create_task(self._poll_deposits_forever()),
        ]
        try:
            await super().__call__(scope, receive, send)
        finally:
            for task in tasks:
                task.cancel()
            await self._flush(force=True)

    async def quanta_request(self, event: dict[str, Any]) -> None:
        """Executes one client request the gateway verified."""
        envelope = decode(MessageEnvelope, event["envelope"])
        deliveries = self.node.submit(envelope, worker.now_ms(), event["reply"])
        await self._deliver(deliveries)

    async def quanta_init(self, event: dict[str, Any]) -> None:
        """Initializes the constellation with a signed ConstellationUpdate."""
        reply = {"type": "init.result", "status": 200, "description": "initialized"}
        try:
            envelope = decode(ConstellationMessageEnvelope, event["envelope"])
            executed = self.node.initialize(envelope, worker.now_ms())
            self.providers = worker.providers_for(self.node)
            reply["apex"] = executed.apex
        except ConstellationError as error:
            reply.update(status=int(error.status), description=str(error))
        except ValueError as error:
            reply.update(status=int(StatusCode.BAD_REQUEST), description=str(error))
        await self._flush(force=True)
        await asyncio.to_thread(worker.node_status_publish, self.node)
        await self.channel_layer.send(event["reply"], reply)

    async def _deliver(self, deliveries: list[Delivery]) -> None:
        for delivery in deliveries:
            event = {"type": "quanta.result", "message": delivery.message}
            if delivery.reply_to is not None:
                await self.channel_layer.send(delivery.reply_to, event)
            else:
                assert delivery.public_key is not None
                await self.channel_layer.group_send(account_group(delivery.public_key), event)

    async def _flush_forever(self) -> None:
        while True:
            await asyncio.sleep(self.FLUSH_INTERVAL_S)
            try:
                await self._flush(force=False)
            except Exception:
                logger.exception("persisting failed; will retry")

    async def _poll_deposits_forever(self) -> None:
        while True:
            await asyncio.sleep(self.DEPOSIT_POLL_S)
            try:
                await self._poll_deposits()
            except Exception:
                logger.exception("polling the payment providers failed; will retry")

    async def _poll_deposits(self) -> None:
        if self.node.status.state != NodeState.READY:
            return
        for provider_id, provider in self.providers.items():
            cursor = self.node.engine.state.cursors.get(provider_id, provider.settings.init_cursor)
            seen = await database_sync_to_async(provider.notification_after)(
                cursor, worker.now_ms()
            )
            # The cursor may have moved while the provider was read: only a notification that
            # still starts at the current cursor may become a quantum.
            if (
                seen.is_empty
                or self.node.engine.state.cursors.get(provider_id, provider.settings.init_cursor)
                != cursor
            ):
                continue
            body = DepositQuantum(provider_id, seen.cursor, seen.items, seen.withdrawals)
            try:
                deliveries = self.node.notify(body, worker.now_ms())
            except ConstellationError as error:
                logger.error("provider %s notification refused: %s", provider_id, error)
                continue
            await self._deliver(deliveries)

    async def _flush(self, *, force: bool) -> None:
        rows = self.node.take_final_rows()
        if rows:
            await database_sync_to_async(worker.rows_persist)(rows)
        elapsed = time.monotonic() - self._last_cut
        if self.node.pending.is_due(elapsed) or (force and self.node.pending.count):
            batch = self.node.pending.cut(self.node.engine.state)
            self._last_cut = time.monotonic()
            await database_sync_to_async(worker.snapshot_persist)(batch)
            await asyncio.to_thread(worker.node_status_publish, self.node)
