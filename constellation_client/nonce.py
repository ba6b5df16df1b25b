"""Request nonces that strictly increase, even across client restarts.

A node accepts a request only if its nonce is greater than the account's last one. Taking
max(last + 1, current time in microseconds) satisfies that without asking the node for the
last nonce: a restarted client starts from the clock, which is ahead of every nonce an earlier
run used as long as that run sent fewer than one request per microsecond on average, and the
`last + 1` term keeps the sequence increasing when requests come faster or the clock steps back.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class NonceSource:
    """Hands out strictly increasing nonces: max(last + 1, time in microseconds)."""

    def __init__(self, last: int = 0, clock_ns: Callable[[], int] = time.time_ns) -> None:
        """Starts after `last`; `clock_ns` returns nanoseconds (replaceable in tests)."""
        self._last = last
        self._clock_ns = clock_ns

    @property
    def last(self) -> int:
        """Returns the last nonce handed out (or observed)."""
        return self._last

    def next(self) -> int:
        """Returns a nonce greater than every earlier one."""
        self._last = max(self._last + 1, self._clock_ns() // 1000)
        return self._last

    def observe(self, nonce: int) -> None:
        """Records a nonce the node reports as used, so later nonces exceed it."""
        self._last = max(self._last, nonce)
