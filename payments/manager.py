"""The provider manager: builds the providers named in the constellation settings.

Each provider gets this node's key (its vault signer key), the vault's signers (the
constellation's auditors) and this node's own options for it (endpoints, secrets, TTL) from
the Django setting `PAYMENT_PROVIDERS` = {provider id: {option: value}}; those never enter the
constellation settings.
"""

from __future__ import annotations

from collections.abc import Mapping

from payments.core.provider import PaymentProvider
from payments.providers.local_ledger.provider import LocalLedgerProvider
from payments.providers.stellar import StellarProvider
from quanta.core.config import Config
from quanta.core.keys import KeyPair

PROVIDER_CLASSES: dict[str, type[PaymentProvider]] = {
    "local": LocalLedgerProvider,
    "stellar": StellarProvider,
}


def providers_build(
    config: Config,
    keypair: KeyPair,
    node_options: Mapping[str, Mapping[str, str]] | None = None,
) -> dict[str, PaymentProvider]:
    """Returns an instance of every configured provider this node can run, by provider id."""
    providers: dict[str, PaymentProvider] = {}
    options = node_options or {}
    for provider_id, settings in sorted(config.providers.items()):
        cls = PROVIDER_CLASSES.get(settings.provider_type)
        if cls is not None:
            providers[provider_id] = cls(
                settings, keypair, config.auditor_keys, options.get(provider_id)
            )
    return providers
