"""`ConstellationClient`: an asyncio client of a node's gateway (`/ws/`, docs/client.md).

Flow: verify the settings chain the node publishes forward from the pinned constellation id
(`constellation_client.chain`) and take alpha's and the auditors' keys from its head; open the
WebSocket; accept the handshake only if alpha of the pinned constellation signed it, answer it
with a signed `HandshakeResponse`; then send signed requests. Every signature the client makes
or checks is bound to the pinned id (`constellation_client.digests`).

One reader task opens every server frame and hands the message to the connection's `Inbox`
(`constellation_client.inbox`), which decides what it answers, if anything: quantum results by
their proof alone (the request's nonce applied in the account's own effects group), never by
their unsigned `message_id` or `status`; replays are dropped and gaps reported. Frames the
client cannot verify never decide a request: one without a verified answer ends in
`UnverifiedOutcomeError`.

Business rejections come back as a `RequestResult` with the node's status; transport and
protocol failures raise `ConstellationClientError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Self

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException

from constellation_client.binding import SequenceTracker
from constellation_client.chain import fetch_verified_head
from constellation_client.counterparty import Counterparty, proven_counterparty
from constellation_client.digests import ConstellationIdError, parse_constellation_id
from constellation_client.inbox import Inbox
from constellation_client.nonce import NonceSource
from constellation_client.outcome import OrderTerms
from constellation_client.result import RequestResult
from constellation_client.verify import SignatureSampler
from constellation_client.wire import (
    Constellation,
    ConstellationClientError,
    RefusedFrameError,
    decode_destination,
    node_urls,
    open_frame,
    seal,
)
from exchange.core.matching import TimeInForce
from exchange.core.orderbook import Side
from quanta.core.keys import KeyPair
from quanta.core.status import StatusCode
from quanta.core.xdr.schema import (
    AccountDataRequest,
    BatchCancelAll,
    BatchItem,
    BatchOrder,
    ClientConnectionSuccess,
    ClientRequest,
    HandshakeRequest,
    HandshakeResponse,
    Limits,
    Message,
    OrderBatchRequest,
    OrderCancellationRequest,
    OrderRequest,
    PaymentRequest,
    QuantumInfoItem,
    QuantumInfoRequest,
    QuantumInfoResponse,
    QueryOrder,
    ResultMessage,
    WithdrawalRequest,
)

# Server frames may carry up to a batch worth of history or effects hashes.
FRAME_BYTES_MAX = Limits.BATCH_BYTES_MAX
logger = logging.getLogger(__name__)
REQUEST_TIMEOUT_S = 30.0
REFRESH_INTERVAL_S = 5.0
"""At most one re-fetch of the settings chain per interval, however many frames ask for it."""
FOLLOW_ATTEMPTS = 5
"""Reconnections to alpha tried in one round after a loss (a request starts another round)."""
FOLLOW_BACKOFF_FIRST_S = 0.5
FOLLOW_BACKOFF_MAX_S = 8.0


class ConstellationClient:
    """A connected, authenticated client of one node; create it with `connect`."""

    def __init__(
        self,
        websocket: ClientConnection,
        keypair: KeyPair,
        constellation: Constellation,
        *,
        sampler: SignatureSampler | None = None,
        info_url: str = "",
        timeout_s: float = 10,
    ) -> None:
        """Wraps an open WebSocket; prefer `ConstellationClient.connect`. `constellation` is
        what the client trusts (a verified chain head, or keys pinned out of band)."""
        self._websocket = websocket
        self._keypair = keypair
        self.request_timeout_s = REQUEST_TIMEOUT_S
        self.nonces = NonceSource()
        # The node sends a result to every connection of the account, carrying the requesting
        # connection's message id; starting from the clock (microseconds) keeps two
        # connections of one key from using the same ids.
        self._message_ids = itertools.count(time.time_ns() // 1000)
        self._sampler = sampler or SignatureSampler()
        self.inbox = Inbox(
            constellation,
            keypair.public_key,
            nonces=self.nonces,
            sampler=self._sampler,
            want_refresh=self._want_refresh,
        )
        self._reader: asyncio.Task[None] | None = None
        self._refresher: asyncio.Task[None] | None = None
        self._refreshed_at = float("-inf")
        self._failure: ConstellationClientError | None = None
        self._info_url = info_url
        self._timeout_s = timeout_s
        # Set by `connect_to_alpha`: the nodes asked where alpha is when the connection is
        # lost or alpha answers that it was replaced (`_follow_alpha`); empty: no following.
        self._follow_urls: tuple[str, ...] = ()
        self._follower: asyncio.Task[None] | None = None
        self._closing = False

    # --- connection ---------------------------------------------------------------------

    @classmethod
    async def connect(
        cls,
        url: str,
        secret: str | KeyPair,
        *,
        constellation_id: str | bytes,
        constellation: Constellation | None = None,
        timeout_s: float = 10,
        verify_one_in: int = 1,
    ) -> ConstellationClient:
        """Connects to the node at `url` (e.g. http://127.0.0.1:8000) of the constellation
        pinned by `constellation_id` (32 bytes or 64 hex characters) and authenticates.

        The trusted keys come from the node's settings chain, verified forward from the pin;
        `constellation` gives them instead (keys pinned out of band, for the same id).

        `verify_one_in` = 1 (the default) verifies every node signature of every result.
        N > 1 is meant ONLY for load generators such as bench/cluster.py: each result's payload
        hash is still recomputed and compared, but its node signatures are verified for one
        result in N (chosen at random) and otherwise only counted towards finality, so
        `acknowledged`, `finalized` and `signatures_verified` of the other results rest on
        signatures nobody checked. Never use it where the results matter."""
        try:
            pin = parse_constellation_id(constellation_id)
        except ConstellationIdError as error:
            raise ConstellationClientError(f"invalid pinned constellation id: {error}") from None
        sampler = SignatureSampler(verify_one_in)
        keypair = secret if isinstance(secret, KeyPair) else KeyPair.from_secret(secret)
        ws_url, info_url = node_urls(url)
        if constellation is None:
            constellation = await asyncio.to_thread(fetch_verified_head, info_url, pin, timeout_s)
        elif constellation.constellation_id != pin:
            raise ConstellationClientError("the keys given belong to another constellation id")
        try:
            websocket = await connect(ws_url, open_timeout=timeout_s, max_size=FRAME_BYTES_MAX)
        except (OSError, WebSocketException, TimeoutError) as error:
            raise ConstellationClientError(f"cannot connect to {ws_url}: {error}") from None
        client = cls(
            websocket,
            keypair,
            constellation,
            sampler=sampler,
            info_url=info_url,
            timeout_s=timeout_s,
        )
        try:
            await asyncio.wait_for(client._handshake(), timeout_s)
        except BaseException:
            await websocket.close()
            raise
        client._reader = asyncio.create_task(client._read_forever())
        return client

    @classmethod
    async def connect_to_alpha(
        cls,
        urls: Sequence[str],
        secret: str | KeyPair,
        *,
        constellation_id: str | bytes,
        timeout_s: float = 10,
        verify_one_in: int = 1,
    ) -> ConstellationClient:
        """Connects to the alpha the constellation's settings name, at the address they give
        it, asking the nodes at `urls` (alpha or auditors: any node serves the settings chain)
        where it is. Each node's chain is verified forward from the pin (every update signed
        by a majority of the auditors before it) and the newest verified head wins: no single
        node's word moves the client, and one that withholds an update (a replaced alpha, an
        auditor behind) cannot hold it back.

        The client then follows alpha on its own (docs/admin.md, "Replacing alpha"): when the
        connection is lost or alpha answers that it was replaced (450), it asks `urls` again
        and reconnects to the alpha the newest verified settings name, in rounds of
        FOLLOW_ATTEMPTS tries with a growing delay (a request made while the connection is
        down waits for the round, or starts a new one). It re-sends nothing: a request in
        flight at the loss ends in `UnverifiedOutcomeError` (it may have executed), and a 450
        answer is returned as it is (it was not executed; the caller may send it again)."""
        try:
            pin = parse_constellation_id(constellation_id)
        except ConstellationIdError as error:
            raise ConstellationClientError(f"invalid pinned constellation id: {error}") from None
        head = await alpha_head(urls, pin, timeout_s)
        settings = head.settings
        assert settings is not None  # a verified head carries its settings
        address = next(a.address for a in settings.auditors if a.public_key == settings.alpha)
        client = await cls.connect(
            address,
            secret,
            constellation_id=pin,
            constellation=head,
            timeout_s=timeout_s,
            verify_one_in=verify_one_in,
        )
        client._follow_urls = tuple(urls)
        return client

    @property
    def constellation_id(self) -> bytes:
        """Returns the pinned constellation id every signature is bound to."""
        return self.constellation.constellation_id

    async def _handshake(self) -> None:
        """Signs back the challenge of the pinned constellation's alpha and records the
        account id it answers. A challenge alpha did not sign for this constellation is
        refused: it may be relayed from another node to borrow this client's signature."""
        try:
            challenge = self._open(await self._receive_bytes())
        except RefusedFrameError as refused:
            raise ConstellationClientError(f"handshake refused: {refused}") from None
        if not isinstance(challenge, HandshakeRequest):
            raise ConstellationClientError(f"expected HandshakeRequest, got {challenge!r}")
        message_id = next(self._message_ids)
        await self._send(HandshakeResponse(message_id, challenge.handshake_data))
        try:
            answer = self._open(await self._receive_bytes())
        except RefusedFrameError as refused:
            raise ConstellationClientError(f"handshake answer refused: {refused}") from None
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

    @property
    def constellation(self) -> Constellation:
        """Returns what the client trusts: the verified settings head (or pinned keys)."""
        return self.inbox.constellation

    @property
    def account_id(self) -> int:
        """Returns the account id alpha named at the handshake (0: not registered then)."""
        return self.inbox.account_id

    @account_id.setter
    def account_id(self, account_id: int) -> None:
        self.inbox.account_id = account_id

    @property
    def sequences(self) -> SequenceTracker:
        """Returns the tracker of the account's sequences on this connection."""
        return self.inbox.sequences

    @property
    def gaps(self) -> int:
        """Returns how many of the account's sequences never arrived on this connection."""
        self.inbox.sequences.settle()
        return self.inbox.sequences.gaps

    @property
    def frames_refused(self) -> int:
        """Returns how many server frames were dropped because they did not verify."""
        return self.inbox.frames_refused

    @property
    def notifications_dropped(self) -> int:
        """Returns how many unread notifications were dropped beyond the bound."""
        return self.inbox.notifications_dropped

    @property
    def on_gap(self) -> Callable[[int, int], None] | None:
        """Returns the callback given (first, last) of each run of missing sequences."""
        return self.inbox.on_gap

    @on_gap.setter
    def on_gap(self, callback: Callable[[int, int], None] | None) -> None:
        self.inbox.on_gap = callback

    async def next_notification(self, timeout_s: float | None = None) -> RequestResult | None:
        """Returns the next notification, or None if none arrives within `timeout_s`."""
        return await self.inbox.next_notification(timeout_s)

    async def close(self) -> None:
        """Closes the connection and wakes every waiter."""
        self._closing = True
        await self._websocket.close()
        for task in (self._follower, self._reader, self._refresher):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
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

    # --- settings -----------------------------------------------------------------------

    async def refresh_settings(self) -> bool:
        """Extends the verified settings chain from the current head (after a rotation);
        returns whether the trusted keys changed. Raises ChainError if the node's chain
        does not verify. Keys pinned out of band have no chain to extend."""
        head = self.constellation
        self._refreshed_at = asyncio.get_running_loop().time()
        if head.settings is None or not self._info_url:
            return False
        new = await asyncio.to_thread(
            fetch_verified_head, self._info_url, head.constellation_id, self._timeout_s, head
        )
        if new.version == head.version:
            return False
        logger.info("trusted settings move from version %d to %d", head.version, new.version)
        self.inbox.recheck(new)
        return True

    def _want_refresh(self, why: str) -> None:
        """Re-fetches the chain in the background, at most once per REFRESH_INTERVAL_S: a
        frame that does not verify under the trusted keys may come from rotated ones."""
        loop = asyncio.get_running_loop()
        busy = self._refresher is not None and not self._refresher.done()
        if busy or loop.time() - self._refreshed_at < REFRESH_INTERVAL_S:
            return
        logger.info("re-fetching the settings chain: %s", why)
        self._refreshed_at = loop.time()
        self._refresher = asyncio.create_task(self._refresh_logged())

    async def _refresh_logged(self) -> None:
        try:
            await self.refresh_settings()
        except ConstellationClientError as error:
            logger.error("settings chain not extended: %s", error)

    # --- frames -------------------------------------------------------------------------

    async def _send(self, message: Message) -> None:
        """Signs and sends one message, bound to the pinned constellation."""
        frame = seal(message, self._keypair, self.constellation_id)
        try:
            await self._websocket.send(frame)
        except WebSocketException as error:
            raise ConstellationClientError(f"send failed: {error}") from None

    async def _receive_bytes(self) -> bytes:
        """Receives one binary frame."""
        try:
            data = await self._websocket.recv()
        except WebSocketException as error:
            raise ConstellationClientError(f"connection lost: {error}") from None
        if not isinstance(data, bytes):
            raise ConstellationClientError("the node sent a text frame")
        return data

    def _open(self, data: bytes) -> Message:
        """Returns the message of a frame signed by the trusted alpha for the pinned
        constellation, or of a quantum result (unsigned frame) whose proof the caller checks."""
        return open_frame(data, self.constellation.alpha_key, self.constellation_id)

    async def _read_forever(self) -> None:
        """Dispatches every incoming message until the connection fails or closes."""
        try:
            while True:
                data = await self._receive_bytes()
                try:
                    message = self._open(data)
                except RefusedFrameError as refused:
                    self.inbox.refused(refused)
                    continue
                self.inbox.dispatch(message)
        except ConstellationClientError as error:
            self._fail(error)
            self._start_following(str(error))
        except Exception as error:  # A bug must not leave requests waiting forever.
            self._fail(ConstellationClientError(f"reader failed: {error!r}"))
            raise

    def _fail(self, error: ConstellationClientError) -> None:
        """Fails every request still waiting for an answer and wakes finality waiters."""
        self._failure = self._failure or error
        self.inbox.fail(self._failure)

    # --- following alpha ----------------------------------------------------------------

    def _start_following(self, why: str) -> None:
        """Starts a round of reconnections to alpha (`connect_to_alpha` clients only)."""
        if not self._follow_urls or self._closing:
            return
        if self._follower is not None and not self._follower.done():
            return
        logger.info("following alpha: %s", why)
        self._follower = asyncio.create_task(self._follow_alpha())

    async def _follow_alpha(self) -> None:
        """Tries FOLLOW_ATTEMPTS reconnections with a growing delay; the last error stays
        the client's failure if none succeeds (the next request starts another round)."""
        delay = FOLLOW_BACKOFF_FIRST_S
        for attempt in range(1, FOLLOW_ATTEMPTS + 1):
            try:
                await self._reconnect()
            except ConstellationClientError as error:
                logger.warning("following alpha: try %d of %d: %s", attempt, FOLLOW_ATTEMPTS, error)
                self._failure = ConstellationClientError(f"alpha not reached: {error}")
            else:
                logger.info("following alpha: connected to %s", self._info_url)
                return
            if attempt < FOLLOW_ATTEMPTS:
                await asyncio.sleep(delay)  # backoff, not a synchronization
                delay = min(2 * delay, FOLLOW_BACKOFF_MAX_S)

    async def _reconnect(self) -> None:
        """Connects to the alpha of the newest verified settings the follow nodes serve (or
        the trusted head, if newer) and authenticates; raises ConstellationClientError."""
        head = await alpha_head(self._follow_urls, self.constellation_id, self._timeout_s)
        if head.version < self.constellation.version:
            head = self.constellation
        settings = head.settings
        assert settings is not None  # a verified head carries its settings
        address = next(a.address for a in settings.auditors if a.public_key == settings.alpha)
        ws_url, info_url = node_urls(address)
        try:
            websocket = await connect(
                ws_url, open_timeout=self._timeout_s, max_size=FRAME_BYTES_MAX
            )
        except (OSError, WebSocketException, TimeoutError) as error:
            raise ConstellationClientError(f"cannot connect to {ws_url}: {error}") from None
        with contextlib.suppress(Exception):
            await self._websocket.close()  # the lost (or replaced alpha's) connection
        self._websocket = websocket
        if head is not self.constellation:
            self.inbox.recheck(head)
        self._info_url = info_url
        try:
            await asyncio.wait_for(self._handshake(), self._timeout_s)
        except (ConstellationClientError, TimeoutError) as error:
            await websocket.close()
            raise ConstellationClientError(f"handshake with {ws_url} failed: {error}") from None
        self._failure = None
        self._reader = asyncio.create_task(self._read_forever())

    async def _drop_replaced(self, answer: ResultMessage) -> None:
        """Leaves the connection of an alpha that says it was replaced (450) and follows the
        settings to the new one; what was in flight there ends as after a loss."""
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
        self._fail(ConstellationClientError(f"alpha was replaced: {answer.description}"))
        self._start_following(answer.description)

    async def _connection_ready(self) -> None:
        """Waits for a round of reconnections in progress (or starts one after a loss) and
        raises the failure if the client is still not connected."""
        if self._failure is not None:
            self._start_following(str(self._failure))
        if self._follower is not None and not self._follower.done():
            await asyncio.shield(self._follower)
        if self._failure is not None:
            raise self._failure

    # --- requests -----------------------------------------------------------------------

    async def _ask(self, message: Message, nonce: int | None = None) -> Message | RequestResult:
        """Sends a request and returns the first verified answer to it (for a quantum
        request, with `nonce`: its alpha-signed rejection or the result proving the nonce)."""
        await self._connection_ready()
        pending = self.inbox.expect(int(getattr(message, "message_id", 0)), nonce)
        try:
            await self._send(message)
            return await asyncio.wait_for(pending.future, self.request_timeout_s)
        except TimeoutError:
            why = f"no verified answer within {self.request_timeout_s:g} s"
            raise self.inbox.unanswered(pending, why) from None
        finally:
            self.inbox.forget(pending)

    async def _quantum(self, message: ClientRequest) -> RequestResult:
        """Sends a quantum request and returns its result after the first verified answer."""
        answer = await self._ask(message, int(message.nonce))
        if isinstance(answer, ResultMessage):
            if self._follow_urls and is_replaced(answer):
                await self._drop_replaced(answer)
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
        client_order_id: int = 0,
    ) -> RequestResult:
        """Places a limit order on {asset}/{quote asset}; the node rounds price to the tick.

        `client_order_id` (0: none) labels it: the node refuses it if a resting order of the
        account holds that label, and `cancel_order(client_order_id=...)` can name it.
        `result.order_outcomes` then says what it did."""
        side, time_in_force = Side(side), TimeInForce(time_in_force)
        request = OrderRequest(
            *self._header(), asset, side, amount, float(price), time_in_force, client_order_id
        )
        result = await self._quantum(request)
        result.orders = (OrderTerms(asset, side, amount, time_in_force, client_order_id),)
        return result

    async def batch(self, items: Sequence[BatchItem]) -> RequestResult:
        """Sends up to `Limits.ORDER_BATCH_ITEMS_MAX` orders and cancels in one signed request,
        executed in order, all or nothing; `result.order_outcomes` covers its orders."""
        if not 0 < len(items) <= Limits.ORDER_BATCH_ITEMS_MAX:
            raise ConstellationClientError(
                f"a batch holds 1 to {Limits.ORDER_BATCH_ITEMS_MAX} items, not {len(items)}"
            )
        result = await self._quantum(OrderBatchRequest(*self._header(), tuple(items)))
        result.orders = tuple(
            OrderTerms(
                item.asset,
                Side(item.side),
                item.amount,
                TimeInForce(item.time_in_force),
                item.client_order_id,
                position,
            )
            for position, item in enumerate(items)
            if isinstance(item, BatchOrder)
        )
        return result

    async def cancel_order(self, order_id: int = 0, *, client_order_id: int = 0) -> RequestResult:
        """Cancels one of the account's open orders, by its id or by its client order id
        (exactly one of the two); the node refuses a label no resting order holds."""
        if bool(order_id) == bool(client_order_id):
            raise ConstellationClientError("name the order by order_id or by client_order_id")
        request = OrderCancellationRequest(*self._header(), order_id, client_order_id)
        return await self._quantum(request)

    async def cancel_all(self, asset: str) -> RequestResult:
        """Cancels every open order of the account in the market of `asset` (a batch of one);
        `result.removed_order_ids` lists them."""
        return await self.batch([BatchCancelAll(asset)])

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

    def history_counterparty(self, item: QuantumInfoItem) -> Counterparty | None:
        """Returns who paid this account or whom it paid (the provider, for deposits and
        withdrawals) in a history item, read from its quantum only once the item is final
        under the trusted keys and its quantum matches its signed hash; else None."""
        return proven_counterparty(item, self.constellation, self._keypair.public_key)


def is_replaced(answer: ResultMessage) -> bool:
    """Tells whether alpha's signed rejection says it was replaced (`quanta.core.alpha`)."""
    return answer.status == StatusCode.INVALID_STATE and "replaced by the alpha" in (
        answer.description
    )


async def alpha_head(urls: Sequence[str], pin: bytes, timeout_s: float) -> Constellation:
    """Returns the newest settings head any node at `urls` serves, verified from `pin`; raises
    ConstellationClientError when none answers with a verifiable chain."""
    errors: list[str] = []

    async def head_of(url: str) -> Constellation | None:
        try:
            return await asyncio.to_thread(fetch_verified_head, node_urls(url)[1], pin, timeout_s)
        except (ConstellationClientError, OSError, ValueError) as error:
            errors.append(f"{url}: {error}")
            return None

    heads = [h for h in await asyncio.gather(*(head_of(url) for url in urls)) if h is not None]
    if not heads:
        raise ConstellationClientError(f"no node told where alpha is: {'; '.join(errors)}")
    return max(heads, key=lambda head: head.version)
