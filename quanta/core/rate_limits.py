"""Alpha's admission rule: how many requests an account may send per minute and per hour.

Not consensus state: alpha counts requests per account from the timestamps it is given, before
execution, so the counters live outside the accounts and never enter a state hash; auditors
never count (a request alpha admitted is a quantum like any other). The limits are the
settings' `RequestRateLimits`.
"""

from __future__ import annotations

from quanta.core.xdr.schema import RequestRateLimits

MINUTE_MS = 60_000
HOUR_MS = 3_600_000


class _RequestCounter:
    """Counts one account's requests in the current fixed minute and hour windows."""

    __slots__ = ("hour_count", "hour_start_ms", "minute_count", "minute_start_ms")

    def __init__(self, now_ms: int) -> None:
        """Opens both windows at `now_ms`."""
        self.minute_start_ms = now_ms
        self.minute_count = 0
        self.hour_start_ms = now_ms
        self.hour_count = 0


class RateLimiter:
    """Limits requests per account and per minute/hour, from timestamps passed in (ms).

    Windows are fixed: a window opens at the first request after the previous one expired.
    The limiter never reads a clock, so its decisions are reproducible from the timestamps.
    """

    __slots__ = ("_counters", "limits")

    def __init__(self, limits: RequestRateLimits) -> None:
        """Creates a limiter applying `limits` to every account; both must be positive (the
        settings' 0 = unlimited means no limiter at all, see `AlphaNode.settings_changed`)."""
        assert limits.minute_limit > 0, limits
        assert limits.hour_limit > 0, limits
        self.limits = limits
        self._counters: dict[int, _RequestCounter] = {}

    def check_and_count(self, account_id: int, now_ms: int) -> bool:
        """Counts one request at `now_ms` and returns True, or returns False if over a limit.

        A refused request is not counted, so a client that backs off is served again as soon as
        the window that refused it expires.
        """
        counter = self._counters.get(account_id)
        if counter is None:
            counter = _RequestCounter(now_ms)
            self._counters[account_id] = counter
        if now_ms - counter.minute_start_ms >= MINUTE_MS:
            counter.minute_start_ms = now_ms
            counter.minute_count = 0
        if now_ms - counter.hour_start_ms >= HOUR_MS:
            counter.hour_start_ms = now_ms
            counter.hour_count = 0
        limits = self.limits
        if counter.minute_count >= limits.minute_limit:
            return False
        if counter.hour_count >= limits.hour_limit:
            return False
        counter.minute_count += 1
        counter.hour_count += 1
        return True

    def forget(self, account_id: int) -> None:
        """Drops the counters of an account (e.g. after its creation is reverted)."""
        self._counters.pop(account_id, None)
