"""Goal: the client's finality check accepts exactly what a majority of auditors signed.

Method: real ed25519 signatures from three deterministic auditor keys (alpha at index 0) over
payload hashes built with `quanta.core` pieces; then tamper with each input in turn. The
sampled check of load generators (`SignatureSampler`, `verify_signatures=False`) is driven
with a scripted random draw.
"""

from __future__ import annotations

import collections
import dataclasses
import itertools

import pytest

from constellation_client.client import ConstellationClient
from constellation_client.tests.builders import (
    APEX,
    CONSTELLATION_ID,
    auditors,
    effects_infos,
    group_hashes_of,
    other_group,
    own_group,
    signed_result,
    trusted,
    with_signatures,
)
from constellation_client.verify import (
    Finality,
    ResultCheck,
    SecureDraws,
    SignatureSampler,
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
    QuantumResultMessage,
)

PAIRS = auditors(3)
TRUSTED = trusted(PAIRS)
ONE_NODE = trusted(PAIRS[:1])


def test_effects_proof_matches_the_node_for_full_groups() -> None:
    groups = [own_group(), other_group()]
    assert effects_proof(groups) == effects_proof_of(groups)[0]


def test_effects_proof_is_the_same_whether_a_group_is_full_or_hashed() -> None:
    assert effects_proof(effects_infos()) == effects_proof([own_group(), other_group()])


def test_two_of_three_including_alpha_is_final() -> None:
    message = signed_result([(0, PAIRS[0]), (2, PAIRS[2])])
    assert verify_finality(message, TRUSTED) == Finality(True, 2)


def test_alpha_alone_is_acknowledged_but_not_final() -> None:
    check = check_result(signed_result([(0, PAIRS[0])]), TRUSTED)
    assert check.payload_valid and check.alpha_signed
    assert (check.is_final, check.valid_count) == (False, 1)


def test_majority_without_alpha_is_not_final() -> None:
    message = signed_result([(1, PAIRS[1]), (2, PAIRS[2])])
    assert verify_finality(message, TRUSTED) == Finality(False, 2)


def test_all_three_signatures_are_counted() -> None:
    message = signed_result(list(enumerate(PAIRS)))
    assert verify_finality(message, TRUSTED) == Finality(True, 3)


def test_a_proof_made_for_another_constellation_does_not_verify() -> None:
    """The payload hash is bound to the constellation id: the same keys signing the same
    quantum for another constellation prove nothing here."""
    elsewhere = signed_result(list(enumerate(PAIRS)), constellation_id=sha256(b"another one"))
    assert verify_finality(elsewhere, TRUSTED) == Finality(False, 0)
    assert trusted(PAIRS).constellation_id == CONSTELLATION_ID


def test_single_node_constellation_is_final_with_alpha_alone() -> None:
    message = signed_result([(0, PAIRS[0])])
    assert verify_finality(message, ONE_NODE) == Finality(True, 1)


def test_duplicate_signer_is_counted_once() -> None:
    message = signed_result([(0, PAIRS[0]), (0, PAIRS[0])])
    assert verify_finality(message, TRUSTED) == Finality(False, 1)


def test_signature_under_the_wrong_index_is_ignored() -> None:
    message = signed_result([(0, PAIRS[0]), (1, PAIRS[2])])
    assert verify_finality(message, TRUSTED) == Finality(False, 1)


def test_out_of_range_index_and_garbage_signature_are_ignored() -> None:
    message = signed_result([(0, PAIRS[0]), (2, PAIRS[2])])
    junk = [NodeSignature(7, bytes(64)), NodeSignature(1, bytes(64))]
    tampered = with_signatures(message, (*message.payload_proof.signatures, *junk))
    assert verify_finality(tampered, TRUSTED) == Finality(True, 2)


def test_tampered_own_effects_are_detected() -> None:
    message = signed_result(list(enumerate(PAIRS)))
    own = own_group()
    stolen = BalanceUpdateEffect("USD", BalanceUpdateSign.MINUS, 1)
    changed = EffectsGroup(own.account, own.account_sequence, (own.effects[0], stolen))
    tampered = dataclasses.replace(message, effects=(changed, *message.effects[1:]))
    assert verify_finality(tampered, TRUSTED) == Finality(False, 0)


def test_reordered_groups_are_detected() -> None:
    message = signed_result(list(enumerate(PAIRS)))
    tampered = dataclasses.replace(message, effects=tuple(reversed(message.effects)))
    assert verify_finality(tampered, TRUSTED) == Finality(False, 0)


def test_tampered_quantum_hash_is_detected() -> None:
    message = signed_result(list(enumerate(PAIRS)))
    tampered = dataclasses.replace(message, quantum_hash=sha256(b"another quantum"))
    assert verify_finality(tampered, TRUSTED) == Finality(False, 0)


def test_tampered_apex_is_detected() -> None:
    message = signed_result(list(enumerate(PAIRS)))
    tampered = dataclasses.replace(message, apex=APEX + 1)
    assert verify_finality(tampered, TRUSTED) == Finality(False, 0)


def test_tampered_payload_hash_is_detected() -> None:
    message = signed_result(list(enumerate(PAIRS)))
    proof = dataclasses.replace(message.payload_proof, payload_hash=sha256(b"forged"))
    tampered = dataclasses.replace(message, payload_proof=proof)
    assert verify_finality(tampered, TRUSTED) == Finality(False, 0)


def test_history_item_signatures_are_verified() -> None:
    message = signed_result([(0, PAIRS[0]), (1, PAIRS[1])])
    proof = effects_proof(message.effects)
    item = QuantumInfoItem(
        APEX,
        message.quantum_hash,
        proof,
        0,
        own_group(),
        message.payload_proof.signatures,
        group_hashes=group_hashes_of(own_group(), other_group()),
    )
    assert verify_history_item(item, TRUSTED) == Finality(True, 2)
    forged = dataclasses.replace(item, effects_hash=sha256(b"other effects"))
    assert verify_history_item(forged, TRUSTED) == Finality(False, 0)


def test_a_history_item_s_own_group_must_be_the_signed_one() -> None:
    """A node cannot make up an account's effects under a real signed quantum: the group
    must be among the quantum's group hashes, and those must make the signed effects hash."""
    message = signed_result([(0, PAIRS[0]), (1, PAIRS[1])])
    hashes = group_hashes_of(own_group(), other_group())
    item = QuantumInfoItem(
        APEX,
        message.quantum_hash,
        effects_proof(message.effects),
        0,
        own_group(),
        message.payload_proof.signatures,
        group_hashes=hashes,
    )
    assert verify_history_item(item, TRUSTED) == Finality(True, 2)
    richer = dataclasses.replace(item, effects=own_group(amount=1))  # a smaller debit
    without = dataclasses.replace(item, group_hashes=())
    swapped = dataclasses.replace(item, group_hashes=(hashes[0], hashes[0]))
    for forged in (richer, without, swapped):
        assert verify_history_item(forged, TRUSTED) == Finality(False, 0)


# --- sampled verification (load generators) -------------------------------------------------


def _forged_final() -> QuantumResultMessage:
    """Alpha's valid signature plus a forged one from auditor 1: a majority only if unverified."""
    message = signed_result([(0, PAIRS[0])])
    return with_signatures(
        message, (*message.payload_proof.signatures, NodeSignature(1, bytes(64)))
    )


def test_unverified_check_counts_distinct_in_range_64_byte_signatures() -> None:
    message = signed_result([(0, PAIRS[0])])
    junk = [
        NodeSignature(0, bytes(64)),  # alpha again: counted once
        NodeSignature(7, bytes(64)),  # out of range
        NodeSignature(2, bytes(10)),  # not a 64-byte signature
        NodeSignature(1, bytes(64)),  # forged, counted because nothing is verified
    ]
    tampered = with_signatures(message, (*message.payload_proof.signatures, *junk))
    check = check_result(tampered, TRUSTED, verify_signatures=False)
    assert check == ResultCheck(True, True, 2, True, signatures_checked=False)
    alpha_only = ((0, message.payload_proof.signatures[0].signature),)
    assert check_result(tampered, TRUSTED) == ResultCheck(True, True, 1, False, accepted=alpha_only)


def test_unverified_check_still_requires_alpha_and_a_majority() -> None:
    without_alpha = signed_result([(1, PAIRS[1]), (2, PAIRS[2])])
    check = check_result(without_alpha, TRUSTED, verify_signatures=False)
    assert (check.alpha_signed, check.valid_count, check.is_final) == (False, 2, False)
    alone = check_result(signed_result([(0, PAIRS[0])]), TRUSTED, verify_signatures=False)
    assert (alone.alpha_signed, alone.valid_count, alone.is_final) == (True, 1, False)


def test_unverified_check_still_recomputes_the_payload_hash() -> None:
    message = signed_result(list(enumerate(PAIRS)))
    tampered = dataclasses.replace(message, quantum_hash=sha256(b"another quantum"))
    check = check_result(tampered, TRUSTED, verify_signatures=False)
    assert (check.payload_valid, check.valid_count, check.is_final) == (False, 0, False)


def test_every_result_is_verified_by_default() -> None:
    """With N = 1 a forged signature is never counted, and no random draw is made."""
    sampler = SignatureSampler(1, draw=lambda n: pytest.fail("no draw with one_in = 1"))
    checks = [
        check_result(_forged_final(), TRUSTED, verify_signatures=sampler.take()) for _ in range(20)
    ]
    assert all(c.signatures_checked and c.valid_count == 1 and not c.is_final for c in checks)


def test_sampled_results_still_catch_a_forged_signature() -> None:
    """With N > 1 the results drawn for verification refuse the forged signature; the others
    count it (the price of sampling, for load generators only)."""
    draws = itertools.cycle([2, 0, 1])  # the second result in every three is verified
    sampler = SignatureSampler(3, draw=lambda n: next(draws) % n)
    checks = [
        check_result(_forged_final(), TRUSTED, verify_signatures=sampler.take()) for _ in range(9)
    ]
    verified = [c for c in checks if c.signatures_checked]
    assert len(verified) == 3
    assert all(c.valid_count == 1 and not c.is_final for c in verified)
    assert all(c.is_final for c in checks if not c.signatures_checked)


def test_sampler_draws_one_in_n() -> None:
    asked: list[int] = []

    def draw(n: int) -> int:
        asked.append(n)
        return len(asked) % n

    sampler = SignatureSampler(4, draw=draw)
    taken = [sampler.take() for _ in range(8)]
    assert asked == [4] * 8 and sampler.one_in == 4
    assert taken == [False, False, False, True] * 2


def test_sampler_default_draw_is_random() -> None:
    sampler = SignatureSampler(2)
    assert {sampler.take() for _ in range(200)} == {True, False}


def test_secure_draws_stay_below_n_and_cover_it_across_refills() -> None:
    draws = SecureDraws()
    # 3 000 draws read about 12 KB: the 4 KiB buffer is refilled on the way.
    values = [draws.below(3) for _ in range(3_000)]
    counts = collections.Counter(values)
    assert set(counts) == {0, 1, 2}
    assert all(800 < c < 1_200 for c in counts.values())  # ~1 000 each; 6 sigma is ~155
    assert {draws.below(1) for _ in range(10)} == {0}
    assert all(0 <= draws.below(2**32) < 2**32 for _ in range(10))


@pytest.mark.parametrize("one_in", [0, -1, True, 1.5])
def test_sampler_refuses_a_non_positive_or_non_integer_rate(one_in: object) -> None:
    with pytest.raises(ValueError, match="verify_one_in"):
        SignatureSampler(one_in)  # type: ignore[arg-type]


async def test_connect_refuses_a_bad_rate_before_connecting() -> None:
    with pytest.raises(ValueError, match="verify_one_in"):
        await ConstellationClient.connect(
            "http://127.0.0.1:1",
            PAIRS[0],
            constellation_id=CONSTELLATION_ID,
            constellation=TRUSTED,
            verify_one_in=0,
        )
