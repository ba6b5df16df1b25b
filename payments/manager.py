"""The provider manager: builds the providers named in the constellation settings.

Each provider gets this node's key (its vault signer key), the vault's signers (the
constellation's auditors) and this node's own options for it (endpoints, secrets, TTL) from
the Django setting `PAYMENT_PROVIDERS` = {provider id: {option: value}}; those never enter the
constellation settings.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping

from payments.core.provider import PaymentProvider
from quanta.core.config import Config
from quanta.core.keys import KeyPair

PROVIDER_CLASSES: dict[str, str] = {
    "local": "payments.providers.local_ledger.provider:LocalLedgerProvider",
    "stellar": "payments.providers.stellar:StellarProvider",
}
"""Each provider type's implementation, as `module:class`, imported only when a node's
settings name the type: stellar_sdk alone took ~0.37 s of every node process's start (engine,
web, herald link), most of a constellation's start-up CPU, on nodes that had no Stellar
provider."""


def provider_class(provider_type: str) -> type[PaymentProvider] | None:
    """Returns the implementation of `provider_type` (importing it), None if there is none."""
    path = PROVIDER_CLASSES.get(provider_type)
    if path is None:
        return None
    module, _, name = path.partition(":")
    cls: type[PaymentProvider] = getattr(importlib.import_module(module), name)
    return cls


def providers_build(
    config: Config,
    keypair: KeyPair,
    node_options: Mapping[str, Mapping[str, str]] | None = None,
) -> dict[str, PaymentProvider]:
    """Returns an instance of every configured provider this node can run, by provider id."""
    providers: dict[str, PaymentProvider] = {}
    options = node_options or {}
    for provider_id, settings in sorted(config.providers.items()):
        cls = provider_class(settings.provider_type)
        if cls is not None:
            providers[provider_id] = cls(
                settings, keypair, config.auditor_keys, options.get(provider_id)
            )
    return providers
