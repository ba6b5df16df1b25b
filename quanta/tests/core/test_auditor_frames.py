"""An auditor takes quanta only in frames alpha signed.

Goal: once the settings are known, a herald frame must be a `QuantaBatch` in an envelope
signed by alpha's key (one verification per batch stands for alpha's signature on each
quantum); a frame signed by anyone else stops the auditor (Failed, saying why) before it
executes anything; before the settings, each quantum's alpha signature is checked, so a
first batch with a forged alpha signature is refused too; a frame that is not an envelope
changes nothing.
Method: a real AlphaNode produces the quanta, the auditor's `handle_frame` gets the frames a
herald consumer would send (`envelope_bytes` of the encoded QuantaBatch). No database.
"""

from __future__ import annotations

from quanta.core.alpha import AlphaNode
from quanta.core.auditor import AuditorNode
from quanta.core.engine import Engine
from quanta.core.envelopes import envelope_bytes
from quanta.core.keys import KeyPair
from quanta.core.pending import PendingUpdates
from quanta.core.signatures import constellation_id_of
from quanta.core.testing import default_settings, deposit_quantum, keypair, settings_quantum
from quanta.core.xdr.codec import encode
from quanta.core.xdr.schema import (
    MESSAGE,
    NodeSignature,
    NodeState,
    QuantaBatch,
    SignedQuantum,
)

NODES = [keypair(220), keypair(221), keypair(222)]
CLIENT = keypair(9)
UNIT = 10_000_000
CID = constellation_id_of(default_settings(NODES))
"""The id of the constellation these tests run (its genesis settings' hash)."""


def _frame(quanta: list[SignedQuantum], apex: int, signer: KeyPair) -> bytes:
    return envelope_bytes(encode(QuantaBatch(0, tuple(quanta), apex), MESSAGE), signer, CID)


def _alpha() -> AlphaNode:
    alpha = AlphaNode(NODES[0], Engine(), PendingUpdates())
    alpha.initialize(settings_quantum(default_settings(NODES), NODES).update, 1_000)
    return alpha


def _initialized_auditor(alpha: AlphaNode) -> AuditorNode:
    auditor = AuditorNode(NODES[1], Engine(), PendingUpdates())
    outcome = auditor.handle_frame(_frame(alpha.take_outgoing(), alpha.engine.state.apex, NODES[0]))
    assert len(outcome.results) == 1 and auditor.status.state == NodeState.READY
    return auditor


def test_a_frame_alpha_signed_is_executed_and_signed() -> None:
    alpha = _alpha()
    auditor = _initialized_auditor(alpha)
    alpha.notify(deposit_quantum(1, [(CLIENT, "USD", 10 * UNIT)]), 1_001)
    outcome = auditor.handle_frame(_frame(alpha.take_outgoing(), 2, NODES[0]))
    assert [r.apex for r in outcome.results] == [2]
    assert auditor.engine.state.apex == 2


def test_a_frame_signed_by_another_key_fails_the_auditor_before_executing() -> None:
    alpha = _alpha()
    auditor = _initialized_auditor(alpha)
    alpha.notify(deposit_quantum(1, [(CLIENT, "USD", 10 * UNIT)]), 1_001)
    outcome = auditor.handle_frame(_frame(alpha.take_outgoing(), 2, NODES[2]))
    assert outcome.results == []
    assert auditor.engine.state.apex == 1
    assert auditor.status.state == NodeState.FAILED
    assert "not signed by alpha" in auditor.status.reason


def test_before_the_settings_each_quantum_needs_alpha_s_own_signature() -> None:
    alpha = _alpha()
    (settings,) = alpha.take_outgoing()
    forged = SignedQuantum(settings.quantum, (NodeSignature(0, NODES[2].sign(bytes(32))),))
    auditor = AuditorNode(NODES[1], Engine(), PendingUpdates())
    outcome = auditor.handle_frame(_frame([forged], 1, NODES[2]))
    assert outcome.results == []
    assert auditor.status.state == NodeState.FAILED
    assert "alpha's signature invalid" in auditor.status.reason


def test_a_frame_that_is_not_a_signed_batch_changes_nothing() -> None:
    alpha = _alpha()
    auditor = _initialized_auditor(alpha)
    for frame in (b"", b"\x00\x00\x00\x28garbage", encode(QuantaBatch(0, (), 1), MESSAGE)):
        assert auditor.handle_frame(frame).results == []
    assert auditor.status.state == NodeState.READY
    assert auditor.engine.state.apex == 1
