"""Hypothesis strategies shared by the exchange core tests (amounts, prices, order intents)."""

from __future__ import annotations

from hypothesis import strategies as st

from exchange.core.amounts import PRICE_UNITS_MAX, TICK_SIZE_DEFAULT
from exchange.core.matching import TimeInForce
from exchange.core.orderbook import Side

AMOUNT_TEST_MAX = 10**13
"""Largest amount drawn (10^6 whole units): large enough for rounding, far from overflow."""


def amounts() -> st.SearchStrategy[int]:
    """Draws positive amounts in 10^-7 units, biased to small values by Hypothesis."""
    return st.integers(min_value=1, max_value=AMOUNT_TEST_MAX)


def price_units() -> st.SearchStrategy[int]:
    """Draws valid prices in units: positive multiples of the default tick."""
    return st.integers(1, PRICE_UNITS_MAX // TICK_SIZE_DEFAULT).map(
        lambda ticks: ticks * TICK_SIZE_DEFAULT
    )


def sides() -> st.SearchStrategy[Side]:
    """Draws an order side."""
    return st.sampled_from([Side.SELL, Side.BUY])


def times_in_force() -> st.SearchStrategy[TimeInForce]:
    """Draws a time in force, mostly GTC so that books fill up."""
    return st.sampled_from(
        [
            TimeInForce.GOOD_TILL_EXPIRE,
            TimeInForce.GOOD_TILL_EXPIRE,
            TimeInForce.IMMEDIATE_OR_CANCEL,
        ]
    )


def book_prices() -> st.SearchStrategy[int]:
    """Draws prices from a narrow band of ticks around 1.0, so orders cross often."""
    return st.integers(995, 1_005).map(lambda ticks: ticks * TICK_SIZE_DEFAULT)


def book_amounts() -> st.SearchStrategy[int]:
    """Draws order amounts small enough that partial fills and exact fills both happen."""
    return st.integers(1, 50).map(lambda lots: lots * 1_000_000 + lots % 7)
