"""Constellation settings: validation rules and the derived, read-only view nodes use.

`ConstellationSettings` is what travels (signed) in a `ConstellationUpdate`; `Config` is the
same settings pre-digested for the hot path (asset lookup, alpha's index, majority size,
providers by id). Only the engine builds a `Config`, from the settings in force.
"""

from __future__ import annotations

from dataclasses import dataclass

from quanta.core.signatures import constellation_id_of, majority
from quanta.core.status import BadRequest
from quanta.core.xdr.schema import AssetSettings, ConstellationSettings, ProviderSettings

ASSET_CODE_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
PROVIDER_TYPES = frozenset({"local", "stellar"})
"""The provider types settings may name: a consensus rule (every node must accept or refuse a
settings quantum alike, so the engine checks it, and the pure core cannot ask the payments
app). The one registry of their implementations is `payments.manager.PROVIDER_CLASSES`;
payments/tests/test_provider_registry.py holds the two to the same names."""


def provider_id(provider: ProviderSettings) -> str:
    """Returns the provider's id, `{type}-{name}` (SPEC.md)."""
    return f"{provider.provider_type}-{provider.name}"


def validate_settings(
    settings: ConstellationSettings, current: ConstellationSettings | None
) -> None:
    """Raises BadRequest, saying what is wrong, unless `settings` may replace `current`."""
    expected_version = 1 if current is None else current.version + 1
    if settings.version != expected_version:
        raise BadRequest(f"settings version must be {expected_version}, got {settings.version}")
    _validate_auditors(settings)
    _validate_assets(settings.assets)
    _validate_providers(settings)
    if settings.min_account_balance == 0:
        raise BadRequest("min_account_balance must be positive")
    limits = settings.request_rate_limits
    if (limits.minute_limit == 0) != (limits.hour_limit == 0):
        raise BadRequest("rate limits: set both minute and hour limits, or neither (0, 0)")


def _validate_auditors(settings: ConstellationSettings) -> None:
    keys = [auditor.public_key for auditor in settings.auditors]
    if not keys:
        raise BadRequest("the constellation needs at least one auditor")
    if len(set(keys)) != len(keys):
        raise BadRequest("duplicate auditor public key")
    if settings.alpha not in keys:
        raise BadRequest("alpha's public key must be one of the auditors")


def _validate_assets(assets: tuple[AssetSettings, ...]) -> None:
    codes = [asset.code for asset in assets]
    if len(set(codes)) != len(codes):
        raise BadRequest("duplicate asset code")
    for code in codes:
        if not code or not set(code) <= ASSET_CODE_ALPHABET:
            raise BadRequest(f"asset code {code!r} must be 1-12 characters A-Z, 0-9")
    quote = [asset.code for asset in assets if asset.is_quote_asset]
    if len(quote) != 1:
        raise BadRequest(f"exactly one quote asset is required, got {len(quote)}")


def _validate_providers(settings: ConstellationSettings) -> None:
    codes = {asset.code for asset in settings.assets}
    ids = [provider_id(provider) for provider in settings.providers]
    if len(set(ids)) != len(ids):
        raise BadRequest("duplicate provider id")
    _validate_vaults(settings.providers)
    for provider in settings.providers:
        if provider.provider_type not in PROVIDER_TYPES:
            raise BadRequest(f"unknown provider type {provider.provider_type!r}")
        mapped = [item.asset for item in provider.assets]
        if len(set(mapped)) != len(mapped):
            raise BadRequest(f"provider {provider_id(provider)} maps an asset twice")
        unknown = sorted(set(mapped) - codes)
        if unknown:
            raise BadRequest(f"provider {provider_id(provider)} maps unknown assets {unknown}")
        _validate_withdrawal_fees(provider)


STELLAR_NETWORK_FEE_UNITS = 100
"""What the Stellar vault pays the network for one withdrawal: the base fee of its one
operation, 100 stroops (10^-7 XLM, our unit)."""


def _validate_withdrawal_fees(provider: ProviderSettings) -> None:
    """Refuses a Stellar asset whose minimum withdrawal fee cannot cover the network fee: the
    vault pays it in XLM for every withdrawal, and a smaller fee drains the vault's XLM. For
    XLM itself the minimum is the network fee; a credit asset's price in XLM is not known
    here, so it needs a positive minimum its operators chose to cover it. The local ledger
    charges no network fee: any minimum, 0 included."""
    if provider.provider_type != "stellar":
        return
    for item in provider.assets:
        needed = STELLAR_NETWORK_FEE_UNITS if item.token == "XLM" else 1  # noqa: S105
        if item.withdrawal_fee_min < needed:
            raise BadRequest(
                f"provider {provider_id(provider)}: asset {item.asset} needs a withdrawal fee"
                f" minimum of at least {needed} units to cover the Stellar network fee the"
                f" vault pays, got {item.withdrawal_fee_min}"
            )


def _validate_vaults(providers: tuple[ProviderSettings, ...]) -> None:
    # One vault watched by two providers would credit each of its deposits twice.
    owners: dict[tuple[str, str], str] = {}
    for provider in providers:
        key = (provider.provider_type, provider.vault)
        if key in owners:
            raise BadRequest(
                f"providers {owners[key]} and {provider_id(provider)} share the vault"
                f" {provider.vault}: its deposits would be credited twice"
            )
        owners[key] = provider_id(provider)


@dataclass(frozen=True, slots=True)
class Config:
    """The settings in force, indexed for the engine, and the id of their constellation."""

    settings: ConstellationSettings
    constellation_id: bytes
    quote_asset: str
    assets: dict[str, AssetSettings]
    auditor_keys: tuple[bytes, ...]
    alpha_index: int
    majority: int
    providers: dict[str, ProviderSettings]

    @classmethod
    def from_settings(
        cls, settings: ConstellationSettings, constellation_id: bytes | None = None
    ) -> Config:
        """Derives the indexed view; `settings` must have passed `validate_settings`.

        `constellation_id` is that of the genesis settings; it may be left out only for the
        genesis settings themselves, whose hash it is."""
        if constellation_id is None:
            assert settings.version == 1, "only genesis settings give their own constellation id"
            constellation_id = constellation_id_of(settings)
        keys = tuple(auditor.public_key for auditor in settings.auditors)
        return cls(
            settings=settings,
            constellation_id=constellation_id,
            quote_asset=next(a.code for a in settings.assets if a.is_quote_asset),
            assets={asset.code: asset for asset in settings.assets},
            auditor_keys=keys,
            alpha_index=keys.index(settings.alpha),
            majority=majority(len(keys)),
            providers={provider_id(p): p for p in settings.providers},
        )

    def halt_reason(self, apex: int) -> str | None:
        """Says why no quantum but a settings update may execute at `apex` (a scheduled
        halt is in force and `apex` is above it), or None when the constellation runs."""
        halt = self.settings.halt_after_apex
        if halt == 0 or apex <= halt:
            return None
        return (
            f"the constellation is halted after apex {halt} for an upgrade; "
            "it resumes with a later settings update"
        )

    def tradable_asset(self, code: str) -> AssetSettings | None:
        """Returns a non-quote asset by code (the markets are {asset}/{quote})."""
        asset = self.assets.get(code)
        return None if asset is None or asset.is_quote_asset else asset

    def provider_asset(self, provider: str, asset: str) -> bool:
        """Tells whether `provider` exists and carries `asset`."""
        settings = self.providers.get(provider)
        return settings is not None and any(item.asset == asset for item in settings.assets)
