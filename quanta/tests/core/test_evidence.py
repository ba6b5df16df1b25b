"""Evidence of misbehaviour is kept, and checkable from its own bytes (issue 15, item 6).

Goal: an auditor signature that does not verify — arriving before finality or after it —
becomes exactly one evidence item whose payload hash is recomputed from the quantum kept and
whose signature does not verify under the auditor's key; honest signatures leave none; two
alpha-signed quanta at one apex, met by a rising alpha or by an auditor, become one item with
both signed payloads, and the auditor goes Failed; a record whose bytes were altered no longer
holds. Method: real AlphaNode / AuditorNode / Rising; a forger signs another digest. No database.
"""

from __future__ import annotations

import dataclasses

import pytest

from quanta.core.alpha import LATE_SIGNATURES_CHECKED_ONE_IN, AlphaNode
from quanta.core.auditor import AuditorNode
from quanta.core.engine import Engine
from quanta.core.envelopes import envelope_bytes
from quanta.core.evidence import (
    EvidenceKind,
    evidence_holds,
    late_signature_failures,
)
from quanta.core.hashing import quantum_hash, sha256
from quanta.core.pending import PendingUpdates
from quanta.core.rising import Rising, RisingFailed
from quanta.core.signatures import constellation_id_of, payload_hash, verify_digest
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
    Quantum,
    SignedQuantum,
)

NODES = [keypair(240), keypair(241), keypair(242)]
PAYER, PAYEE = keypair(243), keypair(244)
UNIT = 10_000_000
REPLY = ("gateway.hub!1", 1)
CARRIER = b"the auditor's signed frame"
CID = constellation_id_of(default_settings(NODES))
"""The id of the constellation these tests run (its genesis settings' hash)."""


def _alpha(deposit: int = 10, late_check_one_in: int = 1) -> AlphaNode:
    # Every late signature checked unless a test says otherwise (the node samples 1 in 16).
    alpha = AlphaNode(NODES[0], Engine(), PendingUpdates(), late_check_one_in=late_check_one_in)
    alpha.initialize(settings_quantum(default_settings(NODES), NODES).update, 1_000)
    alpha.notify(deposit_quantum(1, [(PAYER, "USD", deposit * UNIT)]), 1_001)
    return alpha


def _pay(alpha: AlphaNode) -> tuple[int, bytes]:
    request = PaymentRequest(next_message_id(), PAYER.public_key, 1, "USD", UNIT, PAYEE.public_key)
    alpha.submit(sign_message(request, PAYER, CID), 2_000, REPLY)
    apex = alpha.engine.state.apex
    return apex, alpha.unfinalized[apex].executed.payload_hash


def _forged(payload: bytes) -> bytes:
    return NODES[2].sign(sha256(b"tampered" + payload))


def test_a_forged_signature_before_finality_is_one_evidence_item() -> None:
    alpha = _alpha()
    apex, payload = _pay(alpha)
    assert alpha.add_signature(apex, 2, _forged(payload), CARRIER) == []
    (item,) = alpha.take_evidence()
    assert item.kind == EvidenceKind.INVALID_SIGNATURE
    assert (item.signer, item.apex, item.carrier) == (NODES[2].public_key, apex, CARRIER)
    quantum = decode(Quantum, item.first.quantum)
    recomputed = payload_hash(CID, apex, quantum_hash(quantum), quantum.effects_proof)
    assert recomputed == item.first.payload_hash == payload
    assert not verify_digest(NODES[2].public_key, payload, item.first.signature)
    assert evidence_holds(item, CID)
    assert apex in alpha.unfinalized, "the forger did not count"


def test_honest_and_duplicate_signatures_leave_no_evidence() -> None:
    alpha = _alpha()
    apex, payload = _pay(alpha)
    assert alpha.add_signature(apex, 1, NODES[1].sign(payload), CARRIER)
    assert alpha.add_signature(apex, 1, NODES[1].sign(payload), CARRIER) == []
    assert alpha.add_signature(apex, 7, NODES[1].sign(payload), CARRIER) == []
    late = alpha.take_late()
    assert late_signature_failures(late) == []
    assert alpha.take_evidence() == []


def test_a_forged_signature_after_finality_is_caught_off_the_hot_path() -> None:
    alpha = _alpha()
    apex, payload = _pay(alpha)
    assert alpha.add_signature(apex, 1, NODES[1].sign(payload), CARRIER), "final with auditor 1"
    alpha.add_signature(apex, 2, _forged(payload), CARRIER)
    assert alpha.evidence == [], "not checked in the engine's hot path"
    failures = late_signature_failures(alpha.take_late())
    assert [(f.apex, f.signer_index) for f in failures] == [(apex, 2)]
    alpha.late_refused(failures)
    (item,) = alpha.take_evidence()
    assert item.apex == apex and item.first.payload_hash == payload
    assert evidence_holds(item, CID)


def test_late_signatures_are_checked_against_the_newest_final_payloads_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The payload hashes kept for late signatures are bounded: the oldest goes first (an
    OrderedDict popped from the front, not a dict scanned past its deleted slots)."""
    monkeypatch.setattr("quanta.core.alpha.RECENT_QUANTA_MAX", 2)
    alpha = _alpha(deposit=100)
    finals = []
    for nonce in (1, 2, 3):
        request = PaymentRequest(
            next_message_id(), PAYER.public_key, nonce, "USD", UNIT, PAYEE.public_key
        )
        alpha.submit(sign_message(request, PAYER, CID), 2_000 + nonce, REPLY)
        apex = alpha.engine.state.apex
        payload = alpha.unfinalized[apex].executed.payload_hash
        assert alpha.add_signature(apex, 1, NODES[1].sign(payload), CARRIER)
        finals.append((apex, payload))
    assert list(alpha.final_payloads) == [finals[1][0], finals[2][0]]
    for apex, payload in finals:
        alpha.add_signature(apex, 2, NODES[2].sign(payload), CARRIER)
    assert [late.apex for late in alpha.take_late()] == [finals[1][0], finals[2][0]]


def test_late_signatures_are_sampled_one_in_sixteen_by_default() -> None:
    """Of 1 600 late forgeries, about 100 are kept for checking (the draw is the OS's: the
    bounds are over six standard deviations wide), and each one kept is caught."""
    alpha = _alpha(late_check_one_in=LATE_SIGNATURES_CHECKED_ONE_IN)
    assert LATE_SIGNATURES_CHECKED_ONE_IN == 16
    apex, payload = _pay(alpha)
    assert alpha.add_signature(apex, 1, NODES[1].sign(payload), CARRIER)
    forged = _forged(payload)
    for _ in range(1_600):
        alpha.add_signature(apex, 2, forged, CARRIER)
    late = alpha.take_late()
    assert 40 <= len(late) <= 200, len(late)
    assert len(late_signature_failures(late)) == len(late)


def test_altered_evidence_does_not_hold() -> None:
    alpha = _alpha()
    apex, payload = _pay(alpha)
    alpha.add_signature(apex, 2, _forged(payload), CARRIER)
    (item,) = alpha.take_evidence()
    valid = dataclasses.replace(item.first, signature=NODES[2].sign(payload))
    assert not evidence_holds(dataclasses.replace(item, first=valid), CID), "a valid signature"
    other = dataclasses.replace(item.first, payload_hash=sha256(b"other"))
    assert not evidence_holds(dataclasses.replace(item, first=other), CID), "not the quantum's hash"


def _two_quanta_at_one_apex() -> tuple[AlphaNode, SignedQuantum, SignedQuantum]:
    honest, other = _alpha(10), _alpha(20)  # Same key, same apex 2, different deposits.
    first, second = honest.take_outgoing()[-1], other.take_outgoing()[-1]
    assert first.quantum.apex == second.quantum.apex == 2
    assert first.quantum != second.quantum
    return honest, first, second


def test_a_rising_alpha_keeps_both_quanta_alpha_signed_at_one_apex() -> None:
    honest, first, second = _two_quanta_at_one_apex()
    rising = Rising(honest.engine.state.require_config(), 1)
    rising.offer(1, (first,), True)
    with pytest.raises(RisingFailed, match="two different quanta"):
        rising.offer(2, (second,), True)
    (item,) = rising.evidence
    assert item.kind == EvidenceKind.ALPHA_EQUIVOCATION
    assert item.signer == NODES[0].public_key and item.apex == 2
    assert item.second is not None
    assert item.first.payload_hash != item.second.payload_hash
    assert evidence_holds(item, CID)


def test_an_auditor_seeing_alpha_sign_two_quanta_at_one_apex_fails_with_evidence() -> None:
    honest, first, second = _two_quanta_at_one_apex()
    auditor = AuditorNode(NODES[1], Engine(), PendingUpdates())
    frame = encode(QuantaBatch(0, tuple(honest.recent), 2), MESSAGE)
    auditor.handle_frame(envelope_bytes(frame, NODES[0], CID))
    assert auditor.apex == 2 and auditor.status.state == NodeState.READY
    resent = encode(QuantaBatch(0, (first,), 2), MESSAGE)
    auditor.handle_frame(envelope_bytes(resent, NODES[0], CID))
    assert auditor.evidence == [], "the same quantum again is no evidence"
    forked = encode(QuantaBatch(0, (second,), 2), MESSAGE)
    auditor.handle_frame(envelope_bytes(forked, NODES[0], CID))
    assert auditor.status.state == NodeState.FAILED
    assert "two different quanta at apex 2" in auditor.status.reason
    (item,) = auditor.take_evidence()
    assert item.kind == EvidenceKind.ALPHA_EQUIVOCATION
    assert evidence_holds(item, CID)
