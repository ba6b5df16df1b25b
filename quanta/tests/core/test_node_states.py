"""Node states tell the truth about the node's peers (issue 15, item 7), in the pure cores.

Goal: an auditor leaves Ready when it loses alpha (its link says so, or alpha is silent past
the bound) and becomes Ready as soon as a frame from alpha (a heartbeat: no quanta, alpha's
apex) shows it in step; alpha leaves Ready for Running while a majority of auditors cannot
sign (none connected, silent, or Failed), refuses requests with 450 and that reason, and
returns to Ready by itself; every move to Failed is logged at ERROR with its cause.
Method: a real AlphaNode makes the frames an auditor's AuditorNode takes; times are the
monotonic ms the shells pass in. No database.
"""

from __future__ import annotations

import logging

import pytest

from quanta.core.alpha import AlphaNode
from quanta.core.auditor import ALPHA_SILENCE_MS, AuditorNode
from quanta.core.engine import Engine
from quanta.core.envelopes import envelope_bytes
from quanta.core.node_state import NodeStatus
from quanta.core.pending import PendingUpdates
from quanta.core.presence import AUDITOR_SILENCE_MS
from quanta.core.signatures import constellation_id_of
from quanta.core.status import StatusCode
from quanta.core.testing import (
    default_settings,
    deposit_quantum,
    keypair,
    next_message_id,
    settings_quantum,
    sign_message,
)
from quanta.core.xdr.codec import decode, encode
from quanta.core.xdr.schema import (
    MESSAGE,
    NodeState,
    PaymentRequest,
    QuantaBatch,
    ResultMessage,
    SignedQuantum,
)

NODES = [keypair(230), keypair(231), keypair(232)]
PAYER, PAYEE = keypair(233), keypair(234)
UNIT = 10_000_000
REPLY = ("gateway.hub!1", 1)
CID = constellation_id_of(default_settings(NODES))
"""The id of the constellation these tests run (its genesis settings' hash)."""


def _frame(quanta: list[SignedQuantum], apex: int) -> bytes:
    return envelope_bytes(encode(QuantaBatch(0, tuple(quanta), apex), MESSAGE), NODES[0], CID)


def _alpha(nodes: list = NODES) -> AlphaNode:  # type: ignore[type-arg]
    alpha = AlphaNode(nodes[0], Engine(), PendingUpdates())
    alpha.initialize(settings_quantum(default_settings(nodes), nodes).update, 1_000)
    alpha.notify(deposit_quantum(1, [(PAYER, "USD", 10 * UNIT)]), 1_001)
    return alpha


def _auditor(alpha: AlphaNode, now_ms: int = 0) -> AuditorNode:
    auditor = AuditorNode(NODES[1], Engine(), PendingUpdates())
    auditor.handle_frame(_frame(alpha.take_outgoing(), alpha.engine.state.apex), now_ms)
    assert auditor.status.state == NodeState.READY
    return auditor


def _refusal(alpha: AlphaNode) -> ResultMessage:
    request = PaymentRequest(next_message_id(), PAYER.public_key, 1, "USD", UNIT, PAYEE.public_key)
    (delivery,) = alpha.submit(sign_message(request, PAYER, CID), 2_000, REPLY)
    message = decode(MESSAGE, delivery.message)
    assert isinstance(message, ResultMessage)
    return message


def test_a_move_to_failed_is_logged_with_its_cause(caplog: pytest.LogCaptureFixture) -> None:
    status = NodeStatus()
    status.set(NodeState.RUNNING, "loaded")
    with caplog.at_level(logging.INFO, logger="quanta.core.node_state"):
        status.set(NodeState.READY, "in step")
        assert not caplog.records, "only Failed is logged"
        status.set(NodeState.FAILED, "quantum 7: effects differ")
    (record,) = caplog.records
    assert record.levelno == logging.ERROR
    assert "quantum 7: effects differ" in record.getMessage()


def test_an_auditor_that_loses_its_link_leaves_ready() -> None:
    auditor = _auditor(_alpha())
    auditor.alpha_lost("herald link: connection refused")
    assert auditor.status.state == NodeState.RUNNING
    assert auditor.status.reason == "lost alpha: herald link: connection refused"


def test_a_silent_alpha_is_lost_after_the_bound_and_a_heartbeat_brings_it_back() -> None:
    alpha = _alpha()
    auditor = _auditor(alpha, now_ms=10_000)
    auditor.review_alpha(10_000 + ALPHA_SILENCE_MS)
    assert auditor.status.state == NodeState.READY, "within the bound"
    auditor.review_alpha(10_000 + ALPHA_SILENCE_MS + 1)
    assert auditor.status.state == NodeState.RUNNING
    assert "nothing heard from alpha" in auditor.status.reason
    heartbeat = _frame([], alpha.engine.state.apex)
    outcome = auditor.handle_frame(heartbeat, 20_000)
    assert outcome.results == []
    assert auditor.status.state == NodeState.READY
    assert auditor.heard_ms == 20_000


def test_an_idle_restarted_auditor_is_ready_from_alpha_apex_alone() -> None:
    alpha = _alpha()
    auditor = _auditor(alpha)
    auditor.status.set(NodeState.RUNNING, "loaded; waiting for alpha")  # As after a restart.
    auditor.handle_frame(_frame([], alpha.engine.state.apex + 2), 1)
    assert auditor.status.state == NodeState.CHASING, "behind alpha: not Ready"
    auditor.alpha_lost("herald link: closed")
    assert auditor.status.state == NodeState.RUNNING, "Chasing may lose alpha too"
    auditor.handle_frame(_frame([], alpha.engine.state.apex), 2)
    assert auditor.status.state == NodeState.READY


def test_alpha_without_auditors_cannot_finalize_and_refuses_with_the_reason() -> None:
    alpha = _alpha()
    alpha.review_finality(0)
    assert alpha.status.state == NodeState.RUNNING
    assert alpha.status.reason == (
        "cannot finalize: 0 of 2 auditors can sign, 1 needed "
        "(auditor 1 not connected; auditor 2 not connected)"
    )
    refusal = _refusal(alpha)
    assert refusal.status == StatusCode.INVALID_STATE
    assert "cannot finalize" in refusal.description
    alpha.auditor_report(NODES[2].public_key, "herald!a", NodeState.RUNNING, "connected", 5)
    assert alpha.status.state == NodeState.READY
    assert alpha.status.reason == "a majority of auditors can sign again"


def test_alpha_counts_failed_silent_and_gone_auditors_out() -> None:
    alpha = _alpha()
    alpha.auditor_report(NODES[1].public_key, "herald!a", NodeState.READY, "in step", 0)
    alpha.review_finality(0)
    assert alpha.status.state == NodeState.READY
    alpha.auditor_report(
        NODES[1].public_key, "herald!a", NodeState.FAILED, "the notification does not match", 1
    )
    assert alpha.status.state == NodeState.RUNNING
    assert "auditor 1 Failed: the notification does not match" in alpha.status.reason
    alpha.auditor_report(NODES[1].public_key, "herald!b", NodeState.READY, "in step", 2)
    assert alpha.status.state == NodeState.READY
    alpha.auditor_gone(NODES[1].public_key, "herald!a", 3)
    assert alpha.status.state == NodeState.READY, "a replaced connection's close changes nothing"
    alpha.review_finality(2 + AUDITOR_SILENCE_MS + 1)
    assert alpha.status.state == NodeState.RUNNING
    assert "auditor 1 silent" in alpha.status.reason
    alpha.auditor_heard(NODES[1].public_key, 2 + AUDITOR_SILENCE_MS + 2)
    assert alpha.status.state == NodeState.RUNNING, "heard is applied at the next review"
    alpha.review_finality(2 + AUDITOR_SILENCE_MS + 2)
    assert alpha.status.state == NodeState.READY
    alpha.auditor_gone(NODES[1].public_key, "herald!b", 2 + AUDITOR_SILENCE_MS + 3)
    assert alpha.status.state == NodeState.RUNNING


def test_alpha_alone_always_finalizes() -> None:
    alpha = _alpha([NODES[0]])
    alpha.review_finality(0)
    assert alpha.status.state == NodeState.READY


def test_a_rising_or_failed_alpha_is_left_alone() -> None:
    alpha = _alpha()
    alpha.status.set(NodeState.FAILED, "test")
    alpha.review_finality(0)
    assert alpha.status.state == NodeState.FAILED


def test_an_update_its_new_auditors_could_not_finalize_is_refused_until_they_are_there() -> None:
    # Executed without enough of its new auditors connected, a rotation stayed unfinal, and
    # so did everything after it.
    import dataclasses

    from quanta.core.alpha import UPDATE_CANNOT_FINALIZE
    from quanta.core.status import InvalidState
    from quanta.core.xdr.schema import AuditorSettings

    alpha = _alpha()
    for node in NODES[1:]:
        alpha.auditor_report(node.public_key, node.public_key_strkey, NodeState.READY, "", 10)
    new_one, new_two = keypair(233), keypair(234)
    current = alpha.engine.state.require_config().settings
    auditors = (
        current.auditors[0],
        AuditorSettings(new_one.public_key, "http://n1"),
        AuditorSettings(new_two.public_key, "http://n2"),
    )
    rotated = dataclasses.replace(current, version=2, auditors=auditors)
    update = settings_quantum(rotated, NODES[:2], message_id=2, constellation_id=CID).update
    apex = alpha.engine.state.apex
    with pytest.raises(InvalidState, match=UPDATE_CANNOT_FINALIZE) as refused:
        alpha.update_settings(update, 2_000, presence_ms=20)
    assert "not connected" in str(refused.value)
    assert alpha.engine.state.apex == apex
    alpha.auditor_report(new_one.public_key, "n1", NodeState.CHASING, "catching up", 30)
    executed = alpha.update_settings(update, 2_000, presence_ms=40)  # alpha + new_one: 2 of 3
    assert executed.apex == apex + 1
