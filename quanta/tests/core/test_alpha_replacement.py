"""Replacing alpha: the designate's rules and the auditors' (quanta.core.alpha_replacement).

Goal: an auditor restarted as alpha (a designate) rises, counting its own chain as one answer,
executes no request, and executes only the majority-signed update naming it; the update is
signed at the new alpha's index, and an auditor told of it takes the designate's frames (and
nothing signed by another key); the alpha in force refuses to execute an update replacing it.
Method: real AlphaNode / AuditorNode objects and engines, frames as a herald would send them.
No database.
"""

from __future__ import annotations

import dataclasses

import pytest

from quanta.core.alpha import DESIGNATE_WAITING, AlphaNode
from quanta.core.alpha_replacement import herald_url, replacement_check
from quanta.core.auditor import AuditorNode
from quanta.core.engine import Engine
from quanta.core.envelopes import envelope_bytes
from quanta.core.keys import KeyPair
from quanta.core.pending import PendingUpdates
from quanta.core.signatures import constellation_id_of
from quanta.core.status import BadRequest, InvalidState, Unauthorized
from quanta.core.testing import default_settings, deposit_quantum, keypair, settings_quantum
from quanta.core.xdr.codec import encode
from quanta.core.xdr.schema import (
    MESSAGE,
    ConstellationMessageEnvelope,
    NodeState,
    QuantaBatch,
    SignedQuantum,
)

NODES = [keypair(240), keypair(241), keypair(242)]
CLIENT = keypair(9)
UNIT = 10_000_000
CID = constellation_id_of(default_settings(NODES))


def _frame(quanta: list[SignedQuantum], apex: int, signer: KeyPair) -> bytes:
    return envelope_bytes(encode(QuantaBatch(0, tuple(quanta), apex), MESSAGE), signer, CID)


def _replacement(alpha: KeyPair, signers: list[KeyPair]) -> ConstellationMessageEnvelope:
    settings = dataclasses.replace(default_settings(NODES), version=2, alpha=alpha.public_key)
    return settings_quantum(settings, signers, constellation_id=CID).update


def _old_chain() -> list[SignedQuantum]:
    alpha = AlphaNode(NODES[0], Engine(), PendingUpdates())
    alpha.initialize(settings_quantum(default_settings(NODES), NODES).update, 1_000)
    alpha.notify(deposit_quantum(1, [(CLIENT, "USD", 10 * UNIT)]), 1_001)
    return alpha.take_outgoing()


def _auditor(index: int, chain: list[SignedQuantum]) -> AuditorNode:
    auditor = AuditorNode(NODES[index], Engine(), PendingUpdates())
    auditor.handle_frame(_frame(chain, len(chain), NODES[0]))
    assert auditor.apex == len(chain) and auditor.status.state == NodeState.READY
    return auditor


def _designate(chain: list[SignedQuantum]) -> AlphaNode:
    """Auditor 1 restarted as alpha, with the chain it executed as an auditor."""
    engine = Engine()
    for signed in chain:
        engine.replay(signed.quantum, verified=True)
    node = AlphaNode(NODES[1], engine, PendingUpdates())
    node.begin_rising()
    node.settings_changed()
    return node


def test_a_designate_rises_with_its_own_chain_and_then_executes_no_request() -> None:
    chain = _old_chain()
    designate = _designate(chain)
    assert designate.is_designate and designate.status.state == NodeState.RISING
    designate.rising_offer(NODES[2].public_key, (), done=True)  # the other auditor's answer
    assert designate.status.state == NodeState.RUNNING
    assert designate.status.reason == DESIGNATE_WAITING
    with pytest.raises(InvalidState):
        designate.status.require_ready()
    with pytest.raises(InvalidState):
        designate.notify(deposit_quantum(2, [(CLIENT, "USD", UNIT)]), 2_000)


def test_a_designate_executes_only_the_update_naming_it_at_the_new_alpha_index() -> None:
    chain = _old_chain()
    designate = _designate(chain)
    designate.rising_offer(NODES[2].public_key, (), done=True)
    with pytest.raises(InvalidState, match="names another alpha"):
        designate.update_settings(_replacement(NODES[2], NODES[1:]), 2_000)
    other = dataclasses.replace(default_settings(NODES), version=2, min_allowed_lot_size=7)
    with pytest.raises(BadRequest, match="does not replace alpha"):
        designate.update_settings(
            settings_quantum(other, NODES[1:], constellation_id=CID).update, 2_000
        )
    executed = designate.update_settings(_replacement(NODES[1], NODES[1:]), 2_000)
    assert executed.apex == len(chain) + 1
    assert designate.status.state == NodeState.READY and not designate.is_designate
    update = designate.take_outgoing()[-1]
    assert [s.auditor_index for s in update.signatures] == [1]


def test_an_auditor_told_of_the_update_follows_the_designate() -> None:
    chain = _old_chain()
    auditor = _auditor(2, chain)
    designate = _designate(chain)
    designate.rising_offer(NODES[2].public_key, (), done=True)
    envelope = _replacement(NODES[1], NODES[1:])
    designate.update_settings(envelope, 2_000)
    frame = _frame(designate.take_outgoing(), designate.engine.state.apex, NODES[1])

    told = _auditor(2, chain)
    told.designate(replacement_check(envelope, told.engine.state.require_config()).alpha)
    outcome = told.handle_frame(frame)
    assert told.status.state == NodeState.READY, told.status.reason
    assert told.engine.state.require_config().settings.alpha == NODES[1].public_key
    assert told.designated_alpha is None  # in force: the plain check covers it
    assert [r.apex for r in outcome.results] == [len(chain) + 1]

    auditor.handle_frame(frame)  # not told: the designate is nobody
    assert auditor.status.state == NodeState.FAILED


def test_the_alpha_in_force_refuses_to_execute_its_replacement() -> None:
    alpha = AlphaNode(NODES[0], Engine(), PendingUpdates())
    alpha.initialize(settings_quantum(default_settings(NODES), NODES).update, 1_000)
    with pytest.raises(InvalidState, match="executed by the alpha it names"):
        alpha.update_settings(_replacement(NODES[1], NODES[1:]), 2_000)
    assert alpha.engine.state.apex == 1


def test_the_herald_url_of_an_address() -> None:
    assert herald_url("http://10.0.0.2:8000/") == "ws://10.0.0.2:8000/ws/herald/"
    assert herald_url("https://node.example") == "wss://node.example/ws/herald/"


def test_an_auditor_told_of_the_update_ignores_the_replaced_alpha() -> None:
    old = AlphaNode(NODES[0], Engine(), PendingUpdates())
    old.initialize(settings_quantum(default_settings(NODES), NODES).update, 1_000)
    chain = old.take_outgoing()
    auditor = _auditor(2, chain)
    envelope = _replacement(NODES[1], NODES[1:])
    auditor.designate(replacement_check(envelope, auditor.engine.state.require_config()).alpha)
    old.notify(deposit_quantum(1, [(CLIENT, "USD", UNIT)]), 1_001)  # it is alive after all
    outcome = auditor.handle_frame(_frame(old.take_outgoing(), 2, NODES[0]))
    assert not outcome.results and auditor.apex == 1  # not signed: no fork through this node
    assert auditor.status.state != NodeState.FAILED


def test_an_alpha_handed_its_replacement_stops_for_good() -> None:
    alpha = AlphaNode(NODES[0], Engine(), PendingUpdates())
    alpha.initialize(settings_quantum(default_settings(NODES), NODES).update, 1_000)
    unsigned = dataclasses.replace(default_settings(NODES), version=2, alpha=NODES[1].public_key)
    with pytest.raises(Unauthorized):  # one signature is not a majority: nothing changes
        alpha.stop_replaced(settings_quantum(unsigned, NODES[1:2], constellation_id=CID).update, "")
    assert alpha.status.state == NodeState.READY
    alpha.stop_replaced(_replacement(NODES[1], NODES[1:]), "http://new")
    assert alpha.status.state == NodeState.RUNNING
    assert "replaced by the alpha at http://new" in alpha.status.reason
    alpha.review_finality(10_000)
    alpha.settings_changed()
    with pytest.raises(InvalidState, match="replaced"):
        alpha.notify(deposit_quantum(1, [(CLIENT, "USD", UNIT)]), 1_001)
