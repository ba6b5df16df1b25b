"""A provider's check of alpha's deposit notification: "not yet" apart from "contradicts".

Goal: a view that stops short of alpha's cursor but agrees as far as it goes cannot confirm
yet (the auditor retries); a view that differs, or that reached the cursor with other
content, contradicts (the auditor goes Failed); a provider that fails to look (its network)
cannot confirm yet either, and never crashes the engine.
Method: the local-ledger provider with its view of the vault replaced (no database).
"""

from __future__ import annotations

import pytest

from payments.core.provider import Notification
from payments.providers.local_ledger.provider import LocalLedgerProvider
from quanta.core.status import BadRequest, NotYetConfirmed
from quanta.core.testing import deposit_quantum, keypair
from quanta.core.xdr.schema import ProviderAsset, ProviderSettings
from quanta.node.providers import provider_verdict

NODES = [keypair(i) for i in range(3)]
A, B = keypair(40), keypair(41)
BODY = deposit_quantum(7, [(A, "USD", 10), (B, "USD", 20)])


def _provider(seen: Notification) -> LocalLedgerProvider:
    settings = ProviderSettings(
        "local", "vault", "VAULT", "", (ProviderAsset("USD", "USD", False),), 0
    )
    provider = LocalLedgerProvider(settings, NODES[1], tuple(k.public_key for k in NODES))
    provider.notification_between = lambda prev, cursor: seen  # type: ignore[method-assign]
    return provider


def test_a_view_short_of_alphas_cursor_that_agrees_so_far_cannot_confirm_yet() -> None:
    for items in ((), BODY.items[:1]):
        provider = _provider(Notification("5", items, ()))
        with pytest.raises(NotYetConfirmed, match="up to '5', not yet to '7'"):
            provider.validate_notification(BODY, "3", {})


def test_a_view_that_differs_contradicts() -> None:
    short_but_other = _provider(Notification("5", BODY.items[1:], ()))
    with pytest.raises(BadRequest, match="does not match the vault"):
        short_but_other.validate_notification(BODY, "3", {})
    at_cursor_but_short = _provider(Notification("7", BODY.items[:1], ()))
    with pytest.raises(BadRequest, match="does not match the vault"):
        at_cursor_but_short.validate_notification(BODY, "3", {})


def test_the_same_view_confirms() -> None:
    _provider(Notification("7", BODY.items, ())).validate_notification(BODY, "3", {})


def test_a_provider_that_cannot_look_cannot_confirm_yet() -> None:
    def unreachable() -> None:
        raise ConnectionError("horizon unreachable")

    with pytest.raises(NotYetConfirmed, match="horizon unreachable"):
        provider_verdict("stellar-main", unreachable)

    def contradicts() -> None:
        raise BadRequest("the notification does not match the vault")

    with pytest.raises(BadRequest):
        provider_verdict("stellar-main", contradicts)
