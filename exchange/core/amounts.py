"""Integer amounts and prices of the exchange core: scales, the price conversion, quote rounding.

Every amount in Constellation is an `int` counted in units of 10^-7 (`AMOUNT_SCALE`), and every
price is an `int` counted in quote units per one whole asset unit (`PRICE_SCALE`), always a
multiple of the market's tick. The wire carries prices as doubles; `price_to_units` is the one
place where such a double enters the core, and `quote_amount` is the one place where an
amount is multiplied by a price. Nothing else in the core touches floating point.
"""

from __future__ import annotations

import math

AMOUNT_SCALE = 10_000_000
"""Units per whole asset: amounts are integers in units of 10^-7."""

U64_MAX = 2**64 - 1
"""Largest amount a balance, an order or a trade may hold (the wire type is an unsigned 64-bit)."""

PRICE_SCALE = 10_000_000
"""Price units per whole quote unit per whole asset unit: price 1.5 is 15_000_000."""

TICK_SIZE_DEFAULT = 10_000
"""Default tick of a market in price units (0.001 quote per asset)."""

PRICE_UNITS_MAX = 10**15
"""Largest accepted price in price units (10^8 quote per asset).

With amounts bounded by `U64_MAX` the product amount·price stays below 2^114, so the exact
integer arithmetic of `quote_amount` stays cheap; a quote amount that still exceeds `U64_MAX`
is refused by `quote_amount` itself.
"""


class InvalidPrice(ValueError):  # noqa: N818 (public name fixed by the API)
    """Signals a wire price that cannot be turned into a positive whole number of ticks."""


class AmountOverflow(ValueError):  # noqa: N818 (public name fixed by the API)
    """Signals an amount that would leave the unsigned 64-bit range."""


class NegativeAmount(ValueError):  # noqa: N818 (named like AmountOverflow)
    """Signals an amount or a subtraction result that would be negative."""


def price_to_units(price: float, tick: int = TICK_SIZE_DEFAULT) -> int:
    """Converts a wire price (a double) into integer price units, rounded to the tick.

    The double is taken at its exact binary value (`Fraction(price)`), scaled to ticks and
    rounded half to even, so the result never depends on decimal printing or on the platform.
    Returns the number of ticks times `tick`. Raises `InvalidPrice` for NaN, infinities, zero
    or negative prices, prices that round to zero ticks and prices above `PRICE_UNITS_MAX`.
    """
    assert tick > 0
    if not math.isfinite(price):
        raise InvalidPrice(f"price must be finite, got {price!r}")
    if price <= 0:
        raise InvalidPrice(f"price must be positive, got {price!r}")
    ticks = _round_half_even(price, PRICE_SCALE, tick)
    if ticks == 0:
        raise InvalidPrice(f"price {price!r} is below half a tick ({tick} units)")
    units = ticks * tick
    if units > PRICE_UNITS_MAX:
        raise InvalidPrice(f"price {price!r} exceeds the maximum of {PRICE_UNITS_MAX} units")
    return units


def _round_half_even(value: float, multiplier: int, divisor: int) -> int:
    """Returns value·multiplier/divisor rounded half to even, exactly, for a positive double.

    Same result as `round(Fraction(value) * multiplier / divisor)` (the double's exact binary
    value, no intermediate double), in integer arithmetic: this runs on every order."""
    numerator, denominator = value.as_integer_ratio()
    quotient, remainder = divmod(numerator * multiplier, denominator * divisor)
    twice, whole = 2 * remainder, denominator * divisor
    if twice > whole or (twice == whole and quotient & 1):
        quotient += 1
    return quotient


def quote_amount(amount: int, price: int, *, round_up: bool) -> int:
    """Returns amount·price / PRICE_SCALE in quote units, rounded up or down.

    The whole rounding rule of the exchange lives here:

    - a buy order locks `quote_amount(amount, price, round_up=True)`, i.e. ceil(amount·price),
      and a resting bid always holds ceil(remaining·price) as liabilities;
    - every trade moves `quote_amount(fill, maker_price, round_up=False)`, i.e.
      floor(fill·price), from the buyer to the seller, and that is also what a seller receives.

    Because a sum of floors never exceeds the ceiling of the sum (and a fill at a better maker
    price costs no more than at the taker's limit), the buyer's lock always covers what it
    pays, and the release of ceil(before) - ceil(after) on a partial fill is always at least
    what that fill paid. Quote leaves one account exactly as it enters the other, so
    conservation is exact and no 0.1% cushion (as in Centaurus) is needed.

    Raises `AmountOverflow` if the result does not fit into `U64_MAX`.
    """
    assert amount >= 0
    assert price > 0
    product = amount * price
    if round_up:
        # Floor division of the negated product is the ceiling, exact on ints.
        result = -(-product // PRICE_SCALE)
    else:
        result = product // PRICE_SCALE
    if result > U64_MAX:
        raise AmountOverflow(f"quote amount {result} exceeds {U64_MAX}")
    return result


def check_u64(amount: int) -> int:
    """Returns `amount` unchanged if it lies in [0, U64_MAX]; raises otherwise."""
    if amount < 0:
        raise NegativeAmount(f"amount {amount} is negative")
    if amount > U64_MAX:
        raise AmountOverflow(f"amount {amount} exceeds {U64_MAX}")
    return amount


def add_u64(a: int, b: int) -> int:
    """Returns a + b for two non-negative amounts, raising `AmountOverflow` past `U64_MAX`."""
    if a < 0 or b < 0:
        raise NegativeAmount(f"cannot add negative amounts ({a}, {b})")
    total = a + b
    if total > U64_MAX:
        raise AmountOverflow(f"{a} + {b} exceeds {U64_MAX}")
    return total


def sub_u64(a: int, b: int) -> int:
    """Returns a - b for two non-negative amounts, raising `NegativeAmount` if b exceeds a."""
    if a < 0 or b < 0:
        raise NegativeAmount(f"cannot subtract negative amounts ({a}, {b})")
    if b > a:
        raise NegativeAmount(f"{a} - {b} is negative")
    return a - b
