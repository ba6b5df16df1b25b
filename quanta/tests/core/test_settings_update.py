"""Settings as JSON and the signing of a ConstellationUpdate (init_constellation's core).

Goal: the JSON form is lossless both ways and names the field that is wrong; a signature
travels as `G...:<base64>` and back; the first update is refused before it leaves the
operator's machine unless a majority of the auditors it lists signed it.
"""

from __future__ import annotations

import pytest

from quanta.core.settings_json import SettingsFormatError, settings_from_json, settings_to_json
from quanta.core.settings_update import (
    first_update_check,
    signature_from_text,
    signature_to_text,
    update_envelope,
    update_sign,
)
from quanta.core.testing import default_settings, keypair, settings_quantum
from quanta.core.xdr.schema import AssetSettings, ConstellationUpdate

NODES = [keypair(10), keypair(11), keypair(12)]


def test_json_round_trip_is_lossless() -> None:
    settings = default_settings(NODES)
    assert settings_from_json(settings_to_json(settings)) == settings


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda d: d.update(alpha="GABC"), "alpha"),
        (lambda d: d.update(min_account_balance=-1), "min_account_balance"),
        (lambda d: d.update(min_allowed_lot_size=True), "min_allowed_lot_size"),
        (lambda d: d["assets"][0].update(is_quote_asset="yes"), "assets[0].is_quote_asset"),
        (lambda d: d.update(auditors={}), "auditors"),
        (lambda d: d["providers"][0].pop("vault"), "providers[0].vault"),
    ],
)
def test_format_errors_name_the_field(mutate, field: str) -> None:  # type: ignore[no-untyped-def]
    data = settings_to_json(default_settings(NODES))
    mutate(data)
    with pytest.raises(SettingsFormatError, match=field.replace("[", r"\[").replace("]", r"\]")):
        settings_from_json(data)


def test_signature_text_round_trip() -> None:
    update = ConstellationUpdate(1, default_settings(NODES))
    signature = update_sign(update, NODES[1], None)
    assert signature_from_text(signature_to_text(signature)) == signature


@pytest.mark.parametrize("text", ["no-colon", "GABC:AAAA", f"{NODES[0].public_key_strkey}:AAAA"])
def test_bad_signature_text_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        signature_from_text(text)


def test_update_signed_like_the_engine_expects() -> None:
    """The envelope built here equals what the engine's own test builder signs."""
    update = ConstellationUpdate(1, default_settings(NODES))
    envelope = update_envelope(update, [update_sign(update, k, None) for k in NODES[:2]])
    assert envelope == settings_quantum(update.settings, NODES[:2]).update
    first_update_check(envelope)


def test_first_update_needs_a_majority() -> None:
    update = ConstellationUpdate(1, default_settings(NODES))
    envelope = update_envelope(update, [update_sign(update, NODES[0], None)] * 2)
    with pytest.raises(ValueError, match="signed by 1 of 3 auditors; 2 required"):
        first_update_check(envelope)


def test_first_update_needs_valid_settings() -> None:
    settings = default_settings(NODES)
    no_quote = tuple(AssetSettings(a.code, a.is_suspended, False) for a in settings.assets)
    update = ConstellationUpdate(1, settings.__class__(**{**_fields(settings), "assets": no_quote}))
    envelope = update_envelope(update, [update_sign(update, k, None) for k in NODES])
    with pytest.raises(ValueError, match="quote"):
        first_update_check(envelope)


def _fields(settings: object) -> dict[str, object]:
    return {name: getattr(settings, name) for name in settings.__slots__}  # type: ignore[attr-defined]
