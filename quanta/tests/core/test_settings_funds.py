"""Settings updates that would strand funds are refused, each with its reason.

Method: the initialized engine of test_engine.py (`Node`, 3 auditors, one local provider
`local-vault` carrying every asset) runs a settings update signed by a majority; a refused one
must answer BAD_REQUEST with a message naming the problem and leave the state hash unchanged
(`Node.rejected`). Before these rules each update below was accepted: the pending withdrawal of
a removed provider could never settle (its outcomes are refused for an unknown provider), two
providers on one vault credited every deposit twice, and a suspended asset could not be
withdrawn at all.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from exchange.core.matching import order_id_of
from exchange.core.orderbook import Side
from quanta.core.keys import KeyPair
from quanta.core.status import StatusCode
from quanta.core.testing import QUOTE, keypair, settings_quantum
from quanta.core.xdr.schema import (
    ConstellationQuantum,
    ConstellationSettings,
    ProviderAsset,
    ProviderSettings,
)
from quanta.tests.core.test_engine import UNIT, Node


@pytest.fixture
def node() -> Node:
    return Node()


@pytest.fixture
def alice(node: Node) -> KeyPair:
    who = keypair(1)
    node.deposit(who, QUOTE, 1_000 * UNIT)
    node.deposit(who, "XLM", 500 * UNIT)
    return who


def next_settings(node: Node, **changes: object) -> ConstellationSettings:
    current = node.engine.state.require_config().settings
    return replace(current, version=current.version + 1, **changes)  # type: ignore[arg-type]


def update(node: Node, settings: ConstellationSettings) -> ConstellationQuantum:
    return settings_quantum(settings, node.auditors[:2], constellation_id=node.cid)


def provider(name: str, vault: str, assets: tuple[str, ...]) -> ProviderSettings:
    return ProviderSettings(
        "local", name, vault, "0", tuple(ProviderAsset(a, a, False) for a in assets), 0
    )


def test_removing_a_provider_with_a_pending_withdrawal_is_refused(
    node: Node, alice: KeyPair
) -> None:
    created = node.withdraw(alice, "XLM", 10 * UNIT)
    other = provider("other", "OTHER", (QUOTE, "XLM", "BTC"))
    reason = node.rejected(
        update(node, next_settings(node, providers=(other,))), StatusCode.BAD_REQUEST
    )
    assert "local-vault" in reason and f"pending withdrawals [{created.apex}]" in reason


def test_two_providers_on_one_vault_are_refused(node: Node) -> None:
    current = node.engine.state.require_config().settings.providers[0]
    twin = replace(current, name="twin")
    reason = node.rejected(
        update(node, next_settings(node, providers=(current, twin))), StatusCode.BAD_REQUEST
    )
    assert "local-vault and local-twin share the vault VAULT" in reason


def test_dropping_the_last_provider_of_a_held_asset_is_refused(node: Node, alice: KeyPair) -> None:
    without_xlm = provider("vault", "VAULT", (QUOTE, "BTC"))
    reason = node.rejected(
        update(node, next_settings(node, providers=(without_xlm,))), StatusCode.BAD_REQUEST
    )
    assert "XLM" in reason and "no provider" in reason


def test_an_asset_nobody_holds_may_lose_its_provider(node: Node, alice: KeyPair) -> None:
    without_btc = provider("vault", "VAULT", (QUOTE, "XLM"))
    node.run(update(node, next_settings(node, providers=(without_btc,))))
    assert not node.engine.state.require_config().provider_asset("local-vault", "BTC")


def test_a_suspended_asset_can_still_be_withdrawn(node: Node, alice: KeyPair) -> None:
    current = node.engine.state.require_config().settings
    assets = tuple(replace(a, is_suspended=a.code == "XLM") for a in current.assets)
    node.run(update(node, next_settings(node, assets=assets)))
    node.withdraw(alice, "XLM", 10 * UNIT)
    assert node.balance(alice, "XLM") == (500 * UNIT, 10 * UNIT)


def test_orders_of_a_suspended_asset_can_still_be_cancelled(node: Node, alice: KeyPair) -> None:
    placed = node.order(alice, Side.SELL, 10 * UNIT, 2.0)
    current = node.engine.state.require_config().settings
    assets = tuple(replace(a, is_suspended=a.code == "XLM") for a in current.assets)
    node.run(update(node, next_settings(node, assets=assets)))
    node.cancel(alice, order_id_of(placed.apex))
    assert node.balance(alice, "XLM") == (500 * UNIT, 0)
