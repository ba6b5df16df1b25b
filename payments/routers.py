"""Routes the local ledger's tables to their own database (alias `ledger`)."""

from __future__ import annotations

from typing import Any

LEDGER_MODELS = frozenset({"ledgertransfer", "ledgeraccount", "ledgerjournal"})


class LedgerRouter:
    """Sends local-ledger models to the `ledger` database and nothing else there."""

    def _is_ledger(self, model: Any) -> bool:
        return bool(model._meta.app_label == "payments" and model._meta.model_name in LEDGER_MODELS)

    def db_for_read(self, model: Any, **hints: Any) -> str | None:
        return "ledger" if self._is_ledger(model) else None

    def db_for_write(self, model: Any, **hints: Any) -> str | None:
        return "ledger" if self._is_ledger(model) else None

    def allow_migrate(
        self, db: str, app_label: str, model_name: str | None = None, **hints: Any
    ) -> bool:
        is_ledger = app_label == "payments" and model_name in LEDGER_MODELS
        return is_ledger == (db == "ledger")
