"""Admin of the payments app: pending withdrawals and the local ledger, read-only."""

from __future__ import annotations

from django.contrib import admin

from payments.models import LedgerTransfer, WithdrawalRecord
from quanta.admin_helpers import ReadOnlyAdmin, units


@admin.register(WithdrawalRecord)
class WithdrawalRecordAdmin(ReadOnlyAdmin):
    """Withdrawals waiting for their provider (id = apex of their quantum)."""

    list_display = ["withdrawal_id", "account", "provider", "asset", "amount_units", "destination"]
    list_filter = ["provider", "asset"]
    search_fields = ["=withdrawal_id", "=account", "destination"]
    search_help_text = "withdrawal id, account id or destination"
    exclude = ["transaction"]

    @admin.display(description="amount")
    def amount_units(self, record: WithdrawalRecord) -> str:
        return units(record.amount)


@admin.register(LedgerTransfer)
class LedgerTransferAdmin(ReadOnlyAdmin):
    """Transfers on the local ledger (the embedded external network; its own database)."""

    list_display = ["position", "created_at", "source", "destination", "asset", "amount_units"]
    list_filter = ["asset"]
    search_fields = ["source", "destination", "reference"]
    date_hierarchy = "created_at"

    @admin.display(description="amount")
    def amount_units(self, record: LedgerTransfer) -> str:
        return units(record.amount)
