"""Admin of the exchange app's rows: accounts, balances and resting orders, read-only.

Registered by `quanta.admin` (which imports this module), not by an `exchange/admin.py`: the
exchange is the ground floor and imports nothing of quanta, while showing an account needs
quanta's key encoding and admin helpers.
The rows are the last persisted snapshot (they trail the engine by up to one batch).
Amounts and prices are integers in units of 10^-7 and are shown as decimals only (the page,
the CLI and the admin speak the same units; the raw integers are in the database).
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from exchange.core.orderbook import Side
from exchange.models import AccountRecord, BalanceRecord, OrderRecord
from quanta.admin_helpers import ReadOnlyAdmin, price, units
from quanta.core.keys import InvalidKey, decode_public_key, encode_public_key


@admin.register(AccountRecord)
class AccountRecordAdmin(ReadOnlyAdmin):
    """Accounts; search by id or by G... public key."""

    list_display = ["id", "public_key_strkey", "nonce", "sequence"]
    fields = ["id", "public_key_strkey", "nonce", "sequence"]
    readonly_fields = fields
    search_fields = ["=id"]
    search_help_text = "account id or G... public key"

    @admin.display(description="public key")
    def public_key_strkey(self, record: AccountRecord) -> str:
        return encode_public_key(bytes(record.public_key))

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Any], search_term: str
    ) -> tuple[QuerySet[Any], bool]:
        term = search_term.strip()
        if term.startswith("G"):
            try:
                return queryset.filter(public_key=decode_public_key(term)), False
            except InvalidKey:
                return queryset.none(), False
        return super().get_search_results(request, queryset, search_term)


@admin.register(BalanceRecord)
class BalanceRecordAdmin(ReadOnlyAdmin):
    """Balances per account and asset, with the liabilities open orders lock."""

    list_display = ["account", "asset", "amount_units", "liabilities_units", "available_units"]
    list_filter = ["asset"]
    search_fields = ["=account"]
    search_help_text = "account id"
    ordering = ["account", "asset"]

    @admin.display(description="balance")
    def amount_units(self, record: BalanceRecord) -> str:
        return units(record.amount)

    @admin.display(description="liabilities")
    def liabilities_units(self, record: BalanceRecord) -> str:
        return units(record.liabilities)

    @admin.display(description="available")
    def available_units(self, record: BalanceRecord) -> str:
        return units(int(record.amount) - int(record.liabilities))


class SideFilter(admin.SimpleListFilter):
    """Filters orders by side, named ("buy"/"sell") rather than the stored 1/2."""

    title = "side"
    parameter_name = "side"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("buy", "buy"), ("sell", "sell")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if value is None:
            return queryset
        return queryset.filter(side=int(Side.BUY if value == "buy" else Side.SELL))


@admin.register(OrderRecord)
class OrderRecordAdmin(ReadOnlyAdmin):
    """Orders resting on the books (id = apex of the quantum that placed them)."""

    list_display = [
        "order_id",
        "account",
        "client_order_id",
        "asset",
        "side_name",
        "price_decimal",
        "amount_units",
    ]
    list_filter = ["asset", SideFilter]
    search_fields = ["=order_id", "=account", "=client_order_id"]
    search_help_text = "order id, account id or client order id"

    @admin.display(description="side")
    def side_name(self, record: OrderRecord) -> str:
        return Side(record.side).name.lower()

    @admin.display(description="amount")
    def amount_units(self, record: OrderRecord) -> str:
        return units(record.amount)

    @admin.display(description="price")
    def price_decimal(self, record: OrderRecord) -> str:
        return price(record.price)
