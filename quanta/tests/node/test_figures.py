"""The engine's published figures (`quanta.node.figures.figures_json`): lag per auditor, the
auditors alpha hears from but has no signature of yet, and the last error. No database."""

from __future__ import annotations

from quanta.core.keys import encode_public_key
from quanta.core.xdr.schema import NodeState
from quanta.node.figures import EngineFigures, NodeReading, figures_json

A1, A2 = b"\1" * 32, b"\2" * 32


def reading(state: NodeState, reason: str = "", apex: int = 10) -> NodeReading:
    return NodeReading(state, reason, apex, apex, apex, 0, 0, 0, 0, apex, (A1, A2))


def test_lag_is_alphas_apex_minus_what_each_auditor_signed() -> None:
    figures = EngineFigures("alpha")
    figures.signed(A1, 10, 40)
    figures.signed(A2, 4, 60)
    auditors = figures_json(figures, reading(NodeState.READY), 0)["auditors"]
    assert isinstance(auditors, dict)
    assert auditors[encode_public_key(A1)]["lag"] == 0
    assert auditors[encode_public_key(A2)]["lag"] == 6


def test_a_connected_auditor_without_signatures_lags_by_the_whole_apex() -> None:
    auditors = figures_json(EngineFigures("alpha"), reading(NodeState.READY), 0)["auditors"]
    assert isinstance(auditors, dict)
    assert auditors[encode_public_key(A1)] == {"signed_apex": 0, "lag": 10, "connected": True}


def test_the_last_error_is_the_last_reason_not_to_be_ready() -> None:
    figures = EngineFigures("alpha")
    figures_json(figures, reading(NodeState.UNDEFINED, "not initialized"), 0)
    assert figures.last_error.reason == ""  # Not initialized yet is no error.
    figures_json(figures, reading(NodeState.RUNNING, "cannot finalize: 0 of 2"), 0)
    payload = figures_json(figures, reading(NodeState.READY, "a majority can sign again"), 0)
    last = payload["last_error"]
    assert isinstance(last, dict)
    assert last["reason"] == "cannot finalize: 0 of 2" and int(str(last["at_ms"])) > 0
