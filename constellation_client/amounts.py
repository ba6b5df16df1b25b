"""Exact conversion between decimal text and integer amounts in 10^-7 units.

Amounts travel as integers (uint64 of 10^-7 units, SPEC.md "Exchange"); people type decimals.
`decimal.Decimal` keeps the conversion exact: "12.5" is 125_000_000 units, and text with more
than 7 decimals is refused instead of being silently rounded.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

UNITS_PER_WHOLE = 10**7
DECIMALS_MAX = 7
AMOUNT_MAX = 2**64 - 1


class AmountError(ValueError):
    """Signals text that is not a non-negative amount with at most 7 decimals."""


def _decimal(text: str) -> Decimal:
    """Parses finite decimal text, refusing NaN, infinities and garbage."""
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise AmountError(f"not a decimal number: {text!r}") from None
    if not value.is_finite():
        raise AmountError(f"not a finite number: {text!r}")
    return value


def parse_amount(text: str) -> int:
    """Returns the exact number of 10^-7 units written as decimal text (e.g. "12.5")."""
    value = _decimal(text)
    if value < 0:
        raise AmountError(f"amount must not be negative: {text!r}")
    units = value.scaleb(DECIMALS_MAX)
    if units != units.to_integral_value():
        raise AmountError(f"amount has more than {DECIMALS_MAX} decimals: {text!r}")
    if units > AMOUNT_MAX:
        raise AmountError(f"amount too large: {text!r}")
    return int(units)


def parse_price(text: str) -> float:
    """Returns a positive price as the double the wire carries (the node rounds it to the tick)."""
    value = _decimal(text)
    if value <= 0:
        raise AmountError(f"price must be positive: {text!r}")
    return float(value)


def format_amount(units: int) -> str:
    """Returns an amount in 10^-7 units as decimal text without trailing zeros ("12.5")."""
    whole, fraction = divmod(abs(units), UNITS_PER_WHOLE)
    sign = "-" if units < 0 else ""
    if fraction == 0:
        return f"{sign}{whole}"
    return f"{sign}{whole}.{fraction:07d}".rstrip("0")
