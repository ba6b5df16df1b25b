"""What every app's read-only admin shares: amounts shown in whole units, preformatted text,
and a ModelAdmin that only browses."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import Model
from django.http import HttpRequest
from django.utils.html import format_html

UNITS_PER_ONE = 10_000_000


PRICE_DECIMALS = 3
"""The default tick is 0.001 (exchange.core.amounts.TICK_SIZE_DEFAULT)."""


def units(amount: object) -> str:
    """Returns an integer amount of 10^-7 units as exact decimal text ("12.5"), as the page
    and the CLI show it."""
    whole, fraction = divmod(int(str(amount)), UNITS_PER_ONE)
    if fraction == 0:
        return str(whole)
    return f"{whole}.{fraction:07d}".rstrip("0")


def price(amount: object) -> str:
    """Returns an integer price of 10^-7 quote units with the tick's decimals ("0.130")."""
    whole, fraction = divmod(int(str(amount)), UNITS_PER_ONE)
    return f"{whole}.{fraction:07d}"[: len(str(whole)) + 1 + PRICE_DECIMALS]


def pre(text: str) -> str:
    """Returns text shown as a preformatted block in the admin."""
    return format_html('<pre style="white-space: pre-wrap">{}</pre>', text)


class ReadOnlyAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Browsing only: rows change through quanta, never by hand."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False
