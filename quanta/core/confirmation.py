"""When an auditor may sign a quantum: the time rule, and the retries of what it cannot
confirm yet.

Quantum time (SPEC.md, safety rules): a quantum's timestamp is never earlier than the
previous quantum's, and never more than `QUANTUM_CLOCK_DRIFT_MAX_MS` ahead of the auditor's
own clock. Going back in time contradicts the chain (alpha's `Engine.next_stamp` never does
it): the auditor goes Failed. Ahead of its clock is "cannot confirm yet": the auditor waits
until its clock catches up (a node whose clock lags signs a moment later; withdrawal
transactions, valid for a TTL after quantum time, can never be stamped far into the future).
An old timestamp is not refused: an auditor catching up replays quanta stamped hours ago,
and an old stamp can only shorten a withdrawal's validity, never extend it.

What a node cannot confirm yet (`NotYetConfirmed`) is retried with a growing delay
(`RetryBackoff`), bounded by `RETRY_MAX_MS`, for as long as it takes: never Failed for that
alone, and the node's status says what it waits for.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from quanta.core.engine import QuantumMismatch
from quanta.core.status import NotYetConfirmed

QUANTUM_CLOCK_DRIFT_MAX_MS = 30_000
"""How far ahead of an auditor's clock a quantum's timestamp may be when it signs it."""

RETRY_FIRST_MS = 100
"""The first delay before checking again what could not be confirmed."""

RETRY_MAX_MS = 5_000
"""The longest delay between two checks."""


def wall_clock_ms() -> int:
    """Returns this node's wall clock in milliseconds."""
    return time.time_ns() // 1_000_000


def quantum_time_check(apex: int, timestamp_ms: int, previous_ms: int, now_ms: int) -> None:
    """Raises QuantumMismatch if quantum `apex` is stamped before the previous quantum
    (`previous_ms`), NotYetConfirmed if more than the drift bound ahead of `now_ms` (this
    node's clock); returns if it may be signed."""
    if timestamp_ms < previous_ms:
        raise QuantumMismatch(
            f"quantum {apex} goes back in time: {timestamp_ms} < {previous_ms} ms"
        )
    ahead_ms = timestamp_ms - now_ms - QUANTUM_CLOCK_DRIFT_MAX_MS
    if ahead_ms > 0:
        raise NotYetConfirmed(
            f"quantum {apex} is stamped {timestamp_ms - now_ms} ms ahead of this node's clock"
            f" (at most {QUANTUM_CLOCK_DRIFT_MAX_MS} ms)",
            retry_after_ms=ahead_ms,
        )


@dataclass(slots=True)
class RetryBackoff:
    """When to check again what could not be confirmed: doubling delays from
    `RETRY_FIRST_MS` up to `RETRY_MAX_MS`, or sooner/later if the cause knows."""

    attempts: int = 0
    next_at_ms: int = 0

    def due(self, now_ms: int) -> bool:
        """Tells whether a check may run now."""
        return now_ms >= self.next_at_ms

    def wait(self, now_ms: int, hint_ms: int | None = None) -> int:
        """Takes note of one more failed check; returns the delay until the next one."""
        self.attempts += 1
        backoff = min(RETRY_FIRST_MS << min(self.attempts - 1, 16), RETRY_MAX_MS)
        delay = backoff if hint_ms is None else min(max(hint_ms, RETRY_FIRST_MS), RETRY_MAX_MS)
        self.next_at_ms = now_ms + delay
        return delay

    def reset(self) -> None:
        """Forgets the failed checks (what waited was confirmed)."""
        self.attempts = 0
        self.next_at_ms = 0
