"""Alpha's admission rule: how many requests an account may send per minute and per hour, and the
token bucket that paces what a connection may ask of a web process.

Not consensus state: alpha counts requests per account from the timestamps it is given, before
execution, so the counters live outside the accounts and never enter a state hash; auditors
never count (a request alpha admitted is a quantum like any other). The limits are the
settings' `RequestRateLimits`, and no more than a sixth of the minute's limit (at least 20, or
the whole minute's if less) in one `BURST_MS` window: a minute's worth sent in one burst (1 200
account-data requests in two seconds) would otherwise take the sequential engine from every
other client for that long.
"""

from __future__ import annotations

from quanta.core.xdr.schema import OrderBatchRequest, RequestRateLimits

MINUTE_MS = 60_000
HOUR_MS = 3_600_000
BURST_MS = 10_000
"""The short window: at most `burst_limit(minute_limit)` requests in it."""


BURST_FLOOR = 20
"""Small limits are not cut shorter than this in the short window (a client may send its
few requests of a minute together)."""


def burst_limit(minute_limit: int) -> int:
    """Returns how many requests an account may send in one `BURST_MS` window: the minute's
    share of it, rounded up, but not under BURST_FLOOR (nor over the minute's limit)."""
    share = -(-minute_limit * BURST_MS // MINUTE_MS)
    return max(share, min(minute_limit, BURST_FLOOR))


def rate_cost(request: object) -> int:
    """Returns how many requests a client request counts as against the account's limits: an
    order batch one per order or cancellation it holds (up to 16 under one signature, each as
    much work for the engine as a request of its own), anything else one."""
    if isinstance(request, OrderBatchRequest):
        return len(request.items)
    return 1


class TokenBucket:
    """Paces one connection's requests: `rate` per second on average, `burst` at once.

    From timestamps passed in (monotonic seconds), so it is tested without a clock."""

    __slots__ = ("_stamp", "_tokens", "burst", "rate")

    def __init__(self, rate: float, burst: int, now_s: float) -> None:
        """Starts full: a connection may at once send `burst` requests."""
        assert rate > 0 and burst >= 1
        self.rate = rate
        self.burst = burst
        self._tokens = float(burst)
        self._stamp = now_s

    def take(self, now_s: float, cost: float = 1.0) -> bool:
        """Takes `cost` tokens and returns True, or returns False if fewer are left."""
        assert 0 < cost <= self.burst
        elapsed = max(0.0, now_s - self._stamp)
        self._stamp = now_s
        self._tokens = min(float(self.burst), self._tokens + elapsed * self.rate)
        if self._tokens < cost:
            return False
        self._tokens -= cost
        return True


class _RequestCounter:
    """Counts one account's requests in the current fixed burst, minute and hour windows."""

    __slots__ = (
        "burst_count",
        "burst_start_ms",
        "hour_count",
        "hour_start_ms",
        "minute_count",
        "minute_start_ms",
    )

    def __init__(self, now_ms: int) -> None:
        """Opens the three windows at `now_ms`."""
        self.burst_start_ms = now_ms
        self.burst_count = 0
        self.minute_start_ms = now_ms
        self.minute_count = 0
        self.hour_start_ms = now_ms
        self.hour_count = 0


class RateLimiter:
    """Limits requests per account and per minute/hour, from timestamps passed in (ms).

    Windows are fixed: a window opens at the first request after the previous one expired.
    The limiter never reads a clock, so its decisions are reproducible from the timestamps.
    """

    __slots__ = ("_burst_limit", "_cost_max", "_counters", "limits", "refused_count")

    def __init__(self, limits: RequestRateLimits) -> None:
        """Creates a limiter applying `limits` to every account; both must be positive (the
        settings' 0 = unlimited means no limiter at all, see `AlphaNode.settings_changed`)."""
        assert limits.minute_limit > 0, limits
        assert limits.hour_limit > 0, limits
        self.limits = limits
        self._burst_limit = burst_limit(limits.minute_limit)
        # The most one request counts: the smallest window's whole limit, so that any request
        # fits a window that is empty (a batch over an hour's limit of 10 would never fit).
        self._cost_max = min(self._burst_limit, limits.minute_limit, limits.hour_limit)
        self._counters: dict[int, _RequestCounter] = {}
        # Requests refused so far, for the node's metrics (429s by cause).
        self.refused_count = 0

    def check_and_count(self, account_id: int, now_ms: int, cost: int = 1) -> bool:
        """Counts a request of `cost` units at `now_ms` (an order batch: one per item, at most
        the smallest window's whole limit, so any batch fits in empty windows) and returns
        True, or returns False if it would go over a limit.

        A refused request is not counted, so a client that backs off is served again as soon as
        the window that refused it expires.
        """
        cost = max(1, min(cost, self._cost_max))
        counter = self._counters.get(account_id)
        if counter is None:
            counter = _RequestCounter(now_ms)
            self._counters[account_id] = counter
        if now_ms - counter.burst_start_ms >= BURST_MS:
            counter.burst_start_ms = now_ms
            counter.burst_count = 0
        if now_ms - counter.minute_start_ms >= MINUTE_MS:
            counter.minute_start_ms = now_ms
            counter.minute_count = 0
        if now_ms - counter.hour_start_ms >= HOUR_MS:
            counter.hour_start_ms = now_ms
            counter.hour_count = 0
        limits = self.limits
        if (
            counter.burst_count + cost > self._burst_limit
            or counter.minute_count + cost > limits.minute_limit
            or counter.hour_count + cost > limits.hour_limit
        ):
            self.refused_count += 1
            return False
        counter.burst_count += cost
        counter.minute_count += cost
        counter.hour_count += cost
        return True

    def forget(self, account_id: int) -> None:
        """Drops the counters of an account (e.g. after its creation is reverted)."""
        self._counters.pop(account_id, None)
