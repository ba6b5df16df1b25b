"""Goal: the client's finality check accepts exactly what a majority of auditors signed.

Method: real ed25519 signatures from three deterministic auditor keys (alpha at index 0) over
payload hashes built with `quanta.core` pieces; then tamper with each input in turn.
"""

from __future__ import annotations

import dataclasses

from constellation_client.tests.builders import (
    APEX,
    auditor_keys,
    auditors,
    effects_infos,
    other_group,
    own_group,
    signed_result,
    with_signatures,
)
from constellation_client.verify import (
    Finality,
    check_result,
    effects_proof,
    verify_finality,
    verify_history_item,
)
from quanta.core.hashing import effects_proof_of, sha256
from quanta.core.xdr.schema import (
    BalanceUpdateEffect,
    BalanceUpdateSign,
    EffectsGroup,
    NodeSignature,
    QuantumInfoItem,
)

PAIRS = auditors(3)
KEYS = auditor_keys(PAIRS)
ALPHA = 0


def test_effects_proof_matches_the_node_for_full_groups() -> None:
    groups = [own_group(), other_group()]
    assert effects_proof(groups) == effects_proof_of(groups)[0]


def test_effects_proof_is_the_same_whether_a_group_is_full_or_hashed() -> None:
    assert effects_proof(effects_infos()) == effects_proof([own_group(), other_group()])


def test_two_of_three_including_alpha_is_final() -> None:
    message = signed_result([(0, PAIRS[0]), (2, PAIRS[2])])
    assert verify_finality(message, KEYS, ALPHA) == Finality(True, 2)


def test_alpha_alone_is_acknowledged_but_not_final() -> None:
    check = check_result(signed_result([(0, PAIRS[0])]), KEYS, ALPHA)
    assert check.payload_valid and check.alpha_signed
    assert (check.is_final, check.valid_count) == (False, 1)


def test_majority_without_alpha_is_not_final() -> None:
    message = signed_result([(1, PAIRS[1]), (2, PAIRS[2])])
    assert verify_finality(message, KEYS, ALPHA) == Finality(False, 2)


def test_all_three_signatures_are_counted() -> None:
    message = signed_result(list(enumerate(PAIRS)))
    assert verify_finality(message, KEYS, ALPHA) == Finality(True, 3)


def test_single_node_constellation_is_final_with_alpha_alone() -> None:
    message = signed_result([(0, PAIRS[0])])
    assert verify_finality(message, KEYS[:1], ALPHA) == Finality(True, 1)


def test_duplicate_signer_is_counted_once() -> None:
    message = signed_result([(0, PAIRS[0]), (0, PAIRS[0])])
    assert verify_finality(message, KEYS, ALPHA) == Finality(False, 1)


def test_signature_under_the_wrong_index_is_ignored() -> None:
    message = signed_result([(0, PAIRS[0]), (1, PAIRS[2])])
    assert verify_finality(message, KEYS, ALPHA) == Finality(False, 1)


def test_out_of_range_index_and_garbage_signature_are_ignored() -> None:
    message = signed_result([(0, PAIRS[0]), (2, PAIRS[2])])
    junk = [NodeSignature(7, bytes(64)), NodeSignature(1, bytes(64))]
    tampered = with_signatures(message, (*message.payload_proof.signatures, *junk))
    assert verify_finality(tampered, KEYS, ALPHA) == Finality(True, 2)


def test_tampered_own_effects_are_detected() -> None:
    message = signed_result(list(enumerate(PAIRS)))
    own = own_group()
    stolen = BalanceUpdateEffect("USD", BalanceUpdateSign.MINUS, 1)
    changed = EffectsGroup(own.account, own.account_sequence, (own.effects[0], stolen))
    tampered = dataclasses.replace(message, effects=(changed, *message.effects[1:]))
    assert verify_finality(tampered, KEYS, ALPHA) == Finality(False, 0)


def test_reordered_groups_are_detected() -> None:
    message = signed_result(list(enumerate(PAIRS)))
    tampered = dataclasses.replace(message, effects=tuple(reversed(message.effects)))
    assert verify_finality(tampered, KEYS, ALPHA) == Finality(False, 0)


def test_tampered_quantum_hash_is_detected() -> None:
    message = signed_result(list(enumerate(PAIRS)))
    tampered = dataclasses.replace(message, quantum_hash=sha256(b"another quantum"))
    assert verify_finality(tampered, KEYS, ALPHA) == Finality(False, 0)


def test_tampered_apex_is_detected() -> None:
    message = signed_result(list(enumerate(PAIRS)))
    tampered = dataclasses.replace(message, apex=APEX + 1)
    assert verify_finality(tampered, KEYS, ALPHA) == Finality(False, 0)


def test_tampered_payload_hash_is_detected() -> None:
    message = signed_result(list(enumerate(PAIRS)))
    proof = dataclasses.replace(message.payload_proof, payload_hash=sha256(b"forged"))
    tampered = dataclasses.replace(message, payload_proof=proof)
    assert verify_finality(tampered, KEYS, ALPHA) == Finality(False, 0)


def test_history_item_signatures_are_verified() -> None:
    message = signed_result([(0, PAIRS[0]), (1, PAIRS[1])])
    proof = effects_proof(message.effects)
    item = QuantumInfoItem(
        APEX, message.quantum_hash, proof, 0, own_group(), message.payload_proof.signatures
    )
    assert verify_history_item(item, KEYS, ALPHA) == Finality(True, 2)
    forged = dataclasses.replace(item, effects_hash=sha256(b"other effects"))
    assert verify_history_item(forged, KEYS, ALPHA) == Finality(False, 0)
