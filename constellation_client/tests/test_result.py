"""Goal: a RequestResult follows acknowledgement then finalization of the same quantum, and
`wait_final` returns False when no majority arrives in time (SPEC.md, Security).

Method: feed real signed results (alpha alone, then a majority) into one RequestResult."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from constellation_client.result import RequestResult
from constellation_client.tests.builders import (
    auditors,
    own_group,
    signed_result,
    trusted,
    with_signatures,
)
from quanta.core import signatures
from quanta.core.status import StatusCode
from quanta.core.testing import keypair
from quanta.core.xdr.schema import NodeSignature, ResultMessage

PAIRS = auditors(3)
CONSTELLATION = trusted(PAIRS)


def _acknowledged() -> RequestResult:
    return RequestResult.executed(signed_result([(0, PAIRS[0])]), CONSTELLATION)


def test_first_answer_is_acknowledged_not_final() -> None:
    result = _acknowledged()
    assert result.ok and result.acknowledged and not result.finalized
    assert (result.signatures_verified, result.auditor_count) == (1, 3)
    assert result.effects == own_group()


async def test_wait_final_wakes_on_finalization() -> None:
    result = _acknowledged()
    final = signed_result([(0, PAIRS[0]), (1, PAIRS[1])])
    asyncio.get_running_loop().call_later(0.01, result.update, final, CONSTELLATION)
    assert await result.wait_final(timeout_s=2.0)
    assert result.finalized and result.signatures_verified == 2


async def test_wait_final_times_out_without_majority() -> None:
    assert not await _acknowledged().wait_final(timeout_s=0.05)


async def test_wait_final_returns_false_once_closed() -> None:
    result = _acknowledged()
    asyncio.get_running_loop().call_later(0.01, result.close)
    assert not await result.wait_final(timeout_s=5.0)


def test_late_acknowledgement_does_not_downgrade_a_final_result() -> None:
    result = RequestResult.executed(signed_result(list(enumerate(PAIRS))), CONSTELLATION)
    result.update(signed_result([(0, PAIRS[0])]), CONSTELLATION)
    assert result.finalized and result.signatures_verified == 3


def test_update_for_another_apex_is_ignored() -> None:
    result = _acknowledged()
    result.update(signed_result(list(enumerate(PAIRS)), apex=99), CONSTELLATION)
    assert not result.finalized


def test_forged_payload_is_not_acknowledged() -> None:
    message = dataclasses.replace(signed_result([(0, PAIRS[0])]), quantum_hash=b"\x01" * 32)
    result = RequestResult.executed(message, CONSTELLATION)
    assert result.ok and not result.acknowledged and result.signatures_verified == 0


async def test_rejection_carries_status_and_is_never_final() -> None:
    result = RequestResult.rejected(ResultMessage(3, StatusCode.FORBIDDEN, "insufficient funds"))
    assert not result.ok and result.status == StatusCode.FORBIDDEN
    assert result.description == "insufficient funds"
    assert not await result.wait_final(timeout_s=5.0)


def test_acknowledgement_needs_a_valid_alpha_signature() -> None:
    """Quantum results come in unsigned frames: only the proof's alpha signature acknowledges."""
    message = signed_result([(0, PAIRS[0])])
    forged = with_signatures(message, (NodeSignature(0, bytes(64)),))
    result = RequestResult.executed(forged, CONSTELLATION)
    assert result.ok and not result.acknowledged and result.signatures_verified == 0


def test_unverified_update_counts_signatures_but_still_checks_the_payload() -> None:
    message = signed_result([(0, PAIRS[0])])
    forged = with_signatures(
        message, (*message.payload_proof.signatures, NodeSignature(1, bytes(64)))
    )
    assert not RequestResult.executed(forged, CONSTELLATION).finalized
    unverified = RequestResult.executed(forged, CONSTELLATION, verify_signatures=False)
    assert unverified.finalized and unverified.signatures_verified == 2
    result = _acknowledged()
    tampered = dataclasses.replace(forged, quantum_hash=b"\x01" * 32)
    result.update(tampered, CONSTELLATION, verify_signatures=False)
    assert not result.finalized and result.signatures_verified == 1


def test_a_later_copy_s_effects_are_not_taken_unchecked() -> None:
    """A finalization for the payload hash already matched keeps the checked effects: only
    its signatures are new. A copy whose effects differ from that hash changes nothing else."""
    result = _acknowledged()
    final = signed_result([(0, PAIRS[0]), (1, PAIRS[1])])
    tampered_group = own_group(amount=999)
    tampered = dataclasses.replace(final, effects=(tampered_group, *final.effects[1:]))
    result.update(tampered, CONSTELLATION)
    assert result.finalized and result.signatures_verified == 2
    assert result.effects == own_group() != tampered_group
    assert result.message is not None and result.message.effects == final.effects
    assert result.message.payload_proof == final.payload_proof


class _CountedVerifications:
    """Counts the ed25519 verifications the client's signature checks make."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        real = signatures.verify_digest

        def counted(public_key: bytes, digest: bytes, signature: bytes) -> bool:
            self.count += 1
            return real(public_key, digest, signature)

        monkeypatch.setattr(signatures, "verify_digest", counted)


def test_a_finalization_verifies_only_the_signatures_the_acknowledgement_did_not_carry(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A real client (every result verified) checked alpha's signature at the
    acknowledgement and again in the finalization that repeats it: three verifications per
    request where two prove as much. It failed before (3)."""
    verifications = _CountedVerifications(monkeypatch)
    result = _acknowledged()
    assert verifications.count == 1
    result.update(signed_result([(0, PAIRS[0]), (1, PAIRS[1])]), CONSTELLATION)
    assert result.finalized and result.signatures_verified == 2
    assert verifications.count == 2


def test_a_repeated_index_with_other_bytes_or_other_keys_is_verified_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Only a byte-identical signature, for the payload hash and the keys it was verified
    under, skips the check: a forged alpha signature in the finalization is not taken on the
    acknowledgement's word, and after a rotation every signature is checked again."""
    final = signed_result([(0, PAIRS[0]), (1, PAIRS[1])])
    auditor_signature = final.payload_proof.signatures[1]
    forged = with_signatures(final, (NodeSignature(0, bytes(64)), auditor_signature))
    result = _acknowledged()
    result.update(forged, CONSTELLATION)
    # The forged alpha signature is refused: the copy proves one signature, not the two of a
    # finalization, so the acknowledgement's is what the result still holds.
    assert not result.finalized and result.signatures_verified == 1
    rotated = trusted([PAIRS[0], PAIRS[1], keypair(99)])
    verifications = _CountedVerifications(monkeypatch)
    result.update(final, rotated)
    assert result.finalized and verifications.count == 2
