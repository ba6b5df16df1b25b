"""Goal: one account's sequence numbers on one connection tell replays from legitimately late
results, and report the sequences that never arrive.

Method: drive `SequenceTracker` with a scripted clock: in-order, out-of-order within the grace
period, repeats of the same quantum, other quanta at a seen sequence, old sequences after the
grace period, and holes that stay open. The pure helpers that find the account's own group
and its proven nonces are checked on the builders' groups.
"""

from __future__ import annotations

from constellation_client.binding import (
    Sequenced,
    SequenceTracker,
    own_group,
    proven_nonces,
)
from constellation_client.tests.builders import auditors, other_group, signed_result
from constellation_client.tests.builders import own_group as build_own_group
from quanta.core.xdr.schema import AccountCreateEffect, EffectsGroup, NonceUpdateEffect


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def tracker(clock: Clock, gaps: list[tuple[int, int]] | None = None) -> SequenceTracker:
    sink = gaps if gaps is not None else []
    return SequenceTracker(grace_s=10.0, clock=clock, on_gap=lambda a, b: sink.append((a, b)))


def test_in_order_sequences_are_new_and_repeats_of_a_quantum_are_seen() -> None:
    sequences = tracker(Clock())
    assert sequences.observe(5, "q5").verdict is Sequenced.NEW
    assert sequences.observe(6, "q6").verdict is Sequenced.NEW
    assert sequences.observe(6, "q6").verdict is Sequenced.SEEN
    assert sequences.highest == 6 and sequences.gaps == 0


def test_another_quantum_at_a_seen_sequence_is_a_replay() -> None:
    sequences = tracker(Clock())
    sequences.observe(5, "q5")
    observation = sequences.observe(5, "forged")
    assert observation.verdict is Sequenced.REPLAY
    assert observation.reason == "account sequence 5 already seen for another quantum"


def test_a_late_sequence_within_the_grace_period_fills_its_hole() -> None:
    """Alpha acknowledges the client's own request at once but notifies of an earlier quantum
    only once final: sequence 7 may come before 6."""
    clock, gaps = Clock(), list[tuple[int, int]]()
    sequences = tracker(clock, gaps)
    sequences.observe(5, "q5")
    sequences.observe(7, "q7")
    clock.now += 5
    assert sequences.observe(6, "q6").verdict is Sequenced.NEW
    clock.now += 20
    sequences.settle()
    assert gaps == [] and sequences.gaps == 0


def test_a_hole_that_stays_open_is_reported_once_as_a_gap() -> None:
    clock, gaps = Clock(), list[tuple[int, int]]()
    sequences = tracker(clock, gaps)
    sequences.observe(5, "q5")
    sequences.observe(9, "q9")
    clock.now += 11
    sequences.settle()
    sequences.settle()
    assert gaps == [(6, 8)] and sequences.gaps == 3


def test_only_holes_open_longer_than_the_grace_are_gaps_and_what_lies_above_stays() -> None:
    clock, gaps = Clock(), list[tuple[int, int]]()
    sequences = tracker(clock, gaps)
    sequences.observe(1, "q1")
    sequences.observe(3, "q3")  # hole 2, opened at 100
    clock.now += 5
    sequences.observe(6, "q6")  # holes 4 and 5, opened at 105
    sequences.observe(4, "q4")  # fills 4
    clock.now += 6  # 2 is overdue, 5 is not yet
    sequences.settle()
    assert gaps == [(2, 2)]
    assert sequences.observe(6, "q6").verdict is Sequenced.SEEN, "above the open hole 5"
    assert sequences.observe(3, "other").verdict is Sequenced.REPLAY, "at or below the floor"
    sequences.observe(5, "q5")
    clock.now += 20
    sequences.settle()
    assert gaps == [(2, 2)] and sequences.gaps == 1


def test_an_old_sequence_after_the_grace_period_is_a_replay() -> None:
    clock = Clock()
    sequences = tracker(clock)
    sequences.observe(5, "q5")
    sequences.observe(9, "q9")
    clock.now += 11
    sequences.settle()
    observation = sequences.observe(4, "old")
    assert observation.verdict is Sequenced.REPLAY
    assert observation.reason == "account sequence 4 ≤ 9"
    assert sequences.observe(9, "q9").verdict is Sequenced.REPLAY  # forgotten once settled
    assert sequences.replays == 2


def test_lower_sequences_than_the_first_are_accepted_early_on() -> None:
    """Quanta executed before the client connected may become final just after."""
    clock = Clock()
    sequences = tracker(clock)
    sequences.observe(10, "q10")
    clock.now += 2
    assert sequences.observe(9, "q9").verdict is Sequenced.NEW
    assert sequences.observe(9, "q9").verdict is Sequenced.SEEN


def test_a_huge_jump_is_reported_at_once_without_holding_every_hole() -> None:
    gaps: list[tuple[int, int]] = []
    sequences = tracker(Clock(), gaps)
    sequences.observe(1, "q1")
    sequences.observe(1_000_000, "far")
    assert gaps == [(2, 999_999)]


# --- the account's own group ----------------------------------------------------------------


def test_own_group_is_the_full_group_of_the_account() -> None:
    message = signed_result([(0, auditors(1)[0])])
    assert own_group(message, 7, bytes(32)) == build_own_group()
    assert own_group(message, 9, bytes(32)) is None  # only a hash of account 9's group


def test_without_an_account_yet_own_group_is_the_one_creating_it() -> None:
    key = bytes(range(32))
    created = EffectsGroup(12, 1, (AccountCreateEffect(12, key),))
    message = signed_result([(0, auditors(1)[0])], effects=(other_group(), created))
    assert own_group(message, 0, key) == created
    assert own_group(message, 0, bytes(32)) is None


def test_proven_nonces_are_those_of_nonce_updates() -> None:
    assert proven_nonces(build_own_group(nonce=1234)) == (1234,)
    assert proven_nonces(EffectsGroup(7, 1, (NonceUpdateEffect(3, 2),))) == (3,)
    assert proven_nonces(other_group()) == ()
