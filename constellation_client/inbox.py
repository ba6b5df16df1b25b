"""`Inbox`: where the verified messages of one connection go, judged by what proves them.

The client's reader opens each frame (`wire.open_frame`) and hands the message here. A message
alpha signed (a rejection, a history page) answers the request with its `message_id`. A
quantum result is judged by its proof only (`constellation_client.binding`): its payload proof
must hold with alpha's signature under the trusted keys and carry this account's own effects
group; it answers the request whose nonce that group proves applied, whatever its unsigned
`message_id`, `status` and `description` say; a later copy of the same quantum (more
signatures) updates the same `RequestResult`; an old proven result is a replay and is dropped;
a proven quantum that touched the account without answering one of this connection's requests
is a notification (or, with another connection's message id, is only tracked). Frames that do
not verify are dropped and counted, and never decide a request: a request without a verified
answer ends in `UnverifiedOutcomeError`, never in a business status.

No I/O: the client feeds messages in and awaits the futures registered here.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from constellation_client.binding import (
    Observation,
    Sequenced,
    SequenceTracker,
    own_group,
    proven_nonces,
)
from constellation_client.nonce import NonceSource
from constellation_client.result import RequestResult
from constellation_client.verify import ResultCheck, SignatureSampler, check_result
from constellation_client.wire import (
    Constellation,
    ConstellationClientError,
    RefusedFrameError,
    UnverifiedOutcomeError,
)
from quanta.core.xdr.schema import Message, QuantumResultMessage, ResultMessage

logger = logging.getLogger(__name__)
NOTIFICATIONS_MAX = 10_000
"""Unread notifications kept; older ones are dropped (and counted) beyond it."""
UNFINALIZED_MAX = 10_000
"""Results waiting for more signatures; the oldest is forgotten (left unfinal) beyond it."""
RECHECK_MAX = 1_000
"""Results kept for a second look after the settings chain is extended (rotation)."""

QuantumKey = tuple[int, bytes]
"""A quantum as results name it: (apex, quantum hash)."""


@dataclass(eq=False)
class Pending:
    """A request waiting for its answer; `nonce` is None for a request that is no quantum."""

    message_id: int
    nonce: int | None
    future: asyncio.Future[Message | RequestResult]
    notes: list[str] = field(default_factory=list)
    """What arrived for it but could not be verified (said again if no answer comes)."""


class Inbox:
    """The requests of one connection waiting for answers, and what became of its results."""

    def __init__(
        self,
        constellation: Constellation,
        public_key: bytes,
        *,
        nonces: NonceSource,
        sampler: SignatureSampler,
        want_refresh: Callable[[str], None],
    ) -> None:
        """Starts empty for the account of `public_key`; `want_refresh(why)` is called when
        a signature fails in a way rotated keys could explain."""
        self.constellation = constellation
        self.account_id = 0
        self._public_key = public_key
        self._nonces = nonces
        self._sampler = sampler
        self._want_refresh = want_refresh
        self._pending: dict[int, Pending] = {}
        self._pending_nonces: dict[int, Pending] = {}
        self._unfinalized: OrderedDict[QuantumKey, RequestResult] = OrderedDict()
        self._recheck: OrderedDict[QuantumKey, QuantumResultMessage] = OrderedDict()
        # Bounded: a client that never reads its notifications must not grow without end.
        # Past the bound the oldest is dropped and counted (`notifications_dropped`).
        self._notifications: asyncio.Queue[RequestResult] = asyncio.Queue(NOTIFICATIONS_MAX)
        self.notifications_dropped = 0
        self.frames_refused = 0
        """Server frames and results dropped because they could not be verified."""
        self.sequences = SequenceTracker(on_gap=self._gap)
        self.on_gap: Callable[[int, int], None] | None = None
        """Called with (first, last) of each run of account sequences that never arrived."""

    def expect(self, message_id: int, nonce: int | None) -> Pending:
        """Registers a request about to be sent; its future completes with the answer."""
        pending = Pending(message_id, nonce, asyncio.get_running_loop().create_future())
        self._pending[message_id] = pending
        if nonce is not None:
            self._pending_nonces[nonce] = pending
        return pending

    def forget(self, pending: Pending) -> None:
        """Stops waiting for a request's answer (answered, timed out or abandoned)."""
        self._pending.pop(pending.message_id, None)
        if pending.nonce is not None:
            self._pending_nonces.pop(pending.nonce, None)

    def refused(self, refused: RefusedFrameError) -> None:
        """Drops a frame the client cannot verify; notes it on the request it claims to
        answer (so a timeout can say so) without letting it decide anything."""
        self.frames_refused += 1
        logger.warning("ignored a frame: %s", refused)
        claimed = getattr(refused.message, "message_id", None)
        pending = self._pending.get(int(claimed)) if isinstance(claimed, int) else None
        if pending is not None:
            pending.notes.append(f"an unverified answer was ignored ({refused})")
        if refused.signed:
            self._want_refresh(str(refused))

    def fail(self, error: ConstellationClientError) -> None:
        """Fails every request still waiting for an answer and wakes finality waiters."""
        for pending in self._pending.values():
            if not pending.future.done():
                pending.future.set_exception(self.unanswered(pending, str(error)))
        self._pending.clear()
        self._pending_nonces.clear()
        for result in self._unfinalized.values():
            result.close()
        self._unfinalized.clear()

    def unanswered(self, pending: Pending, why: str) -> ConstellationClientError:
        """Returns the error for a request that got no verified answer: for a quantum
        request an UnverifiedOutcomeError (it may have been executed)."""
        if pending.nonce is None:
            return ConstellationClientError(f"request {pending.message_id}: {why}")
        notes = "".join(f"; {note}" for note in pending.notes)
        return UnverifiedOutcomeError(
            f"request {pending.message_id} (nonce {pending.nonce}): {why}{notes}; it may or "
            "may not have been executed: check account_data or history before retrying",
            message_id=pending.message_id,
            nonce=pending.nonce,
        )

    def dispatch(self, message: Message) -> None:
        """Routes one verified message: quantum results by their proof, alpha-signed
        answers by their message id, alpha-signed rejections with id 0 as notifications."""
        if isinstance(message, QuantumResultMessage):
            self._on_quantum_result(message)
            return
        message_id = int(getattr(message, "message_id", 0))
        pending = self._pending.get(message_id)
        if pending is not None:
            self.complete(pending, message)
        elif message_id == 0 and isinstance(message, ResultMessage):
            self._queue_notification(RequestResult.rejected(message))

    def complete(self, pending: Pending, answer: Message | RequestResult) -> None:
        """Answers a waiting request (once)."""
        self.forget(pending)
        if not pending.future.done():
            pending.future.set_result(answer)

    # --- quantum results ----------------------------------------------------------------

    def _on_quantum_result(self, message: QuantumResultMessage) -> None:
        """Takes in a quantum result if its proof holds and names this account, once per
        quantum and sequence; see the module docstring for where it goes."""
        key = (int(message.apex), message.quantum_hash)
        tracked = self._unfinalized.get(key)
        if tracked is not None:
            # A later copy (more signatures): `update` checks it against what it verified.
            self._update(key, tracked, message)
            return
        check = check_result(message, self.constellation, verify_signatures=self._sampler.take())
        if not self._proof_holds(message, check):
            return
        group = own_group(message, self.account_id, self._public_key)
        if group is None:
            self._ignore(
                message, f"result at apex {message.apex} proves nothing about this account"
            )
            return
        self.account_id = self.account_id or int(group.account)
        observation = self.sequences.observe(int(group.account_sequence), key)
        if observation.verdict is not Sequenced.NEW:
            self._replayed(message, int(group.account_sequence), observation)
            return
        self._route(RequestResult.checked(message, self.constellation, check), proven_nonces(group))

    def _proof_holds(self, message: QuantumResultMessage, check: ResultCheck) -> bool:
        """Tells whether a result's payload proof holds with alpha's signature; keeps it for
        a second look under newer keys when signatures fail that rotated keys might explain."""
        unverified = len(message.payload_proof.signatures) > check.valid_count
        if check.payload_valid and unverified and not check.is_final:
            self._suspect(message)
        if check.payload_valid and check.alpha_signed:
            return True
        reason = (
            "its payload proof does not hold"
            if not check.payload_valid
            else "alpha did not sign it"
        )
        self._ignore(message, f"result at apex {message.apex} does not verify ({reason})")
        return False

    def _ignore(self, message: QuantumResultMessage, why: str) -> None:
        """Drops an unusable result, noting it on the request its message id claims."""
        self.frames_refused += 1
        logger.warning("%s: ignored", why)
        pending = self._pending.get(int(message.message_id))
        if pending is not None:
            pending.notes.append(f"{why}: ignored")

    def _replayed(
        self, message: QuantumResultMessage, sequence: int, observation: Observation
    ) -> None:
        """Drops a proven result already seen or older than the connection's settled floor."""
        kind = "notification" if message.message_id == 0 else "result"
        reason = observation.reason or f"account sequence {sequence} already seen"
        logger.warning("replayed %s (%s): ignored", kind, reason)

    def _route(self, result: RequestResult, nonces: tuple[int, ...]) -> None:
        """Gives a new proven result to the request whose nonce it proves, else to the
        notifications (someone else's quantum, or a result whose message id lies)."""
        if nonces:
            self._nonces.observe(max(nonces))
        if result.account_data is not None:
            self._nonces.observe(int(result.account_data.nonce))
        pending = next((self._pending_nonces[n] for n in nonces if n in self._pending_nonces), None)
        if result.finalized:
            self._recheck.pop((result.apex, result.quantum_hash), None)
        else:
            self._track(result)
        if pending is not None:
            result.message_id, result.nonce = pending.message_id, int(pending.nonce or 0)
            self.complete(pending, result)
            return
        claimed = self._pending.get(result.message_id)
        if claimed is not None and claimed.nonce is not None:
            why = (
                f"result for request {claimed.message_id} does not prove its nonce {claimed.nonce}"
            )
            logger.warning("%s: ignored", why)
            claimed.notes.append(f"{why}: ignored")
        if result.message_id == 0 or claimed is not None:
            self._queue_notification(result)
        # Otherwise another connection of this key sent the request: tracked, not reported.

    def _track(self, result: RequestResult) -> None:
        """Keeps a result that waits for more signatures, forgetting the oldest beyond
        UNFINALIZED_MAX (it stays unfinal for its waiters)."""
        self._unfinalized[(result.apex, result.quantum_hash)] = result
        if len(self._unfinalized) > UNFINALIZED_MAX:
            _, oldest = self._unfinalized.popitem(last=False)
            oldest.close()

    def _update(
        self, key: QuantumKey, result: RequestResult, message: QuantumResultMessage
    ) -> None:
        """Feeds a later copy of a tracked quantum into its result (which checks it);
        forgets the result once final."""
        verify = self._sampler.take()
        result.update(message, self.constellation, verify_signatures=verify)
        if result.finalized:
            self._unfinalized.pop(key, None)
            self._recheck.pop(key, None)
        elif result.signatures_verified < len(message.payload_proof.signatures) and verify:
            self._suspect(message)

    def _suspect(self, message: QuantumResultMessage) -> None:
        """Keeps a result whose signatures failed under the trusted keys (bounded) and asks
        for the settings chain: after a rotation they may verify under the new head."""
        self._recheck[(int(message.apex), message.quantum_hash)] = message
        if len(self._recheck) > RECHECK_MAX:
            self._recheck.popitem(last=False)
        self._want_refresh(f"a result at apex {message.apex} carries unverified signatures")

    def recheck(self, constellation: Constellation) -> None:
        """Trusts a newer verified head and looks again at the results kept by `_suspect`."""
        self.constellation = constellation
        kept, self._recheck = self._recheck, OrderedDict()
        for key, message in kept.items():
            tracked = self._unfinalized.get(key)
            if tracked is not None:
                self._update(key, tracked, message)
            else:
                self._on_quantum_result(message)

    def _gap(self, first: int, last: int) -> None:
        """Passes a gap in the account's sequences on to the application's callback."""
        if self.on_gap is not None:
            self.on_gap(first, last)

    def _queue_notification(self, result: RequestResult) -> None:
        """Queues a notification, dropping (and counting) the oldest beyond the bound."""
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
