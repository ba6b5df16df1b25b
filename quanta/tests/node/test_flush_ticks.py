"""The engine worker's flush loop ticks from the start of its last tick
(`quanta.node.engine_worker.next_tick`), so a tick's own work (a journal commit, a COPY) no
longer lengthens the wait of every quantum for its stream and its persistence. No database.
"""

from __future__ import annotations

import pytest

from quanta.node.engine_worker import next_tick

INTERVAL, REST = 0.05, 0.01


def test_a_short_tick_is_followed_one_interval_after_it_started() -> None:
    # The tick started at 10.00 and its work ended at 10.03: the next starts at 10.05, not
    # at 10.08 as a fixed sleep after the work gave.
    assert next_tick(10.0, 10.03, INTERVAL, REST) == pytest.approx(10.05)


def test_a_tick_that_ran_over_still_rests_and_does_not_catch_up() -> None:
    # 120 ms of work: the loop rests 10 ms instead of running the two missed ticks back to
    # back.
    assert next_tick(10.0, 10.12, INTERVAL, REST) == pytest.approx(10.13)


def test_ticks_keep_their_rate_when_each_tick_works_less_than_an_interval() -> None:
    tick, starts = 0.0, []
    for _ in range(20):
        now = tick + 0.03  # Each tick works 30 ms.
        tick = next_tick(tick, now, INTERVAL, REST)
        starts.append(tick)
    assert starts[-1] == pytest.approx(20 * INTERVAL)
