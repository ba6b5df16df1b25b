"""Channel group names of the chronicler's public market data, in one place.

One group per subscription key: `md.<feed>.<market>` and `md.frames.<market>.<period>`.
Asset codes are short alphanumerics, so every name stays within the channel layer's rules.
"""

from __future__ import annotations

FEEDS = ("depth", "trades", "ticker", "frames")
"""Feeds a client may subscribe to."""


def market_group(feed: str, market: str, period: str | None = None) -> str:
    """Returns the group the engine publishes `feed` of `market` (and `period`) to."""
    assert feed in FEEDS, feed
    suffix = f".{period}" if period is not None else ""
    return f"md.{feed}.{market}{suffix}"
