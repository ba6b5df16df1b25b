"""`ConstellationClient`: an asyncio client of a node's gateway (`/ws/`, docs/protocol.md).

Flow: learn the auditor keys (from `/api/constellation/info` unless given), open the WebSocket,
answer the handshake with a signed `HandshakeResponse`, then send signed requests. One reader
task opens every server frame (alpha's signature, or none for a quantum result, whose payload
proof is verified instead) and dispatches it by `message_id`: the first answer to a request
completes its future; later `QuantumResultMessage`s for the same request (more signatures)
update the same `RequestResult`; `message_id` 0 is a notification (someone else's quantum
touched this account) and goes to a queue.

Business rejections come back as a `RequestResult` with the node's status; only transport and
protocol failures raise `ConstellationClientError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, Self

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException

from constellation_client.nonce import NonceSource
from constellation_client.result import RequestResult
from constellation_client.verify import SignatureSampler
from constellation_client.wire import (
    Constellation,
    ConstellationClientError,
    decode_destination,
    fetch_info,
    node_urls,
    open_frame,
    seal,
)
from exchange.core.matching import TimeInForce
from exchange.core.orderbook import Side
from quanta.core.keys import KeyPair
from quanta.core.xdr.schema import (
    AccountDataRequest,
    ClientConnectionSuccess,
    HandshakeRequest,
    HandshakeResponse,
    Limits,
    Message,
    OrderCancellationRequest,
    OrderRequest,
    PaymentRequest,
    QuantumInfoRequest,
    QuantumInfoResponse,
    QuantumResultMessage,
    QueryOrder,
    ResultMessage,
    WithdrawalRequest,
)

# Server frames may carry up to a batch worth of history or effects hashes.
FRAME_BYTES_MAX = Limits.BATCH_BYTES_MAX
logger = logging.getLogger(__name__)
REQUEST_TIMEOUT_S = 30.0
NOTIFICATIONS_MAX = 10_000
"""Unread notifications kept; older ones are dropped (and counted) beyond it."""


class ConstellationClient:
    """A connected, authenticated client of one node; create it with `connect`."""

    def __init__(
        self,
        websocket: ClientConnection,
        keypair: KeyPair,
        constellation: Constellation,
        info: Mapping[str, Any] | None = None,
        *,
        sampler: SignatureSampler | None = None,
    ) -> None:
        """Wraps an open WebSocket; prefer `ConstellationClient.connect`."""
        self._websocket = websocket
        self._keypair = keypair
        self.constellation = constellation
        self.info = dict(info) if info is not None else None
        self.account_id = 0
        self.request_timeout_s = REQUEST_TIMEOUT_S
        self.nonces = NonceSource()
        # The node sends a finalized result to every connection of the account, carrying the
        # requesting connection's message id; starting from the clock (microseconds) keeps
        # two connections of one key from using the same ids.
        self._message_ids = itertools.count(time.time_ns() // 1000)
        self._pending: dict[int, asyncio.Future[Message | RequestResult]] = {}
        self._unfinalized: dict[int, RequestResult] = {}
        # Bounded: a client that never reads its notifications must not grow without end.
        # Past the bound the oldest is dropped and counted (`notifications_dropped`).
        self._notifications: asyncio.Queue[RequestResult] = asyncio.Queue(NOTIFICATIONS_MAX)
        self.notifications_dropped = 0
        self._reader: asyncio.Task[None] | None = None
        self._failure: ConstellationClientError | None = None
        self._sampler = sampler or SignatureSampler()

    # --- connection ---------------------------------------------------------------------

    @classmethod
    async def connect(
        cls,
        url: str,
        secret: str | KeyPair,
        *,
        auditor_keys: Sequence[str | bytes] | None = None,
        info: Mapping[str, Any] | None = None,
        timeout_s: float = 10,
        verify_one_in: int = 1,
    ) -> ConstellationClient:
        """Connects to the node at `url` (e.g. http://127.0.0.1:8000) and authenticates.

        The auditor keys come from `auditor_keys` (alpha first), else from `info`, else from
        the node's `/api/constellation/info`.

        `verify_one_in` = 1 (the default) verifies every node signature of every result.
        N > 1 is meant ONLY for load generators such as bench/cluster.py: each result's payload
        hash is still recomputed and compared, but its node signatures are verified for one
        result in N (chosen at random) and otherwise only counted towards finality, so
        `acknowledged`, `finalized` and `signatures_verified` of the other results rest on
        signatures nobody checked. Never use it where the results matter."""
        sampler = SignatureSampler(verify_one_in)
        keypair = secret if isinstance(secret, KeyPair) else KeyPair.from_secret(secret)
        ws_url, info_url = node_urls(url)
        if auditor_keys is None and info is None:
            info = await asyncio.to_thread(fetch_info, info_url, timeout_s)
        constellation = (
            Constellation.from_keys(auditor_keys)
            if auditor_keys is not None
            else Constellation.from_info(info or {})
        )
        try:
            websocket = await connect(ws_url, open_timeout=timeout_s, max_size=FRAME_BYTES_MAX)
        except (OSError, WebSocketException, TimeoutError) as error:
            raise ConstellationClientError(f"cannot connect to {ws_url}: {error}") from None
        client = cls(websocket, keypair, constellation, info, sampler=sampler)
        try:
            await asyncio.wait_for(client._handshake(), timeout_s)
        except BaseException:
            await websocket.close()
            raise
        client._reader = asyncio.create_task(client._read_forever())
        return client

    async def _handshake(self) -> None:
        """Signs back the node's challenge and records the account id it answers."""
        challenge = await self._receive()
        if not isinstance(challenge, HandshakeRequest):
            raise ConstellationClientError(f"expected HandshakeRequest, got {challenge!r}")
        message_id = next(self._message_ids)
        await self._send(HandshakeResponse(message_id, challenge.handshake_data))
        answer = await self._receive()
        if isinstance(answer, ResultMessage):
            raise ConstellationClientError(
                f"handshake refused: {answer.description}",
                status=int(answer.status),
                description=answer.description,
                result=answer,
            )
        if not isinstance(answer, ClientConnectionSuccess):
            raise ConstellationClientError(f"expected ClientConnectionSuccess, got {answer!r}")
        self.account_id = int(answer.account_id)

    @property
    def public_key(self) -> str:
        """Returns the client's public key as a G... strkey."""
        return self._keypair.public_key_strkey

    @property
    def keypair(self) -> KeyPair:
        """Returns the client's key pair."""
        return self._keypair

    async def close(self) -> None:
        """Closes the connection and wakes every waiter."""
        await self._websocket.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        self._fail(ConstellationClientError("connection closed"))

    async def __aenter__(self) -> Self:
        """Returns the connected client."""
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Closes the connection."""
        await self.close()

    # --- frames -------------------------------------------------------------------------

    async def _send(self, message: Message) -> None:
        """Signs and sends one message."""
        frame = seal(message, self._keypair)
        try:
            await self._websocket.send(frame)
        except WebSocketException as error:
            raise ConstellationClientError(f"send failed: {error}") from None

    async def _receive(self) -> Message:
        """Receives one frame and returns its message: signed by alpha, or a quantum result
        (unsigned frame) whose proof the caller checks."""
        try:
            data = await self._websocket.recv()
        except WebSocketException as error:
            raise ConstellationClientError(f"connection lost: {error}") from None
        if not isinstance(data, bytes):
            raise ConstellationClientError("the node sent a text frame")
        return open_frame(data, self.constellation.alpha_key)

    async def _read_forever(self) -> None:
        """Dispatches every incoming message until the connection fails or closes."""
        try:
            while True:
                self._dispatch(await self._receive())
        except ConstellationClientError as error:
            self._fail(error)
        except Exception as error:  # A bug must not leave requests waiting forever.
            self._fail(ConstellationClientError(f"reader failed: {error!r}"))
            raise

    def _fail(self, error: ConstellationClientError) -> None:
        """Fails every request still waiting for an answer and wakes finality waiters."""
        self._failure = self._failure or error
        for future in self._pending.values():
            if not future.done():
                future.set_exception(self._failure)
        self._pending.clear()
        for result in self._unfinalized.values():
            result.close()
        self._unfinalized.clear()

    def _dispatch(self, message: Message) -> None:
        """Routes one message to its request, its result or the notification queue."""
        message_id = int(getattr(message, "message_id", 0))
        if isinstance(message, QuantumResultMessage) and message_id in self._unfinalized:
            self._update(self._unfinalized[message_id], message)
        elif message_id in self._pending:
            self._answer(self._pending.pop(message_id), message)
        elif message_id == 0:
            self._notify(message)

    def _answer(self, future: asyncio.Future[Message | RequestResult], message: Message) -> None:
        """Completes a request's future; a quantum result becomes a tracked `RequestResult`.

        The result is registered here, in the reader, so a finalization that arrives right
        after the acknowledgement cannot slip past before the requester resumes."""
        if future.done():
            return
        if not isinstance(message, QuantumResultMessage):
            future.set_result(message)
            return
        result = RequestResult.executed(
            message, self.constellation, verify_signatures=self._sampler.take()
        )
        if result.account_data is not None:
            self.nonces.observe(int(result.account_data.nonce))
        if result.ok and not result.finalized:
            self._unfinalized[result.message_id] = result
        future.set_result(result)

    def _update(self, result: RequestResult, message: QuantumResultMessage) -> None:
        """Feeds a later answer into its result; forgets the result once final."""
        result.update(message, self.constellation, verify_signatures=self._sampler.take())
        if result.finalized:
            self._unfinalized.pop(result.message_id, None)

    def _notify(self, message: Message) -> None:
        """Queues a notification as a result (finality already checked)."""
        if isinstance(message, QuantumResultMessage):
            verify = self._sampler.take()
            self._queue_notification(
                RequestResult.executed(message, self.constellation, verify_signatures=verify)
            )
        elif isinstance(message, ResultMessage):
            self._queue_notification(RequestResult.rejected(message))

    def _queue_notification(self, result: RequestResult) -> None:
        if self._notifications.full():
            self._notifications.get_nowait()
            self.notifications_dropped += 1
            if self.notifications_dropped == 1:
                logger.warning(
                    "more than %d unread notifications: dropping the oldest", NOTIFICATIONS_MAX
                )
        self._notifications.put_nowait(result)

    async def next_notification(self, timeout_s: float | None = None) -> RequestResult | None:
        """Returns the next notification, or None if none arrives within `timeout_s`."""
        try:
            return await asyncio.wait_for(self._notifications.get(), timeout_s)
        except TimeoutError:
            return None

    # --- requests -----------------------------------------------------------------------

    async def _ask(self, message: Message) -> Message | RequestResult:
        """Sends a request and returns the node's first answer to it."""
        if self._failure is not None:
            raise self._failure
        message_id = int(getattr(message, "message_id", 0))
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Message | RequestResult] = loop.create_future()
        self._pending[message_id] = future
        try:
            await self._send(message)
            return await asyncio.wait_for(future, self.request_timeout_s)
        except TimeoutError:
            raise ConstellationClientError(f"no answer to request {message_id}") from None
        finally:
            self._pending.pop(message_id, None)

    async def _quantum(self, message: Message) -> RequestResult:
        """Sends a quantum request and returns its result after the first answer."""
        answer = await self._ask(message)
        if isinstance(answer, ResultMessage):
            return RequestResult.rejected(answer)
        if not isinstance(answer, RequestResult):
            raise ConstellationClientError(f"unexpected answer {type(answer).__name__}")
        return answer

    def _header(self) -> tuple[int, bytes, int]:
        """Returns a fresh message id, the account's raw key and a fresh nonce."""
        return next(self._message_ids), self._keypair.public_key, self.nonces.next()

    async def account_data(self) -> RequestResult:
        """Asks for balances and open orders (`result.account_data`)."""
        return await self._quantum(AccountDataRequest(*self._header()))

    async def pay(self, destination: str | bytes, asset: str, amount: int) -> RequestResult:
        """Pays `amount` (10^-7 units) of `asset` to another account (G... or raw key)."""
        target = decode_destination(destination)
        return await self._quantum(PaymentRequest(*self._header(), asset, amount, target))

    async def place_order(
        self,
        asset: str,
        side: Side,
        amount: int,
        price: float,
        time_in_force: TimeInForce = TimeInForce.GOOD_TILL_EXPIRE,
    ) -> RequestResult:
        """Places a limit order on {asset}/{quote asset}; the node rounds price to the tick."""
        request = OrderRequest(
            *self._header(), asset, Side(side), amount, float(price), TimeInForce(time_in_force)
        )
        return await self._quantum(request)

    async def cancel_order(self, order_id: int) -> RequestResult:
        """Cancels one of the account's open orders."""
        return await self._quantum(OrderCancellationRequest(*self._header(), order_id))

    async def withdraw(
        self, provider: str, asset: str, amount: int, destination: str, fee: int = 0
    ) -> RequestResult:
        """Withdraws `amount` of `asset` through `provider` to an external `destination`."""
        request = WithdrawalRequest(*self._header(), provider, asset, amount, destination, fee)
        return await self._quantum(request)

    async def history(
        self, cursor: int = 0, order: QueryOrder = QueryOrder.ASC, limit: int = 50
    ) -> QuantumInfoResponse:
        """Returns a page of the account's final quanta after (ASC) or before (DESC) `cursor`."""
        message_id = next(self._message_ids)
        request = QuantumInfoRequest(
            message_id, self._keypair.public_key, cursor, QueryOrder(order), limit
        )
        answer = await self._ask(request)
        if isinstance(answer, QuantumInfoResponse):
            return answer
        if isinstance(answer, ResultMessage):
            raise ConstellationClientError(
                f"history refused: {answer.status} {answer.description}",
                status=int(answer.status),
                description=answer.description,
                result=answer,
            )
        raise ConstellationClientError(f"unexpected answer {type(answer).__name__}")
