"""The minimum withdrawal fee stated in the provider settings: a Stellar vault pays the network
fee of every withdrawal, so settings whose minimum cannot cover it are refused with a reason,
and the minimum survives the settings' JSON form (what operators edit and `info` shows)."""

from __future__ import annotations

import dataclasses

import pytest

from quanta.core.config import STELLAR_NETWORK_FEE_UNITS, validate_settings
from quanta.core.settings_json import settings_from_json, settings_to_json
from quanta.core.status import BadRequest
from quanta.core.testing import default_settings, keypair
from quanta.core.xdr.schema import ConstellationSettings, ProviderAsset, ProviderSettings

ISSUER = keypair(70).public_key_strkey


def _with_stellar(*assets: ProviderAsset) -> ConstellationSettings:
    settings = default_settings([keypair(0), keypair(1), keypair(2)])
    stellar = ProviderSettings("stellar", "main", keypair(71).public_key_strkey, "0", assets, 0)
    return dataclasses.replace(settings, providers=(*settings.providers, stellar))


@pytest.mark.parametrize("fee_min", [0, STELLAR_NETWORK_FEE_UNITS - 1])
def test_a_stellar_xlm_minimum_below_the_network_fee_is_refused(fee_min: int) -> None:
    settings = _with_stellar(ProviderAsset("XLM", "XLM", False, fee_min))
    with pytest.raises(BadRequest, match="XLM needs a withdrawal fee minimum of at least 100"):
        validate_settings(settings, None)


def test_a_stellar_credit_asset_needs_a_positive_minimum() -> None:
    with pytest.raises(BadRequest, match="BTC needs a withdrawal fee minimum of at least 1"):
        validate_settings(_with_stellar(ProviderAsset(f"BTC:{ISSUER}", "BTC", False, 0)), None)
    validate_settings(_with_stellar(ProviderAsset(f"BTC:{ISSUER}", "BTC", False, 1)), None)


def test_minimums_that_cover_the_fee_pass_and_the_local_ledger_needs_none() -> None:
    settings = _with_stellar(ProviderAsset("XLM", "XLM", False, STELLAR_NETWORK_FEE_UNITS))
    assert settings.providers[0].assets[0].withdrawal_fee_min == 0  # The local ledger's.
    validate_settings(settings, None)


def test_the_minimum_survives_the_json_form() -> None:
    settings = _with_stellar(ProviderAsset("XLM", "XLM", False, 250))
    data = settings_to_json(settings)
    assert data["providers"][1]["assets"][0]["withdrawal_fee_min"] == 250  # type: ignore[index]
    assert settings_from_json(data) == settings
