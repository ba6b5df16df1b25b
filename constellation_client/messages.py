"""Node refusals in a trader's units.

The engine's descriptions carry raw 10^-7 units ("insufficient free balance in USD:
157587000000 available, 999999990000000 needed"); the CLI rewrites the ones it knows into
decimals, the same rules as the page (static/js/ui.js `explainRefusal`). A description it
does not know is shown as it is.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from constellation_client.amounts import format_amount

_Rewrite = Callable[[re.Match[str]], str]


def _insufficient(match: re.Match[str]) -> str:
    asset, free, needed = match.group(1), int(match.group(2)), int(match.group(3))
    return (
        f"not enough {asset}: {format_amount(free)} {asset} available, "
        f"{format_amount(needed)} {asset} needed"
    )


def _lot(match: re.Match[str]) -> str:
    quote, minimum = int(match.group(1)), int(match.group(2))
    return (
        f"the order's total (amount × price) is {format_amount(quote)} in the quote asset, "
        f"below the minimum lot of {format_amount(minimum)}"
    )


def _half_tick(match: re.Match[str]) -> str:
    tick = format_amount(int(match.group(2)))
    return f"price {match.group(1)} is below half a tick (the tick is {tick})"


def _price_max(match: re.Match[str]) -> str:
    return f"price {match.group(1)} exceeds the maximum price {format_amount(int(match.group(2)))}"


REWRITES: tuple[tuple[re.Pattern[str], _Rewrite], ...] = (
    (
        re.compile(r"insufficient free balance in (\w+): (\d+) available, (\d+) needed"),
        _insufficient,
    ),
    (re.compile(r"order quote amount (\d+) is below the minimum lot size (\d+)"), _lot),
    (re.compile(r"price (\S+) is below half a tick \((\d+) units\)"), _half_tick),
    (re.compile(r"price (\S+) exceeds the maximum of (\d+) units"), _price_max),
)


def humanize(description: str) -> str:
    """Returns the description with every known raw-unit phrase in decimals."""
    for pattern, rewrite in REWRITES:
        description = pattern.sub(rewrite, description)
    return description
