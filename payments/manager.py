"""The provider manager: builds the providers named in the constellation settings."""

from __future__ import annotations

from payments.core.provider import PaymentProvider
from payments.providers.local_ledger import LocalLedgerProvider
from quanta.core.config import Config

PROVIDER_CLASSES: dict[str, type[PaymentProvider]] = {"local": LocalLedgerProvider}


def providers_build(config: Config) -> dict[str, PaymentProvider]:
    """Returns an instance of every configured provider this node can run, by provider id."""
    providers: dict[str, PaymentProvider] = {}
    for provider_id, settings in sorted(config.providers.items()):
        cls = PROVIDER_CLASSES.get(settings.provider_type)
        if cls is not None:
            providers[provider_id] = cls(settings)
    return providers
