"""Tests of `exchange.core.amounts`: the one price conversion and the one quote rounding rule.

Goal: prove the price conversion takes the double at its exact binary value and rounds half to
even on ticks, that invalid prices are refused, and that the ceil/floor quote rule keeps every
buyer's lock sufficient. Method: fixed vectors, then Hypothesis over random splits of a fill.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from exchange.core.amounts import (
    PRICE_SCALE,
    PRICE_UNITS_MAX,
    TICK_SIZE_DEFAULT,
    U64_MAX,
    AmountOverflow,
    InvalidPrice,
    NegativeAmount,
    add_u64,
    check_u64,
    price_to_units,
    quote_amount,
    sub_u64,
)
from exchange.tests.core.strategies import amounts, price_units


@pytest.mark.parametrize(
    ("price", "units"),
    [
        (1.0, 10_000_000),
        (1.5, 15_000_000),
        (0.1, 1_000_000),
        (0.001, 10_000),
        (123.456, 1_234_560_000),
        # 1.0005 is 1.000499999... in binary, so it is below the half tick and rounds down.
        (1.0005, 10_000_000),
        # 0.0005 is 0.000500000000000000010... in binary: just above half a tick, so 1 tick.
        (0.0005, 10_000),
        # Exact halves (representable in binary) go to the even tick.
        (0.0625, 620_000),
        (0.1875, 1_880_000),
        (100_000_000.0, PRICE_UNITS_MAX),
    ],
)
def test_price_to_units_rounds_exact_binary_value_half_even(price: float, units: int) -> None:
    assert price_to_units(price) == units


@pytest.mark.parametrize(
    "price", [math.nan, math.inf, -math.inf, 0.0, -0.0, -1.0, 1e-8, 0.0004, 100_000_000.1]
)
def test_price_to_units_rejects_invalid_prices(price: float) -> None:
    with pytest.raises(InvalidPrice):
        price_to_units(price)


def test_price_to_units_uses_the_given_tick() -> None:
    assert price_to_units(1.23456, tick=1) == 12_345_600
    assert price_to_units(1.25, tick=5_000_000) == 10_000_000  # 2.5 ticks -> 2 (even)
    assert price_to_units(1.75, tick=5_000_000) == 20_000_000  # 3.5 ticks -> 4 (even)


@given(st.floats(min_value=0.001, max_value=1e8, allow_nan=False, allow_infinity=False))
def test_price_to_units_is_a_multiple_of_the_tick_within_half_a_tick(price: float) -> None:
    units = price_to_units(price)
    assert units % TICK_SIZE_DEFAULT == 0
    assert abs(units - price * PRICE_SCALE) <= TICK_SIZE_DEFAULT / 2 + 1e-6 * price


@pytest.mark.parametrize(
    ("amount", "price", "up", "down"),
    [
        (10_000_000, 15_000_000, 15_000_000, 15_000_000),
        (1, 15_000_000, 2, 1),
        (3, 3_330_000, 1, 0),
        (0, 15_000_000, 0, 0),
        (12_345_678, 10_010_000, 12_358_024, 12_358_023),
        (7, PRICE_SCALE, 7, 7),
    ],
)
def test_quote_amount_rounds_up_for_locks_and_down_for_trades(
    amount: int, price: int, up: int, down: int
) -> None:
    assert quote_amount(amount, price, round_up=True) == up
    assert quote_amount(amount, price, round_up=False) == down


def test_quote_amount_refuses_results_beyond_u64() -> None:
    with pytest.raises(AmountOverflow):
        quote_amount(U64_MAX, 2 * PRICE_SCALE, round_up=False)


@given(amounts(), price_units(), st.lists(st.integers(1, 10**6), min_size=1, max_size=20))
def test_sum_of_floored_fills_never_exceeds_ceiled_lock(
    total: int, price: int, weights: list[int]
) -> None:
    """A buyer locking ceil(total·p) can always pay floor(fill·p) for every fill of a split."""
    assume(-(-total * price // PRICE_SCALE) <= U64_MAX)  # Larger orders are refused upstream.
    fills = _split(total, weights)
    assert sum(fills) == total
    paid = sum(quote_amount(fill, price, round_up=False) for fill in fills)
    assert paid <= quote_amount(total, price, round_up=True)


@given(amounts(), price_units(), st.integers(0, 10**12))
def test_partial_fill_releases_at_least_what_it_pays(total: int, price: int, cut: int) -> None:
    """The lock released by a fill, ceil(a·p) - ceil((a-f)·p), covers floor(f·p)."""
    assume(-(-total * price // PRICE_SCALE) <= U64_MAX)  # Larger orders are refused upstream.
    fill = cut % total + 1
    released = quote_amount(total, price, round_up=True) - quote_amount(
        total - fill, price, round_up=True
    )
    assert released >= quote_amount(fill, price, round_up=False)


def _split(total: int, weights: list[int]) -> list[int]:
    """Splits `total` into len(weights) parts proportional to `weights` (last takes the rest)."""
    weight_sum = sum(weights)
    parts = [total * weight // weight_sum for weight in weights[:-1]]
    parts.append(total - sum(parts))
    return parts


def test_checked_helpers() -> None:
    assert add_u64(U64_MAX - 1, 1) == U64_MAX
    assert sub_u64(5, 5) == 0
    assert check_u64(U64_MAX) == U64_MAX
    with pytest.raises(AmountOverflow):
        add_u64(U64_MAX, 1)
    with pytest.raises(NegativeAmount):
        sub_u64(4, 5)
    with pytest.raises(NegativeAmount):
        add_u64(-1, 1)
    with pytest.raises(NegativeAmount):
        check_u64(-1)
    with pytest.raises(AmountOverflow):
        check_u64(U64_MAX + 1)
    assert issubclass(NegativeAmount, ValueError)
