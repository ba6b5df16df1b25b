"""`GatewayConsumer` (`/ws/`): the client gateway.

Decodes, authenticates, checks size and signature, and hands requests to the process's
`GatewayHub`, which batches them to the engine and brings the results back. A request beyond
the hub's admission limit is answered with 429 at once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer
from django.conf import settings

from quanta.consumers.client_session import ClientSessionMixin
from quanta.consumers.hub import GatewayHub
from quanta.core.envelopes import GatewayError, decode_envelope
from quanta.core.gateway import check_request
from quanta.core.rate_limits import TokenBucket
from quanta.core.results import result_message
from quanta.core.status import StatusCode
from quanta.core.xdr.schema import MESSAGE, QuantumInfoRequest, QuantumResultMessage
from quanta.dispatch import DirectDispatchMixin
from quanta.engine_client import engine_account_of
from quanta.web_metrics import RefusalCause, refused

logger = logging.getLogger(__name__)

BUSY_TEXT = "the engine is busy, retry later"
QUANTUM_RESULT_TYPE = MESSAGE.discriminant_of[QuantumResultMessage].to_bytes(4, "big")
TRY_AGAIN_LATER_CLOSE_CODE = 1013
"""WebSocket "try again later": more results arrived during the handshake than are held."""
UNREGISTERED_TEXT = "this key has no account yet (a deposit registers it): retry later"

HistoryPage = Callable[[QuantumInfoRequest], bytes]
"""Returns the Message XDR answering a history query (a page, or a ResultMessage)."""


class GatewayConsumer(ClientSessionMixin, DirectDispatchMixin, AsyncWebsocketConsumer):  # type: ignore[misc]
    """One client connection: handshake, then signed requests in and results out."""

    # No channel of its own: everything reaches it through the process's hub. (Channels gives
    # a consumer a channel, and a receive pending on it, unless its layer alias is unknown.
    # Those pending receives all contend for the process's one Redis pop.)
    channel_layer_alias = "none: the gateway hub holds the channel"
    hub: GatewayHub | None = None
    session_number = 0
    unregistered_bucket: TokenBucket | None = None
    account_seen = False
    held: list[tuple[bytes, bool]] | None = None
    """Results for the key that arrived while the handshake was still being answered."""
    HELD_MAX = GatewayHub.SESSION_INFLIGHT_MAX
    """More held than that and the connection is closed (TRY_AGAIN_LATER_CLOSE_CODE): a busy
    account may reconnect rather than lose results."""
    """A quantum result or notification reached this connection: its key has an account now,
    even if the database (persisted at each snapshot) does not show it yet."""

    def __init__(self, history_page: HistoryPage) -> None:
        """Answers history queries with `history_page` (the chronicler's, handed in by the
        routing: the quanta app does not import the apps above it)."""
        super().__init__()
        self.history_page = history_page

    async def connect(self) -> None:
        self.hub = await GatewayHub.for_process(
            get_channel_layer(),
            settings.GATEWAY_INFLIGHT_MAX,
            settings.GATEWAY_INFLIGHT_EXPIRY_S,
            session_inflight_max=settings.GATEWAY_SESSION_INFLIGHT_MAX,
            key_sessions_max=settings.GATEWAY_KEY_CONNECTIONS_MAX,
        )
        self.session_number = self.hub.open(self)
        await self.open_session()

    async def disconnect(self, code: int) -> None:
        if self.hub is not None:
            self.hub.close(self.session_number, self.public_key)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        await self.receive_signed(bytes_data)

    async def authenticated(self) -> None:
        """Results and notifications for the key now reach this connection (held until the
        client heard of its success)."""
        assert self.public_key is not None and self.hub is not None
        self.held = []
        if not self.hub.bind(self.session_number, self.public_key):
            refused(RefusalCause.KEY_CONNECTIONS)
            limit = self.hub.key_sessions_max
            raise GatewayError(
                StatusCode.TOO_MANY_REQUESTS, f"this key has {limit} connections already", 0, True
            )

    async def account_of(self, public_key: bytes) -> int:
        """Returns the key's account id: from the persisted rows, else from the engine's
        memory, since a key registered since the last snapshot has no row yet (a client told
        0 would wait for the quantum creating its account and ignore all the others)."""
        persisted = await super().account_of(public_key)
        if persisted:
            return persisted
        in_memory = await engine_account_of(public_key)
        return 0 if in_memory is None else in_memory

    async def handshake_answered(self) -> None:
        """Sends what arrived for the key while the handshake was being answered."""
        held, self.held = self.held or [], None
        for message, signed in held:
            await self.deliver(message, signed)

    async def signed_frame(self, data: bytes) -> None:
        assert self.public_key is not None and self.hub is not None
        envelope = check_request(data, self.public_key, self.constellation_id)
        message_id = int(envelope.message.message_id)
        if isinstance(envelope.message, QuantumInfoRequest):
            self.pace_history(message_id, int(envelope.message.limit))
            page = await database_sync_to_async(self.history_page)(envelope.message)
            await self._send_message(page)
            return
        if self.account_id == 0 and not self.account_seen:
            await self._pace_unregistered(message_id)
        if not self.hub.admit(self.session_number):
            refused(RefusalCause.ENGINE_BUSY)
            raise GatewayError(StatusCode.TOO_MANY_REQUESTS, BUSY_TEXT, message_id)
        self.hub.submit(self.session_number, data)

    async def _pace_unregistered(self, message_id: int) -> None:
        """Paces a key that had no account at its handshake (alpha's per-account limits cannot
        count it): 429 beyond UNREGISTERED_REQUESTS_PER_S; each request let through looks
        again, since a deposit may have registered it since."""
        now = time.monotonic()
        if self.unregistered_bucket is None:
            rate = settings.UNREGISTERED_REQUESTS_PER_S
            self.unregistered_bucket = TokenBucket(rate, settings.UNREGISTERED_REQUESTS_BURST, now)
        if not self.unregistered_bucket.take(now):
            refused(RefusalCause.UNREGISTERED_PACE)
            raise GatewayError(StatusCode.TOO_MANY_REQUESTS, UNREGISTERED_TEXT, message_id)
        assert self.public_key is not None
        self.account_id = await self.account_of(self.public_key)

    async def deliver(self, message: bytes, signed: bool = True) -> None:
        """Sends a result or notification from the engine to the client; the engine says
        whether its frame needs alpha's signature (Delivery.signed)."""
        if self.held is not None:
            if len(self.held) >= self.HELD_MAX:
                await self.close(code=TRY_AGAIN_LATER_CLOSE_CODE)
                return
            self.held.append((message, signed))
            return
        if message[:4] == QUANTUM_RESULT_TYPE:  # A quantum touched this key's account.
            self.account_seen = True
        if signed:
            await self._send_message(message)
        else:
            await self.send(bytes_data=message)

    async def refused(self, envelope: bytes) -> None:
        """Answers a request the engine's channel had no room for."""
        message_id = int(decode_envelope(envelope).message.message_id)  # Verified before.
        await self._send_message(
            result_message(message_id, StatusCode.TOO_MANY_REQUESTS, BUSY_TEXT)
        )
