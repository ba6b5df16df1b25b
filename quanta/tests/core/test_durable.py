"""The persisted prefix: how far alpha's final quanta are on disk with no hole below.

Goal: payouts trust only the gap-free prefix, so a row persisted above a missing one (final
out of apex order) must not move it, and filling the hole must move it over both."""

from __future__ import annotations

from quanta.core.durable import PersistedPrefix, gap_free_count


def test_the_prefix_starts_at_what_was_loaded_and_follows_in_order_rows() -> None:
    prefix = PersistedPrefix(10)
    prefix.persisted([11, 12])
    assert prefix.apex == 12


def test_a_row_above_a_hole_does_not_move_the_prefix_until_the_hole_is_filled() -> None:
    prefix = PersistedPrefix(10)
    prefix.persisted([12, 14])
    assert prefix.apex == 10
    prefix.persisted([11])
    assert prefix.apex == 12
    prefix.persisted([13])
    assert prefix.apex == 14


def test_rows_at_or_below_the_prefix_change_nothing() -> None:
    prefix = PersistedPrefix(10)
    prefix.persisted([3, 10, 10])
    assert prefix.apex == 10
    prefix.persisted([11])
    assert prefix.apex == 11


def test_the_replayable_rows_end_at_the_first_hole() -> None:
    assert gap_free_count([5, 6, 7], 4) == 3
    assert gap_free_count([5, 6, 9, 10], 4) == 2
    assert gap_free_count([6, 7], 4) == 0, "the first row above the snapshot is missing"
    assert gap_free_count([], 4) == 0
