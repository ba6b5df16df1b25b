"""Constellation settings as JSON: what `/api/constellation/info` shows and what
`init_constellation --settings-file FILE` reads.

One format both ways, so an operator can take a node's info, edit it and sign it as the next
update. Keys are Stellar strkeys (`G...`), amounts integers in units of 10^-7. Reading checks
types and keys and says which field is wrong; the constellation rules themselves (one quote
asset, distinct auditors, ...) are `config.validate_settings`'s job.
"""

from __future__ import annotations

from typing import Any

from quanta.core.keys import InvalidKey, decode_public_key, encode_public_key
from quanta.core.xdr.schema import (
    AssetSettings,
    AuditorSettings,
    ConstellationSettings,
    ProviderAsset,
    ProviderSettings,
    RequestRateLimits,
)


class SettingsFormatError(ValueError):
    """The JSON does not describe constellation settings."""


def settings_to_json(settings: ConstellationSettings) -> dict[str, object]:
    """Returns the settings as JSON-ready data (keys as G... strkeys)."""
    return {
        "settings_version": settings.version,
        "alpha": encode_public_key(settings.alpha),
        "auditors": [
            {"public_key": encode_public_key(a.public_key), "address": a.address}
            for a in settings.auditors
        ],
        "assets": [
            {"code": a.code, "is_quote_asset": a.is_quote_asset, "is_suspended": a.is_suspended}
            for a in settings.assets
        ],
        "quote_asset": next(a.code for a in settings.assets if a.is_quote_asset),
        "min_account_balance": settings.min_account_balance,
        "min_allowed_lot_size": settings.min_allowed_lot_size,
        "providers": [_provider_to_json(p) for p in settings.providers],
        "request_rate_limits": {
            "minute_limit": settings.request_rate_limits.minute_limit,
            "hour_limit": settings.request_rate_limits.hour_limit,
        },
        "halt_after_apex": settings.halt_after_apex,
    }


def _provider_to_json(provider: ProviderSettings) -> dict[str, object]:
    return {
        "id": f"{provider.provider_type}-{provider.name}",
        "type": provider.provider_type,
        "name": provider.name,
        "vault": provider.vault,
        "init_cursor": provider.init_cursor,
        "assets": [
            {
                "token": t.token,
                "asset": t.asset,
                "is_virtual": t.is_virtual,
                "withdrawal_fee_min": t.withdrawal_fee_min,
            }
            for t in provider.assets
        ],
        "payment_submit_delay_s": provider.payment_submit_delay_s,
    }


def settings_from_json(data: object) -> ConstellationSettings:
    """Returns the settings `data` describes; raises SettingsFormatError naming the bad field.

    Read-only keys of the info output (`quote_asset`, provider `id`) are ignored."""
    root = _mapping(data, "settings")
    limits = _mapping(root.get("request_rate_limits", {}), "request_rate_limits")
    return ConstellationSettings(
        version=_integer(root.get("settings_version", root.get("version", 1)), "settings_version"),
        alpha=_key(root.get("alpha"), "alpha"),
        auditors=tuple(
            AuditorSettings(
                _key(item.get("public_key"), f"auditors[{i}].public_key"),
                _text(item.get("address", ""), f"auditors[{i}].address"),
            )
            for i, item in enumerate(_items(root.get("auditors"), "auditors"))
        ),
        min_account_balance=_integer(root.get("min_account_balance"), "min_account_balance"),
        min_allowed_lot_size=_integer(root.get("min_allowed_lot_size"), "min_allowed_lot_size"),
        assets=tuple(
            AssetSettings(
                _text(item.get("code"), f"assets[{i}].code"),
                _flag(item.get("is_suspended", False), f"assets[{i}].is_suspended"),
                _flag(item.get("is_quote_asset", False), f"assets[{i}].is_quote_asset"),
            )
            for i, item in enumerate(_items(root.get("assets"), "assets"))
        ),
        providers=tuple(
            _provider_from_json(item, f"providers[{i}]")
            for i, item in enumerate(_items(root.get("providers", []), "providers"))
        ),
        request_rate_limits=RequestRateLimits(
            _integer(limits.get("minute_limit", 0), "request_rate_limits.minute_limit"),
            _integer(limits.get("hour_limit", 0), "request_rate_limits.hour_limit"),
        ),
        halt_after_apex=_integer(root.get("halt_after_apex", 0), "halt_after_apex"),
    )


def _provider_from_json(item: dict[str, Any], where: str) -> ProviderSettings:
    return ProviderSettings(
        provider_type=_text(item.get("type"), f"{where}.type"),
        name=_text(item.get("name"), f"{where}.name"),
        vault=_text(item.get("vault"), f"{where}.vault"),
        init_cursor=_text(item.get("init_cursor", "0"), f"{where}.init_cursor"),
        assets=tuple(
            ProviderAsset(
                _text(asset.get("token"), f"{where}.assets[{j}].token"),
                _text(asset.get("asset"), f"{where}.assets[{j}].asset"),
                _flag(asset.get("is_virtual", False), f"{where}.assets[{j}].is_virtual"),
                _integer(
                    asset.get("withdrawal_fee_min", 0), f"{where}.assets[{j}].withdrawal_fee_min"
                ),
            )
            for j, asset in enumerate(_items(item.get("assets"), f"{where}.assets"))
        ),
        payment_submit_delay_s=_integer(
            item.get("payment_submit_delay_s", 0), f"{where}.payment_submit_delay_s"
        ),
    )


def _mapping(value: object, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise SettingsFormatError(f"{where}: expected an object")
    return value


def _items(value: object, where: str) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise SettingsFormatError(f"{where}: expected a list")
    return [_mapping(item, f"{where}[{i}]") for i, item in enumerate(value)]


def _integer(value: object, where: str) -> int:
    # bool is an int subclass; `true` as an amount is a mistake worth reporting.
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise SettingsFormatError(f"{where}: expected a non-negative integer, got {value!r}")
    return value


def _text(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise SettingsFormatError(f"{where}: expected a string, got {value!r}")
    return value


def _flag(value: object, where: str) -> bool:
    if not isinstance(value, bool):
        raise SettingsFormatError(f"{where}: expected true or false, got {value!r}")
    return value


def _key(value: object, where: str) -> bytes:
    try:
        return decode_public_key(_text(value, where))
    except InvalidKey as error:
        raise SettingsFormatError(f"{where}: {error}") from None
