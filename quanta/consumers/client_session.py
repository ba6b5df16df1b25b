"""The authenticated session shared by the gateway (`/ws/`), the chronicler and the herald.

The node sends a signed HandshakeRequest with 32 random bytes; the client signs them back and
the connection is bound to that key. After that every binary frame from the client is a
signed envelope of that key. The node signs what it sends with its own key, except quantum
results, which carry their own proof (`server_frame`). Every signature on both sides is bound
to the constellation id (`quanta.core.signatures`), so a node that has none yet (not
initialized) closes the connection at once (NOT_INITIALIZED_CLOSE_CODE). Protocol errors are
answered with their status code, and the connection is closed only when the error says so (a failed
handshake). One implementation, because this is the security boundary of every endpoint;
an endpoint whose peers answer another way (the herald's auditors) brings its own check by
overriding `handshake`.
"""

from __future__ import annotations

import asyncio
import secrets
import time

from channels.db import database_sync_to_async
from django.conf import settings

from exchange.selectors import account_id_for_key
from quanta.core.envelopes import GatewayError, server_frame
from quanta.core.gateway import check_handshake
from quanta.core.keys import KeyPair
from quanta.core.rate_limits import TokenBucket
from quanta.core.results import result_message
from quanta.core.status import StatusCode
from quanta.core.xdr.codec import encode
from quanta.core.xdr.schema import MESSAGE, ClientConnectionSuccess, HandshakeRequest, Limits
from quanta.node_identity import node_keypair
from quanta.selectors import constellation_id
from quanta.web_metrics import RefusalCause, refused

HANDSHAKE_FAILED_CLOSE_CODE = 4401
HISTORY_PAGE_COST_MIN = 100
"""What a history page costs of the connection's pace at least, in items: a read of a few
items is still a query."""
NOT_INITIALIZED_CLOSE_CODE = 4450
"""Closes a connection to a node that has no settings yet: there is no constellation whose id
signatures could be bound to, and nobody is an auditor."""
HANDSHAKE_TIMEOUT_CLOSE_CODE = 4408
"""Closes a connection that has not answered the challenge within HANDSHAKE_DEADLINE_S."""
HANDSHAKE_DEADLINE_S = 10.0
"""How long an unauthenticated connection may stay open: a peer that never answers the
challenge would otherwise hold its connection (and its place under the per-address cap) for
as long as it likes."""


class ClientSessionMixin:
    """Handshake, signed frames in and answers out; put it before AsyncWebsocketConsumer."""

    keypair: KeyPair
    constellation_id = b""
    """The node's constellation id, once `open_session` read it (empty: not initialized, and
    the connection is being closed: frames that still arrive are dropped)."""
    challenge: bytes
    public_key: bytes | None
    account_id = 0
    """The connected key's account id at the handshake (0: none yet)."""
    history_bucket: TokenBucket | None = None
    handshake_failed_close_code = HANDSHAKE_FAILED_CLOSE_CODE

    handshake_deadline: asyncio.Task[None] | None = None

    async def open_session(self) -> None:
        """Accepts the connection and sends the signed handshake challenge; the connection is
        closed (HANDSHAKE_TIMEOUT_CLOSE_CODE) if the answer does not come in time."""
        self.keypair = await asyncio.to_thread(node_keypair)
        self.challenge = secrets.token_bytes(32)
        self.public_key = None
        await self.accept()  # type: ignore[attr-defined]
        found = await database_sync_to_async(constellation_id)()
        if found is None:
            await self.close(code=NOT_INITIALIZED_CLOSE_CODE)  # type: ignore[attr-defined]
            return
        self.constellation_id = found
        await self._send_message(encode(HandshakeRequest(0, self.challenge), MESSAGE))
        self.handshake_deadline = asyncio.create_task(self._close_unless_handshaken())

    async def _close_unless_handshaken(self) -> None:
        await asyncio.sleep(HANDSHAKE_DEADLINE_S)
        if self.public_key is None:
            await self.close(code=HANDSHAKE_TIMEOUT_CLOSE_CODE)  # type: ignore[attr-defined]

    def handshake_not_needed(self) -> None:
        """Lifts the handshake deadline: the connection serves public data that needs no key
        (the chronicler's market feeds, once subscribed)."""
        if self.handshake_deadline is not None:
            self.handshake_deadline.cancel()

    async def websocket_disconnect(self, message: dict[str, object]) -> None:
        """Stops the handshake deadline, then disconnects as the consumer does."""
        if self.handshake_deadline is not None:
            self.handshake_deadline.cancel()
        await super().websocket_disconnect(message)  # type: ignore[misc]

    async def receive_signed(self, data: bytes | None) -> None:
        """Completes the handshake or hands a signed frame to `signed_frame`."""
        if not self.constellation_id:
            return  # Not initialized: the connection is closing (NOT_INITIALIZED_CLOSE_CODE).
        try:
            if data is None:
                raise GatewayError(StatusCode.BAD_REQUEST, "frames must be binary XDR", 0)
            if self.public_key is None:
                await self.handshake(data)
            else:
                await self.signed_frame(data)
        except GatewayError as error:
            await self._send_message(result_message(error.message_id, error.status, error.message))
            if error.close:
                await self.close(code=self.handshake_failed_close_code)  # type: ignore[attr-defined]

    async def handshake(self, data: bytes) -> None:
        """Checks the answer to the challenge and binds the connection to the client's key
        (`public_key`); raise GatewayError to refuse it."""
        envelope = check_handshake(data, self.challenge, self.constellation_id)
        signer = envelope.signature.signer
        # Bound before the account is looked up: a quantum registering the key between the
        # two then still reaches this connection (held until the client heard of its success)
        # and the client, told 0, recognizes it as the one creating its account.
        self.public_key = signer
        await self.authenticated()
        self.account_id = await self.account_of(signer)
        success = ClientConnectionSuccess(envelope.message.message_id, self.account_id)
        await self._send_message(encode(success, MESSAGE))
        await self.handshake_answered()

    async def account_of(self, public_key: bytes) -> int:
        """Returns the key's account id (0: none yet); here from the persisted rows."""
        return int(await database_sync_to_async(account_id_for_key)(public_key))

    async def authenticated(self) -> None:
        """Called once the connection is bound to `public_key` (before the client is told)."""

    async def handshake_answered(self) -> None:
        """Called once the client was told of its success (what was held may follow)."""

    async def signed_frame(self, data: bytes) -> None:
        """Handles one frame after the handshake; raise GatewayError to refuse it."""
        raise NotImplementedError

    def pace_history(self, message_id: int, limit: int) -> None:
        """Refuses (429) a history page beyond the connection's pace: each is a database read
        of up to `limit` items, and costs that many (HISTORY_PAGE_COST_MIN at least) of
        HISTORY_ITEMS_PER_S and HISTORY_ITEMS_BURST."""
        now = time.monotonic()
        if self.history_bucket is None:
            rate, burst = settings.HISTORY_ITEMS_PER_S, settings.HISTORY_ITEMS_BURST
            self.history_bucket = TokenBucket(rate, burst, now)
        bucket = self.history_bucket
        cost = min(max(limit, HISTORY_PAGE_COST_MIN), Limits.QUERY_ITEMS_MAX, bucket.burst)
        if not bucket.take(now, cost):
            refused(RefusalCause.HISTORY_PACE)
            text = f"history: at most {bucket.rate:g} items a second, retry later"
            raise GatewayError(StatusCode.TOO_MANY_REQUESTS, text, message_id)

    async def _send_message(self, message: bytes) -> None:
        """Sends the XDR of a Message in the frame `server_frame` chooses for its type."""
        frame = server_frame(message, self.keypair, self.constellation_id)
        await self.send(bytes_data=frame)  # type: ignore[attr-defined]
