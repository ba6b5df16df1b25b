"""What a proven quantum result says about this client's own account (SECURITY.md M2).

The `message_id`, `status` and `description` of a `QuantumResultMessage` lie outside its
payload proof, so the client routes and judges results by what the proof covers: the
account's own `EffectsGroup` (in full, hashed into the effects proof) with its
`account_sequence` and the `NonceUpdate` effect every applied client request carries. A result
answers a request only if that group holds `NonceUpdate(nonce == the request's nonce)`.

`SequenceTracker` follows one account's sequence numbers on one connection, so a proven but
old result (a replay: its proof is still valid) is never reported again, and a sequence that
never arrives is reported as a gap. Results legitimately arrive out of sequence order: alpha
acknowledges a request as soon as it executes, but notifies an account of someone else's
quantum only once that one is final, and quanta may become final out of apex order. So a
missing sequence is a gap only once it has stayed missing for `GAP_GRACE_S` (the finality
timeout and some), and during the first `GAP_GRACE_S` of a connection lower sequences than
the first one seen are still accepted (quanta executed before the client connected, final
after). Everything else at or below the settled floor is a replay.

Pure: no I/O; the clock is injected.
"""

from __future__ import annotations

import enum
import heapq
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from quanta.core.xdr.schema import (
    AccountCreateEffect,
    EffectsGroup,
    NonceUpdateEffect,
    QuantumResultMessage,
)

logger = logging.getLogger(__name__)

GAP_GRACE_S = 10.0
"""How long a missing account sequence may stay missing before it is reported as a gap:
twice the finality timeout, since a notification comes only when its quantum is final."""
HOLES_MAX = 10_000
"""Missing sequences kept waiting; a larger jump is reported as a gap at once."""


def own_group(
    message: QuantumResultMessage, account_id: int, public_key: bytes
) -> EffectsGroup | None:
    """Returns the account's own full effects group in a (proof-checked) result, or None.

    An account id of 0 means the connection had no account yet: its group is then the one
    that creates an account for `public_key` (the deposit that registers it)."""
    for info in message.effects:
        if not isinstance(info, EffectsGroup) or info.account == 0:
            continue
        if account_id and info.account == account_id:
            return info
        if not account_id and _creates(info, public_key):
            return info
    return None


def _creates(group: EffectsGroup, public_key: bytes) -> bool:
    """Tells whether the group creates an account for `public_key`."""
    return any(
        isinstance(effect, AccountCreateEffect) and effect.public_key == public_key
        for effect in group.effects
    )


def proven_nonces(group: EffectsGroup) -> tuple[int, ...]:
    """Returns the nonces the group's `NonceUpdate` effects set (one per applied request)."""
    return tuple(
        int(effect.nonce) for effect in group.effects if isinstance(effect, NonceUpdateEffect)
    )


class Sequenced(enum.Enum):
    """What `SequenceTracker.observe` made of a result."""

    NEW = "new"
    SEEN = "already seen"
    REPLAY = "replay"


@dataclass(frozen=True, slots=True)
class Observation:
    """A verdict and, for a replay, the sentence saying why."""

    verdict: Sequenced
    reason: str = ""


class SequenceTracker:
    """One account's `account_sequence` numbers as one connection has seen them."""

    def __init__(
        self,
        *,
        grace_s: float = GAP_GRACE_S,
        clock: Callable[[], float] = time.monotonic,
        on_gap: Callable[[int, int], None] | None = None,
    ) -> None:
        """Starts empty; `on_gap(first, last)` is called for each run of missing sequences."""
        self._grace_s = grace_s
        self._clock = clock
        self._on_gap = on_gap
        self._start: float | None = None
        self._floor = 0  # Every sequence <= floor is settled: seen, before us, or a gap.
        self._highest = 0
        self._seen: dict[int, Hashable] = {}
        # The keys of `_seen` as a min-heap, so forgetting those at or below the floor costs
        # what is forgotten, not a scan of every sequence kept (once per result).
        self._seen_order: list[int] = []
        # Awaited sequences and since when, in increasing order: holes only ever open above
        # the highest sequence seen, at the clock's time, so the overdue ones are a prefix and
        # the first is the lowest (an OrderedDict: its front needs no scan past removed keys).
        self._holes: OrderedDict[int, float] = OrderedDict()
        self.gaps = 0
        """How many sequences were reported missing."""
        self.replays = 0
        """How many proven results were dropped as replays."""

    @property
    def highest(self) -> int:
        """Returns the highest sequence seen (0 before the first)."""
        return self._highest

    def observe(self, sequence: int, quantum: Hashable) -> Observation:
        """Records that a proven result of `quantum` carries `sequence` for the account."""
        now = self._clock()
        known = self._seen.get(sequence)
        if known is not None:
            if known == quantum:
                return Observation(Sequenced.SEEN)
            return self._replay(f"account sequence {sequence} already seen for another quantum")
        if self._start is None:
            self._start, self._floor = now, sequence - 1
        elif sequence <= self._floor and now - self._start >= self._grace_s:
            return self._replay(f"account sequence {sequence} ≤ {self._floor}")
        self._seen[sequence] = quantum
        heapq.heappush(self._seen_order, sequence)
        self._holes.pop(sequence, None)
        if sequence > self._highest:
            self._open_holes(max(self._highest, self._floor), sequence, now)
            self._highest = sequence
        self.settle()
        return Observation(Sequenced.NEW)

    def _replay(self, reason: str) -> Observation:
        self.replays += 1
        return Observation(Sequenced.REPLAY, reason)

    def _open_holes(self, below: int, sequence: int, now: float) -> None:
        """Marks the sequences strictly between `below` and `sequence` as awaited."""
        if sequence - below - 1 > HOLES_MAX:
            self._report(below + 1, sequence - 1)
            return
        for missing in range(below + 1, sequence):
            self._holes.setdefault(missing, now)

    def settle(self) -> None:
        """Reports the sequences missing for longer than the grace period and forgets
        what lies below the lowest one still awaited."""
        now = self._clock()
        overdue: list[int] = []
        for sequence, since in self._holes.items():
            if now - since < self._grace_s:
                break
            overdue.append(sequence)
        for run_first, run_last in _runs(overdue):
            self._report(run_first, run_last)
        for missing in overdue:
            del self._holes[missing]
        floor = next(iter(self._holes)) - 1 if self._holes else self._highest
        if self._start is not None and now - self._start < self._grace_s:
            return  # Keep the early sequences: lower ones may still legitimately arrive.
        self._floor = max(self._floor, floor)
        order = self._seen_order
        while order and order[0] <= self._floor:
            del self._seen[heapq.heappop(order)]

    def _report(self, first: int, last: int) -> None:
        count = last - first + 1
        self.gaps += count
        span = f"{first}" if count == 1 else f"{first}..{last}"
        logger.warning(
            "gap in account sequence: %s never arrived (%d quanta touching the account missed)",
            span,
            count,
        )
        if self._on_gap is not None:
            self._on_gap(first, last)


def _runs(sequences: list[int]) -> list[tuple[int, int]]:
    """Returns the runs of consecutive numbers in sorted `sequences` as (first, last)."""
    runs: list[tuple[int, int]] = []
    for sequence in sequences:
        if runs and runs[-1][1] == sequence - 1:
            runs[-1] = (runs[-1][0], sequence)
        else:
            runs.append((sequence, sequence))
    return runs
