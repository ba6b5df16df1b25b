"""A restarted auditor signs again the quanta whose signatures were lost, from what it persisted.

Goal: alpha resends the quanta that stayed unfinal (their signatures were lost in flight); an
auditor that restarted since holds nothing of them in memory, yet signs them again — the same
signature as the first time, which alpha takes and finalizes with — by comparing the copy
with the quantum it persisted; a persisted quantum the copy contradicts, both alpha-signed, is
alpha equivocating (evidence, Failed); the persisted quanta are read only for duplicates not
in memory, at most `PERSISTED_LOOKUP_MAX` per batch, and a fresh stream costs no read.
Method: real AlphaNode / AuditorNode; the auditor's final rows, as its flush would write them,
play its database; a restart is a new AuditorNode whose engine replays those rows (as the
loader does). No database.
"""

from __future__ import annotations

from collections.abc import Collection

import pytest

from quanta.core import auditor as auditor_module
from quanta.core.alpha import AlphaNode
from quanta.core.auditor import AuditorNode, KnownQuantum, known_from_record
from quanta.core.engine import Engine
from quanta.core.evidence import EvidenceKind, evidence_holds
from quanta.core.pending import PendingUpdates, QuantumRow
from quanta.core.signatures import constellation_id_of
from quanta.core.testing import default_settings, deposit_quantum, keypair, settings_quantum
from quanta.core.xdr.codec import decode
from quanta.core.xdr.schema import AuditorResult, NodeState, Quantum, SignedQuantum

NODES = [keypair(240), keypair(241), keypair(242)]
PAYER = keypair(243)
UNIT = 10_000_000
CID = constellation_id_of(default_settings(NODES))


def _alpha(deposits: int = 1, amount: int = 10) -> AlphaNode:
    alpha = AlphaNode(NODES[0], Engine(), PendingUpdates())
    alpha.initialize(settings_quantum(default_settings(NODES), NODES).update, 1_000)
    for cursor in range(1, deposits + 1):
        alpha.notify(deposit_quantum(cursor, [(PAYER, "USD", amount * UNIT)]), 1_000 + cursor)
    return alpha


class Database:
    """The rows an auditor's flush wrote, read back as its worker's lookup does."""

    def __init__(self, rows: list[QuantumRow]) -> None:
        self.rows = {row.apex: row for row in rows}
        self.asked: list[set[int]] = []

    def persisted(self, apexes: Collection[int]) -> dict[int, KnownQuantum]:
        self.asked.append(set(apexes))
        rows = [self.rows[apex] for apex in apexes if apex in self.rows]
        return {r.apex: known_from_record(r.data, r.payload_hash, r.signatures) for r in rows}

    def restarted(self) -> AuditorNode:
        """Returns auditor 1 rebuilt from these rows, nothing of its past in memory."""
        engine = Engine()
        node = AuditorNode(NODES[1], engine, PendingUpdates(), persisted=self.persisted)
        for apex in sorted(self.rows):
            node.pending.record(engine.replay(decode(Quantum, self.rows[apex].data), verified=True))
        node.status.set(NodeState.RUNNING, "loaded; waiting for alpha")
        return node


def _executed_then_restarted(
    quanta: tuple[SignedQuantum, ...],
) -> tuple[list[AuditorResult], Database]:
    """Auditor 1 executes and signs `quanta`, persists them and restarts; returns the results
    it sent first (lost on the way) and its database."""
    first = AuditorNode(NODES[1], Engine(), PendingUpdates())
    results = first.handle_batch(quanta, quanta[-1].quantum.apex).results
    assert [r.apex for r in results] == [s.quantum.apex for s in quanta]
    return results, Database(first.take_final_rows())


def test_a_restarted_auditor_signs_a_resent_quantum_again_from_what_it_persisted() -> None:
    alpha = _alpha(deposits=2)
    quanta = tuple(alpha.take_outgoing())
    lost, database = _executed_then_restarted(quanta)
    auditor = database.restarted()
    assert auditor.apex == 3 and alpha.unfinalized.keys() == {1, 2, 3}

    outcome = auditor.handle_batch(quanta, alpha.engine.state.apex)
    assert outcome.results == lost, "the same payload hashes, so the same signatures"
    assert database.asked == [{1, 2, 3}], "one read, for the duplicates only"
    for result in outcome.results:
        alpha.add_signature(result.apex, result.signature.auditor_index, result.signature.signature)
    assert not alpha.unfinalized
    assert auditor.status.state == NodeState.READY


def test_what_memory_holds_or_a_fresh_stream_costs_no_read() -> None:
    alpha = _alpha(deposits=1)
    _, database = _executed_then_restarted(tuple(alpha.take_outgoing()))
    auditor = database.restarted()
    alpha.notify(deposit_quantum(2, [(PAYER, "USD", UNIT)]), 1_100)
    fresh = tuple(alpha.take_outgoing())
    assert [r.apex for r in auditor.handle_batch(fresh, 3).results] == [3]
    again = auditor.handle_batch(fresh, 3).results
    assert [r.apex for r in again] == [3], "signed again from memory"
    assert database.asked == []


def test_a_duplicate_the_node_has_no_record_of_is_left_unsigned() -> None:
    alpha = _alpha(deposits=1)
    quanta = tuple(alpha.take_outgoing())
    _, database = _executed_then_restarted(quanta)
    auditor = database.restarted()
    database.rows.pop(2)  # Pruned, say: nothing to compare the copy with.
    outcome = auditor.handle_batch(quanta, 2)
    assert [r.apex for r in outcome.results] == [1]
    assert auditor.status.state == NodeState.READY


def test_the_read_is_bounded_per_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(auditor_module, "PERSISTED_LOOKUP_MAX", 2)
    alpha = _alpha(deposits=3)
    quanta = tuple(alpha.take_outgoing())
    _, database = _executed_then_restarted(quanta)
    auditor = database.restarted()
    outcome = auditor.handle_batch(quanta, 4)
    assert [r.apex for r in outcome.results] == [1, 2], "the rest in a later resend"
    assert database.asked == [{1, 2}]
    assert [r.apex for r in auditor.handle_batch(quanta[2:], 4).results] == [3, 4]


def test_a_persisted_quantum_the_copy_contradicts_is_alpha_equivocating() -> None:
    honest, other = _alpha(amount=10), _alpha(amount=20)  # Same key, two quanta at apex 2.
    _, database = _executed_then_restarted(tuple(honest.take_outgoing()))
    auditor = database.restarted()
    forked = other.take_outgoing()[-1]
    assert forked.quantum.apex == 2 and forked.quantum != honest.recent[-1].quantum

    outcome = auditor.handle_batch((forked,), 2)
    assert outcome.results == []
    assert auditor.status.state == NodeState.FAILED
    assert "two different quanta at apex 2" in auditor.status.reason
    (item,) = auditor.take_evidence()
    assert item.kind == EvidenceKind.ALPHA_EQUIVOCATION and item.apex == 2
    assert evidence_holds(item, CID), "alpha's signature of the persisted quantum is kept"
