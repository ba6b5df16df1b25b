"""Goal: decimal text converts exactly to 10^-7 units and back; bad text is refused.

Method: table-driven examples at the edges (7 decimals, uint64 maximum, exponents, junk)."""

from __future__ import annotations

import pytest

from constellation_client.amounts import AmountError, format_amount, parse_amount, parse_price


@pytest.mark.parametrize(
    ("text", "units"),
    [
        ("12.5", 125_000_000),
        ("0", 0),
        ("0.0000001", 1),
        ("1", 10_000_000),
        (" 3.1400000 ", 31_400_000),
        ("1e-7", 1),
        ("1844674407370.9551615", 2**64 - 1),
        ("0.1", 1_000_000),
    ],
)
def test_parse_amount_is_exact(text: str, units: int) -> None:
    assert parse_amount(text) == units


@pytest.mark.parametrize(
    "text",
    ["0.00000001", "-1", "-0.5", "abc", "", "NaN", "Infinity", "1844674407370.9551616", "1,5"],
)
def test_parse_amount_refuses(text: str) -> None:
    with pytest.raises(AmountError):
        parse_amount(text)


@pytest.mark.parametrize("units", [0, 1, 125_000_000, 10_000_000, 2**64 - 1, 31_400_001])
def test_format_amount_round_trips(units: int) -> None:
    assert parse_amount(format_amount(units)) == units


def test_format_amount_drops_trailing_zeros() -> None:
    assert format_amount(125_000_000) == "12.5"
    assert format_amount(10_000_000) == "1"
    assert format_amount(1) == "0.0000001"


def test_parse_price_gives_the_wire_double() -> None:
    assert parse_price("0.25") == 0.25


@pytest.mark.parametrize("text", ["0", "-1", "nan", "inf", "x"])
def test_parse_price_refuses_non_positive_or_non_finite(text: str) -> None:
    with pytest.raises(AmountError):
        parse_price(text)
