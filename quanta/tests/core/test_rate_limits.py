"""Tests of `quanta.core.rate_limits`: alpha's per-account request windows.

Goal: show that rate limiting depends only on the timestamps passed in, counts accounts apart,
opens a new window once the old one expired, does not count refused requests, and lets no
account send a minute's worth in one burst (the abuse run: 1 200 account-data requests in a
few seconds took the engine from every other client, honest p99 1.1 s); and that a
connection's token bucket paces requests. Method: direct calls with fixed values.
"""

from __future__ import annotations

import pytest

from quanta.core.rate_limits import (
    BURST_MS,
    HOUR_MS,
    MINUTE_MS,
    RateLimiter,
    TokenBucket,
    burst_limit,
    rate_cost,
)
from quanta.core.testing import keypair
from quanta.core.xdr.schema import (
    BatchCancelAll,
    OrderBatchRequest,
    OrderCancellationRequest,
    RequestRateLimits,
)


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


def test_an_order_batch_counts_one_per_item() -> None:
    """A batch of 16 orders under one signature is 16 orders' work for the engine: it counted
    as one request, so a client could send 16 times its limit. It counts as its items now,
    and a batch bigger than the short window's limit still fits an empty window."""
    account = keypair(90).public_key
    batch = OrderBatchRequest(1, account, 1, tuple(BatchCancelAll("XLM") for _ in range(16)))
    assert rate_cost(batch) == 16
    assert rate_cost(OrderCancellationRequest(1, account, 1, 7)) == 1
    limiter = RateLimiter(RequestRateLimits(minute_limit=120, hour_limit=36_000))
    assert burst_limit(120) == 20
    assert limiter.check_and_count(1, 0, rate_cost(batch))
    assert not limiter.check_and_count(1, 1, rate_cost(batch)), "16 + 16 > 20 in 10 s"
    assert limiter.check_and_count(1, 2, 4), "the 4 left of the window"
    assert not limiter.check_and_count(1, 3)
    small = RateLimiter(RequestRateLimits(minute_limit=10, hour_limit=100))
    assert small.check_and_count(1, 0, 16), "capped at the window's 10: not refused forever"
    assert not small.check_and_count(1, 1)


def test_an_order_batch_fits_an_empty_hour_smaller_than_the_batch() -> None:
    """With an hour's limit under the batch's size (10 < 16), a batch capped only at the
    10 s window's limit (20) could never be admitted: 16 > 10 in any hour. It is capped at
    the smallest of the three limits."""
    limiter = RateLimiter(RequestRateLimits(minute_limit=120, hour_limit=10))
    assert limiter.check_and_count(1, 0, 16), "capped at the hour's 10: not refused forever"
    assert not limiter.check_and_count(1, MINUTE_MS), "and that spent the hour"
    assert limiter.check_and_count(1, HOUR_MS, 16)


def test_a_minute_s_worth_cannot_be_sent_in_one_burst() -> None:
    limiter = RateLimiter(RequestRateLimits(minute_limit=1_200, hour_limit=36_000))
    assert burst_limit(1_200) == 200
    admitted = sum(limiter.check_and_count(1, now) for now in range(0, 2_000, 2))
    assert admitted == 200, "a sixth of the minute's limit in the first ten seconds"
    assert limiter.check_and_count(1, BURST_MS)
    later = sum(limiter.check_and_count(1, now) for now in range(BURST_MS, MINUTE_MS, 10))
    assert later == 1_200 - 201, "the minute's limit still holds over the whole minute"


@pytest.mark.parametrize(("minute", "burst"), [(1, 1), (2, 2), (20, 20), (60, 20), (600, 100)])
def test_small_limits_keep_their_burst(minute: int, burst: int) -> None:
    assert burst_limit(minute) == burst


def test_a_token_bucket_paces_a_connection() -> None:
    bucket = TokenBucket(rate=2.0, burst=3, now_s=100.0)
    assert [bucket.take(100.0) for _ in range(4)] == [True, True, True, False]
    assert not bucket.take(100.4)  # 0.8 of a token refilled
    assert bucket.take(100.5)
    assert [bucket.take(1_000.0) for _ in range(4)] == [True, True, True, False], "capped"
    assert not bucket.take(999.0), "a clock that goes back refills nothing"
