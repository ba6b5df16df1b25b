"""AlphaNode.update_settings: later settings as a quantum, and the readable XDR view."""

from __future__ import annotations

import dataclasses

import pytest

from quanta.core.alpha import AlphaNode
from quanta.core.engine import Engine
from quanta.core.keys import KeyPair
from quanta.core.pending import PendingUpdates
from quanta.core.readable import readable
from quanta.core.signatures import constellation_id_of
from quanta.core.state import ConstellationState
from quanta.core.status import BadRequest, InvalidState, Unauthorized
from quanta.core.testing import default_settings, keypair, settings_quantum
from quanta.core.xdr.schema import (
    AssetSettings,
    ConstellationMessageEnvelope,
    ConstellationSettings,
    RequestRateLimits,
)

AUDITORS = [keypair(1), keypair(2), keypair(3)]
CID = constellation_id_of(default_settings(AUDITORS))


def _signed(
    settings: ConstellationSettings, signers: list[KeyPair]
) -> ConstellationMessageEnvelope:
    return settings_quantum(settings, signers, constellation_id=CID).update


@pytest.fixture
def alpha() -> AlphaNode:
    node = AlphaNode(AUDITORS[0], Engine(ConstellationState()), PendingUpdates(5, 50_000))
    node.initialize(settings_quantum(default_settings(AUDITORS), AUDITORS).update, 1_000)
    return node


def test_a_majority_puts_new_settings_in_force(alpha: AlphaNode) -> None:
    current = alpha.engine.state.require_config().settings
    settings = dataclasses.replace(
        current,
        version=2,
        assets=(*current.assets, AssetSettings("EUR", False, False)),
        request_rate_limits=RequestRateLimits(60, 600),
    )
    executed = alpha.update_settings(
        settings_quantum(settings, AUDITORS[1:], constellation_id=CID).update, 2_000
    )
    config = alpha.engine.state.require_config()
    assert executed.apex == 2 and config.settings.version == 2
    assert config.tradable_asset("EUR") is not None
    assert alpha.rate_limiter is not None  # settings outside the state machine follow too
    assert alpha.take_outgoing()[-1].quantum.apex == 2  # streamed to the auditors


def test_too_few_signatures_change_nothing(alpha: AlphaNode) -> None:
    current = alpha.engine.state.require_config().settings
    settings = dataclasses.replace(current, version=2, min_allowed_lot_size=5)
    with pytest.raises(Unauthorized, match="signed by 1 auditors, 2 required"):
        alpha.update_settings(
            settings_quantum(settings, AUDITORS[:1], constellation_id=CID).update, 2_000
        )
    assert alpha.engine.state.apex == 1
    assert alpha.engine.state.require_config().settings == current


def test_removing_an_asset_is_refused(alpha: AlphaNode) -> None:
    current = alpha.engine.state.require_config().settings
    kept = tuple(a for a in current.assets if a.code != "XLM")
    providers = tuple(
        dataclasses.replace(p, assets=tuple(x for x in p.assets if x.asset != "XLM"))
        for p in current.providers
    )
    settings = dataclasses.replace(current, version=2, assets=kept, providers=providers)
    with pytest.raises(BadRequest, match="assets cannot be removed"):
        alpha.update_settings(
            settings_quantum(settings, AUDITORS, constellation_id=CID).update, 2_000
        )


def test_an_update_needs_an_initialized_ready_node() -> None:
    node = AlphaNode(AUDITORS[0], Engine(ConstellationState()), PendingUpdates(5, 50_000))
    envelope = settings_quantum(default_settings(AUDITORS), AUDITORS).update
    with pytest.raises(InvalidState):
        node.update_settings(envelope, 1_000)
    assert node.engine.state.config is None


def test_readable_shows_keys_as_strkeys_and_bytes_as_hex() -> None:
    quantum = settings_quantum(default_settings(AUDITORS), AUDITORS[:1])
    shown = readable(quantum)
    assert shown["type"] == "ConstellationQuantum"
    signature = shown["update"]["signatures"][0]
    assert signature["signer"] == AUDITORS[0].public_key_strkey
    assert len(signature["signature"]) == 128  # hex of 64 bytes
    assert shown["update"]["message"]["settings"]["alpha"] == AUDITORS[0].public_key_strkey
