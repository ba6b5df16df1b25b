"""Tests of `quanta.core.rate_limits`: alpha's per-account request windows.

Goal: show that rate limiting depends only on the timestamps passed in, counts accounts apart,
opens a new window once the old one expired, and does not count refused requests. Method:
direct calls with fixed values.
"""

from __future__ import annotations

import pytest

from quanta.core.rate_limits import HOUR_MS, MINUTE_MS, RateLimiter
from quanta.core.xdr.schema import RequestRateLimits


def test_rate_limiter_minute_window() -> None:
    limiter = RateLimiter(RequestRateLimits(minute_limit=2, hour_limit=100))
    assert limiter.check_and_count(1, 0)
    assert limiter.check_and_count(1, 10)
    assert not limiter.check_and_count(1, MINUTE_MS - 1)
    assert limiter.check_and_count(2, 20)  # other accounts are counted apart
    assert limiter.check_and_count(1, MINUTE_MS)  # a new window opens


def test_rate_limiter_hour_window_and_refusals_are_not_counted() -> None:
    limiter = RateLimiter(RequestRateLimits(minute_limit=100, hour_limit=3))
    now = 0
    for _ in range(3):
        assert limiter.check_and_count(1, now)
        now += MINUTE_MS
    for _ in range(10):
        assert not limiter.check_and_count(1, now)
    assert limiter.check_and_count(1, HOUR_MS)


@pytest.mark.parametrize(("minute", "hour"), [(0, 10), (10, 0), (0, 0)])
def test_rate_limiter_takes_positive_limits_only(minute: int, hour: int) -> None:
    """0 means unlimited in the settings, which alpha implements as no limiter at all."""
    with pytest.raises(AssertionError):
        RateLimiter(RequestRateLimits(minute, hour))
