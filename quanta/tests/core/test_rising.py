"""Alpha's recovery from the auditors (Rising), SPEC.md Catchup.

Goal: a restarted alpha executes nothing until enough auditors answered that every finality
quorum is among them (both auditors of three), so it never replaces a quantum an auditor holds
as final; it re-applies exactly the
alpha-signed quanta above its persisted apex with the auditors' signatures aggregated; it
fails on two different alpha-signed quanta at one apex or on a gap, and ignores quanta alpha
never signed.
Method: a reference engine produces a chain of quanta that alpha and the auditors signed; a
second engine replays a prefix of it (what alpha had persisted) and then rises.
"""

from __future__ import annotations

import dataclasses

import pytest

from quanta.core.alpha import AlphaNode
from quanta.core.engine import Engine, Executed
from quanta.core.keys import KeyPair
from quanta.core.pending import PendingUpdates
from quanta.core.rising import answers_needed
from quanta.core.signatures import constellation_id_of, majority
from quanta.core.status import InvalidState
from quanta.core.testing import default_settings, deposit_quantum, keypair, settings_quantum
from quanta.core.xdr.schema import (
    ConstellationQuantum,
    ConstellationSettings,
    ConstellationUpdate,
    NodeSignature,
    NodeState,
    SignedQuantum,
)

NODES = [keypair(200), keypair(201), keypair(202)]
CLIENTS = [keypair(i) for i in range(1, 5)]
UNIT = 10_000_000
PERSISTED = 3  # Quanta alpha had persisted before the crash.
TOTAL = 6
CID = constellation_id_of(default_settings(NODES))
"""The id of the constellation these tests run (its genesis settings' hash)."""


def _chain() -> list[Executed]:
    engine = Engine()
    executed = [engine.execute(settings_quantum(default_settings(NODES), NODES), 1_000)]
    for cursor, client in enumerate(CLIENTS + CLIENTS[:1], start=1):
        body = deposit_quantum(cursor, [(client, "USD", 5 * UNIT)])
        executed.append(engine.execute(body, 1_000 + cursor))
    assert [e.apex for e in executed] == list(range(1, TOTAL + 1))
    return executed


CHAIN = _chain()


def _signed(executed: Executed, signers: tuple[int, ...] = (0, 1)) -> SignedQuantum:
    signatures = tuple(NodeSignature(i, NODES[i].sign(executed.payload_hash)) for i in signers)
    return SignedQuantum(executed.quantum, signatures)


def _restarted_alpha() -> AlphaNode:
    engine = Engine()
    for executed in CHAIN[:PERSISTED]:
        engine.replay(executed.quantum, verified=True)
    alpha = AlphaNode(NODES[0], engine, PendingUpdates())
    alpha.begin_rising()
    alpha.settings_changed()  # What the worker does next must not end the recovery.
    return alpha


def test_a_restarted_alpha_is_rising_and_refuses_requests() -> None:
    alpha = _restarted_alpha()
    assert alpha.status.state == NodeState.RISING
    with pytest.raises(InvalidState):
        alpha.status.require_ready()


def test_the_answers_reapply_the_missing_quanta_with_aggregated_signatures() -> None:
    alpha = _restarted_alpha()
    offered = tuple(_signed(e) for e in CHAIN[PERSISTED:])
    alpha.rising_offer(NODES[1].public_key, offered, done=True)
    alpha.rising_offer(NODES[2].public_key, (), done=True)
    assert alpha.status.state == NodeState.READY, alpha.status.reason
    assert alpha.engine.state.apex == TOTAL
    assert alpha.engine.state.last_hash == CHAIN[-1].quantum_hash
    assert not alpha.unfinalized, "alpha + auditor 1 are a majority of 3: all final"
    assert [row.apex for row in alpha.take_final_rows()] == list(range(PERSISTED + 1, TOTAL + 1))


def test_nothing_is_decided_before_every_finality_quorum_answered() -> None:
    alpha = _restarted_alpha()
    alpha.rising_offer(
        NODES[1].public_key, tuple(_signed(e) for e in CHAIN[PERSISTED:]), done=False
    )
    alpha.rising_offer(NODES[2].public_key, (), done=True)
    assert alpha.status.state == NodeState.RISING
    assert alpha.engine.state.apex == PERSISTED


def test_an_empty_answer_first_cannot_fork_a_final_quantum() -> None:
    # Alpha and auditor 1 finalized the quanta above PERSISTED, then alpha crashed before
    # persisting them. Auditor 2 (lagging, or lying with an empty catchup) answers first. A
    # decision on alpha + auditor 2 (a bare majority) resumed at PERSISTED, so alpha executed
    # a different quantum at an apex auditor 1 held as final.
    alpha = _restarted_alpha()
    alpha.rising_offer(NODES[2].public_key, (), done=True)
    assert alpha.status.state == NodeState.RISING
    assert alpha.engine.state.apex == PERSISTED
    alpha.rising_offer(NODES[1].public_key, tuple(_signed(e) for e in CHAIN[PERSISTED:]), done=True)
    assert alpha.status.state == NodeState.READY, alpha.status.reason
    assert alpha.engine.state.last_hash == CHAIN[-1].quantum_hash


@pytest.mark.parametrize(
    ("nodes", "needed"), [(1, 0), (2, 1), (3, 2), (4, 2), (5, 3), (7, 4), (19, 10)]
)
def test_the_answers_needed_intersect_every_finality_quorum(nodes: int, needed: int) -> None:
    quorum_others = majority(nodes) - 1  # the signers of a final quantum besides alpha
    assert answers_needed(nodes, majority(nodes)) == needed
    assert needed + quorum_others > nodes - 1 or nodes == 1  # pigeonhole: they must share one
    assert needed - 1 + quorum_others <= nodes - 1 or nodes <= 2  # and one fewer would not


def test_quanta_alpha_never_signed_are_ignored() -> None:
    alpha = _restarted_alpha()
    forged = tuple(_signed(e, signers=(1, 2)) for e in CHAIN[PERSISTED:])
    alpha.rising_offer(NODES[1].public_key, forged, done=True)
    alpha.rising_offer(NODES[2].public_key, forged, done=True)
    assert alpha.status.state == NodeState.READY
    assert alpha.engine.state.apex == PERSISTED


def test_two_alpha_signed_quanta_at_one_apex_fail_the_node() -> None:
    other = Engine()
    for executed in CHAIN[:PERSISTED]:
        other.replay(executed.quantum, verified=True)
    fork = other.execute(deposit_quantum(PERSISTED, [(CLIENTS[3], "USD", 7 * UNIT)]), 9_999)
    assert fork.apex == CHAIN[PERSISTED].apex
    alpha = _restarted_alpha()
    alpha.rising_offer(NODES[1].public_key, (_signed(CHAIN[PERSISTED]),), done=False)
    alpha.rising_offer(NODES[2].public_key, (_signed(fork, signers=(0, 2)),), done=True)
    assert alpha.status.state == NodeState.FAILED
    assert "compromised" in alpha.status.reason


def test_a_gap_in_the_offered_quanta_fails_the_node() -> None:
    alpha = _restarted_alpha()
    alpha.rising_offer(NODES[1].public_key, (_signed(CHAIN[PERSISTED + 1]),), done=True)
    alpha.rising_offer(NODES[2].public_key, (), done=True)
    assert alpha.status.state == NodeState.FAILED
    assert "gap" in alpha.status.reason
    assert alpha.engine.state.apex == PERSISTED


NEW = keypair(203)
"""The auditor that replaces NODES[2] by the settings update at apex ROTATED."""
ROTATED = PERSISTED + 1


def _rotated_chain() -> list[Executed]:
    # Alpha persisted PERSISTED quanta; then a settings update replaces auditor 2 by NEW,
    # and two deposits follow. Each quantum from the update on is signed by alpha and NEW,
    # as alpha finalizes them: under the settings in force at their apex.
    engine = Engine()
    for executed in CHAIN[:PERSISTED]:
        engine.replay(executed.quantum, verified=True)
    rotated = dataclasses.replace(default_settings([NODES[0], NODES[1], NEW]), version=2)
    chain = [
        engine.execute(
            settings_quantum(rotated, NODES[:2], message_id=2, constellation_id=CID), 2_000
        )
    ]
    for cursor, client in enumerate(CLIENTS[:2], start=PERSISTED):
        chain.append(engine.execute(deposit_quantum(cursor, [(client, "USD", UNIT)]), 2_001))
    return chain


def _signed_by(executed: Executed, *signers: KeyPair) -> SignedQuantum:
    index = {NODES[0].public_key: 0, NODES[1].public_key: 1, NEW.public_key: 2}
    signatures = tuple(
        NodeSignature(index[k.public_key], k.sign(executed.payload_hash)) for k in signers
    )
    return SignedQuantum(executed.quantum, signatures)


def test_recovery_checks_each_quantum_with_the_settings_in_force_at_its_apex() -> None:
    # Checked with the settings alpha had persisted, NEW's signatures (index 2 there is
    # NODES[2]) were refused: the recovered quanta stayed unfinal.
    rotated = _rotated_chain()
    alpha = _restarted_alpha()
    offered = tuple(_signed_by(e, NODES[0], NEW) for e in rotated)
    alpha.rising_offer(NODES[1].public_key, offered, done=True)
    alpha.rising_offer(NODES[2].public_key, (), done=True)
    alpha.rising_offer(NEW.public_key, offered, done=True)
    assert alpha.status.state == NodeState.READY, alpha.status.reason
    assert alpha.engine.state.apex == rotated[-1].apex
    assert alpha.engine.state.require_config().auditor_keys[2] == NEW.public_key
    assert not alpha.unfinalized, "alpha + NEW are a majority of the rotated settings"


def test_a_removed_auditor_cannot_finalize_quanta_above_its_removal() -> None:
    rotated = _rotated_chain()
    alpha = _restarted_alpha()
    offered = tuple(_signed_by(e, NODES[0]) for e in rotated)
    removed = tuple(
        SignedQuantum(s.quantum, (*s.signatures, NodeSignature(2, NODES[2].sign(e.payload_hash))))
        for s, e in zip(offered, rotated, strict=True)
    )
    alpha.rising_offer(NODES[1].public_key, removed, done=True)
    alpha.rising_offer(NODES[2].public_key, (), done=True)
    alpha.rising_offer(NEW.public_key, (), done=True)
    assert alpha.status.state == NodeState.READY, alpha.status.reason
    assert sorted(alpha.unfinalized) == [e.apex for e in rotated]


def test_recovery_across_an_update_waits_for_the_auditors_it_brings_in() -> None:
    # Quanta from the update on are final with alpha and NEW: the old auditors' answers alone
    # do not intersect that quorum (NODES[2] is not even in the new settings).
    rotated = _rotated_chain()
    alpha = _restarted_alpha()
    offered = tuple(_signed_by(e, NODES[0], NEW) for e in rotated)
    alpha.rising_offer(NODES[1].public_key, offered, done=True)
    alpha.rising_offer(NODES[2].public_key, (), done=True)
    assert alpha.status.state == NodeState.RISING
    alpha.rising_offer(NEW.public_key, offered, done=True)
    assert alpha.status.state == NodeState.READY, alpha.status.reason


def test_an_unfinal_update_makes_recovery_wait_for_its_auditors() -> None:
    # Alpha recorded the update as unfinal before executing it; the old auditors were down
    # then and answer nothing above alpha's apex, NEW holds the update final. Counting only
    # the persisted settings' auditors, alpha resumed without it (a fork at ROTATED).
    rotated = _rotated_chain()
    alpha = _restarted_alpha()
    alpha.rising = None
    alpha.status.set(NodeState.RUNNING, "loaded")
    update = _update_settings(rotated[0])
    alpha.begin_rising([update])
    assert NEW.public_key in alpha.signers_still_needed(), "the herald must admit NEW"
    alpha.rising_offer(NODES[1].public_key, (), done=True)
    alpha.rising_offer(NODES[2].public_key, (), done=True)
    assert alpha.status.state == NodeState.RISING
    offered = tuple(_signed_by(e, NODES[0], NEW) for e in rotated)
    alpha.rising_offer(NEW.public_key, offered, done=True)
    assert alpha.status.state == NodeState.READY, alpha.status.reason
    assert alpha.engine.state.apex == rotated[-1].apex
    assert alpha.take_unfinal_forgotten() == [], "recovered: its record waits for a final row"


def test_an_unfinal_update_nobody_holds_is_forgotten_after_the_recovery() -> None:
    # Nobody answered it, so it was final nowhere: its record would only make every later
    # recovery wait for its auditors.
    update = _update_settings(_rotated_chain()[0])
    alpha = _restarted_alpha()
    alpha.rising = None
    alpha.status.set(NodeState.RUNNING, "loaded")
    alpha.begin_rising([update])
    for key in (NODES[1], NODES[2], NEW):
        alpha.rising_offer(key.public_key, (), done=True)
    assert alpha.status.state == NodeState.READY, alpha.status.reason
    assert alpha.take_unfinal_forgotten() == [update]


def test_own_rows_above_a_hole_are_offered_and_their_updates_wait_for_their_auditors() -> None:
    # Alpha persisted the update and the deposits after it, not the quantum below (a hole):
    # the loader replays up to the hole and hands the rows above it to Rising.
    rotated = _rotated_chain()
    alpha = _restarted_alpha()
    alpha.rising = None
    alpha.status.set(NodeState.RUNNING, "loaded")
    own = tuple(_signed_by(e, NODES[0], NEW) for e in rotated)
    alpha.begin_rising(own=own)
    alpha.rising_offer(NODES[1].public_key, (), done=True)
    alpha.rising_offer(NODES[2].public_key, (), done=True)
    assert alpha.status.state == NodeState.RISING, "NEW may hold more above the update"
    alpha.rising_offer(NEW.public_key, (), done=True)
    assert alpha.status.state == NodeState.READY, alpha.status.reason
    assert alpha.engine.state.apex == rotated[-1].apex


def _update_settings(executed: Executed) -> ConstellationSettings:
    body = executed.quantum.body
    assert isinstance(body, ConstellationQuantum)
    assert isinstance(body.update.message, ConstellationUpdate)
    return body.update.message.settings


def _uninitialized_alpha() -> AlphaNode:
    # Alpha executed the genesis (its settings are on disk) and crashed before the genesis
    # quantum was final and persisted: its engine loads empty.
    alpha = AlphaNode(NODES[0], Engine(), PendingUpdates())
    alpha.begin_rising(genesis=default_settings(NODES))
    return alpha


def test_an_alpha_that_lost_its_genesis_recovers_it_from_the_auditors() -> None:
    # Before, it restarted uninitialized and executed a new genesis (another timestamp) at
    # apex 1, where the auditors held the first one.
    alpha = _uninitialized_alpha()
    with pytest.raises(InvalidState, match="recovering"):
        alpha.initialize(settings_quantum(default_settings(NODES), NODES).update, 5_000)
    alpha.rising_offer(NODES[1].public_key, (_signed(CHAIN[0]),), done=True)
    alpha.rising_offer(NODES[2].public_key, (), done=True)
    assert alpha.status.state == NodeState.READY, alpha.status.reason
    assert alpha.engine.state.apex == 1
    assert alpha.engine.state.last_hash == CHAIN[0].quantum_hash


def test_a_genesis_no_auditor_holds_can_be_posted_again() -> None:
    alpha = _uninitialized_alpha()
    alpha.rising_offer(NODES[1].public_key, (), done=True)
    alpha.rising_offer(NODES[2].public_key, (), done=True)
    assert alpha.status.state == NodeState.RUNNING
    assert "not initialized" in alpha.status.reason
    alpha.initialize(settings_quantum(default_settings(NODES), NODES).update, 5_000)
    assert alpha.status.state == NodeState.READY, alpha.status.reason
