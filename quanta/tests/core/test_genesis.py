"""A node takes a genesis only if it took part in it (SECURITY.md H1; quanta/core/genesis.py).

Goal: alpha refuses first settings that do not name it as alpha or do not carry its own valid
signature, however many made-up auditors signed them (the H1 takeover), and a refusal leaves
it uninitialized, so the right genesis still works; an auditor the genesis lists refuses one
its key did not sign (Failed, "genesis refused"), one it does not list follows it; a pinned
constellation id admits that genesis only; a malformed pin is refused when read.
Method: real AlphaNode / AuditorNode objects on fresh engines, no database.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from quanta.core.alpha import AlphaNode
from quanta.core.auditor import AuditorNode
from quanta.core.engine import Engine
from quanta.core.genesis import (
    alpha_genesis_check,
    auditor_genesis_check,
    genesis_id,
    genesis_id_parse,
)
from quanta.core.keys import KeyPair
from quanta.core.pending import PendingUpdates
from quanta.core.status import Forbidden
from quanta.core.testing import default_settings, keypair, settings_quantum
from quanta.core.xdr.schema import ConstellationMessageEnvelope, ConstellationUpdate, NodeState

NODES = [keypair(230), keypair(231), keypair(232)]
ATTACKERS = [keypair(235), keypair(236)]


def _genesis(
    keys: list[KeyPair], signers: list[KeyPair], **changes: Any
) -> ConstellationMessageEnvelope:
    settings = dataclasses.replace(default_settings(keys), **changes)
    return settings_quantum(settings, signers).update


TAKEOVER = _genesis([NODES[0], *ATTACKERS], ATTACKERS)  # the real alpha key, X1/X2 signing
GOOD = _genesis(NODES, NODES)


def _update(envelope: ConstellationMessageEnvelope) -> ConstellationUpdate:
    assert isinstance(envelope.message, ConstellationUpdate)
    return envelope.message


def test_alpha_refuses_the_h1_takeover_and_then_takes_the_real_genesis() -> None:
    alpha = AlphaNode(NODES[0], Engine(), PendingUpdates())
    with pytest.raises(Forbidden, match="no valid signature of alpha"):
        alpha.initialize(TAKEOVER, 1_000)
    assert alpha.engine.state.config is None and alpha.engine.state.apex == 0
    assert alpha.status.state == NodeState.UNDEFINED
    alpha.initialize(GOOD, 1_000)
    assert alpha.engine.state.apex == 1 and alpha.status.state == NodeState.READY


def test_alpha_refuses_settings_naming_another_alpha_and_is_not_bricked() -> None:
    alpha = AlphaNode(NODES[0], Engine(), PendingUpdates())
    other = _genesis(NODES, NODES, alpha=NODES[1].public_key)
    with pytest.raises(Forbidden, match="as alpha"):
        alpha.initialize(other, 1_000)
    assert alpha.engine.state.config is None
    alpha.initialize(GOOD, 1_000)
    assert alpha.engine.state.require_config().settings.alpha == NODES[0].public_key


def test_alpha_refuses_a_signature_of_its_key_over_other_bytes() -> None:
    unsigned = _genesis(NODES, NODES[1:])
    signature = dataclasses.replace(GOOD.signatures[0], signature=bytes(64))
    forged = ConstellationMessageEnvelope(unsigned.message, (*unsigned.signatures, signature))
    with pytest.raises(Forbidden, match="no valid signature"):
        alpha_genesis_check(forged, NODES[0].public_key)


def test_a_pinned_id_admits_that_genesis_only() -> None:
    pin = genesis_id(_update(GOOD))
    alpha_genesis_check(GOOD, NODES[0].public_key, pin)
    auditor_genesis_check(GOOD, NODES[1].public_key, pin)
    other = _genesis(NODES, NODES, min_account_balance=5)
    with pytest.raises(Forbidden, match="not the pinned constellation"):
        alpha_genesis_check(other, NODES[0].public_key, pin)
    with pytest.raises(Forbidden, match="not the pinned constellation"):
        auditor_genesis_check(other, NODES[2].public_key, pin)


def test_genesis_id_parse() -> None:
    assert genesis_id_parse("") is None and genesis_id_parse("  ") is None
    assert genesis_id_parse("AB" * 32) == bytes([0xAB]) * 32
    with pytest.raises(ValueError, match="64 hex"):
        genesis_id_parse("ab" * 31)
    with pytest.raises(ValueError):
        genesis_id_parse("zz" * 32)


def _auditor_takes(index: int, envelope: ConstellationMessageEnvelope) -> AuditorNode:
    """Returns auditor `index` after alpha (NODES[0]) streamed it this genesis."""
    alpha = AlphaNode(NODES[0], Engine(), PendingUpdates())
    alpha.initialize(envelope, 1_000)
    auditor = AuditorNode(NODES[index], Engine(), PendingUpdates())
    auditor.handle_batch(tuple(alpha.take_outgoing()), 1)
    return auditor


def test_an_auditor_listed_but_not_signing_refuses_the_genesis() -> None:
    genesis = _genesis(NODES, NODES[:2])  # a majority, without NODES[2]
    refused = _auditor_takes(2, genesis)
    assert refused.status.state == NodeState.FAILED
    assert "genesis refused" in refused.status.reason
    assert refused.engine.state.config is None and refused.take_final_rows() == []
    signer = _auditor_takes(1, genesis)
    assert signer.status.state == NodeState.READY and signer.engine.state.apex == 1


def test_an_auditor_the_genesis_does_not_list_follows_it() -> None:
    joining = AuditorNode(keypair(239), Engine(), PendingUpdates())
    alpha = AlphaNode(NODES[0], Engine(), PendingUpdates())
    alpha.initialize(GOOD, 1_000)
    outcome = joining.handle_batch(tuple(alpha.take_outgoing()), 1)
    assert joining.engine.state.apex == 1 and outcome.results == []
