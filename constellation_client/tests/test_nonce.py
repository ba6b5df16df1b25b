"""Goal: nonces strictly increase whatever the clock does.

Method: a scripted clock that stands still, jumps back and jumps forward."""

from __future__ import annotations

import time
from collections.abc import Iterator

from constellation_client.nonce import NonceSource


def _clock(values_us: list[int]) -> Iterator[int]:
    return iter(value * 1000 for value in values_us)


def test_nonce_follows_the_clock_in_microseconds() -> None:
    ticks = _clock([1_000, 2_000])
    source = NonceSource(clock_ns=lambda: next(ticks))
    assert [source.next(), source.next()] == [1_000, 2_000]


def test_nonce_increases_when_the_clock_stands_still_or_goes_back() -> None:
    ticks = _clock([5_000, 5_000, 4_000, 6_000])
    source = NonceSource(clock_ns=lambda: next(ticks))
    assert [source.next() for _ in range(4)] == [5_000, 5_001, 5_002, 6_000]


def test_nonce_exceeds_an_observed_nonce() -> None:
    source = NonceSource(clock_ns=lambda: 1_000_000)
    source.observe(10_000)
    assert source.next() == 10_001
    source.observe(5)
    assert source.next() == 10_002


def test_real_clock_nonces_are_strictly_increasing() -> None:
    source = NonceSource()
    nonces = [source.next() for _ in range(1000)]
    assert all(later > earlier for earlier, later in zip(nonces, nonces[1:], strict=False))


def test_restarted_source_starts_above_an_earlier_run() -> None:
    # The guarantee holds when the earlier run averaged under one request per microsecond:
    # here 100 requests, then a 1 ms pause standing for the restart.
    first = NonceSource()
    last = max(first.next() for _ in range(100))
    time.sleep(0.001)
    assert NonceSource().next() > last
