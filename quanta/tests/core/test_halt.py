"""The scheduled halt: a settings update stops execution above a stated apex, on every node.

Method: an initialized engine (3 auditors, 2 of them sign updates); an update sets
`halt_after_apex`; requests and notifications above it are refused with 450 and the reason,
the state unchanged; a node replaying alpha's quanta refuses one above the halt (so an
auditor never signs it); a later update with `halt_after_apex = 0` resumes.
"""

from __future__ import annotations

import dataclasses

import pytest

from quanta.core.engine import QuantumMismatch
from quanta.core.settings_json import settings_from_json, settings_to_json
from quanta.core.status import ConstellationError, StatusCode
from quanta.core.testing import (
    QUOTE,
    default_settings,
    deposit_quantum,
    keypair,
    settings_quantum,
)
from quanta.core.xdr.schema import Quantum
from quanta.tests.core.test_engine import UNIT, Node

ALICE, BOB = keypair(210), keypair(211)


def halt_update(node: Node, version: int, halt_after_apex: int) -> None:
    """Runs a settings update (signed by a majority) that schedules `halt_after_apex`."""
    settings = dataclasses.replace(
        default_settings(node.auditors, version=version), halt_after_apex=halt_after_apex
    )
    node.run(settings_quantum(settings, node.auditors[:2], constellation_id=node.cid))


@pytest.fixture
def node() -> Node:
    node = Node()
    node.deposit(ALICE, QUOTE, 100 * UNIT)
    node.deposit(BOB, QUOTE, 100 * UNIT)
    return node


def refused_with_450(node: Node, run: object) -> str:
    before = node.engine.state.state_hash()
    with pytest.raises(ConstellationError) as error:
        run()  # type: ignore[operator]
    assert error.value.status == StatusCode.INVALID_STATE
    assert node.engine.state.state_hash() == before, "a refused request changes nothing"
    return str(error.value)


def test_quanta_up_to_the_halt_run_and_none_after(node: Node) -> None:
    apex = node.engine.state.apex
    halt_update(node, version=2, halt_after_apex=apex + 2)  # the update is apex + 1
    node.pay(ALICE, BOB, QUOTE, UNIT)  # apex + 2: the last one before the halt
    reason = refused_with_450(node, lambda: node.pay(ALICE, BOB, QUOTE, UNIT))
    assert f"halted after apex {apex + 2}" in reason
    assert "resumes with a later settings update" in reason
    refused_with_450(node, lambda: node.deposit(ALICE, QUOTE, UNIT))
    assert node.engine.state.apex == apex + 2


def test_a_later_update_resumes(node: Node) -> None:
    halt_update(node, version=2, halt_after_apex=node.engine.state.apex + 1)
    refused_with_450(node, lambda: node.pay(ALICE, BOB, QUOTE, UNIT))
    halt_update(node, version=3, halt_after_apex=0)  # settings updates run while halted
    node.pay(ALICE, BOB, QUOTE, UNIT)
    assert node.engine.state.accounts.get_by_key(BOB.public_key) is not None


def test_a_replaying_node_refuses_a_quantum_above_the_halt(node: Node) -> None:
    # What an auditor does with a quantum alpha executed past the halt: it does not sign it.
    halt_update(node, version=2, halt_after_apex=node.engine.state.apex)
    state = node.engine.state
    beyond = Quantum(
        state.apex + 1, state.last_hash, b"\x00" * 32, 2_000_000, deposit_quantum(99, [])
    )
    with pytest.raises(QuantumMismatch, match="halted after apex"):
        node.engine.replay(beyond)


def test_the_halt_travels_in_the_settings_json() -> None:
    settings = dataclasses.replace(default_settings([keypair(1)]), halt_after_apex=77)
    assert settings_to_json(settings)["halt_after_apex"] == 77
    assert settings_from_json(settings_to_json(settings)) == settings
    data = settings_to_json(default_settings([keypair(1)]))
    del data["halt_after_apex"]
    assert settings_from_json(data).halt_after_apex == 0, "absent means running"
