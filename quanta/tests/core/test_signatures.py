"""Proves what is signed (digests, payload hash) and how a majority of signatures is counted."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from quanta.core.keys import KeyPair
from quanta.core.signatures import (
    NO_CONSTELLATION,
    Domain,
    SignatureSet,
    bound_digest,
    constellation_id_of,
    majority,
    message_digest,
    payload_hash,
    sign_digest,
    verify_digest,
    verify_majority,
)

AUDITORS = [KeyPair.from_seed(hashlib.sha256(b"auditor %d" % i).digest()) for i in range(5)]
AUDITOR_KEYS = [auditor.public_key for auditor in AUDITORS]
OUTSIDER = KeyPair.from_seed(hashlib.sha256(b"outsider").digest())
ALPHA = 0

CID = hashlib.sha256(b"constellation").digest()
GOLDEN_PAYLOAD_HASH = "d372f22648fd714dce85ae440f2623effbd18532af9303bea8ed1f24c5e39cf6"
"""Payload hash of apex 1, a zero quantum hash and effects hash 00..1f under the all-zero id:
pins the byte layout (static/js/verify.js is checked against the same rule)."""
OTHER_CID = hashlib.sha256(b"another constellation").digest()
QUANTUM_HASH = hashlib.sha256(b"quantum").digest()
EFFECTS_HASH = hashlib.sha256(b"effects").digest()
PAYLOAD = payload_hash(CID, 7, QUANTUM_HASH, EFFECTS_HASH)
OTHER_PAYLOAD = payload_hash(CID, 8, QUANTUM_HASH, EFFECTS_HASH)
SIGNATURES = [sign_digest(auditor, PAYLOAD) for auditor in AUDITORS]


# --- digests ------------------------------------------------------------------------------


def test_message_digest_is_sha256_of_id_domain_and_xdr_bytes() -> None:
    xdr = b"\x00\x00\x00\x01" + bytes(range(28))
    assert message_digest(CID, xdr) == hashlib.sha256(CID + b"\x01" + xdr).digest()
    assert message_digest(NO_CONSTELLATION, b"") == bytes.fromhex(
        hashlib.sha256(bytes(32) + b"\x01").hexdigest()
    )


def test_every_digest_is_bound_to_its_constellation_and_domain() -> None:
    body = bytes(range(48))
    digests = {bound_digest(cid, domain, body) for cid in (CID, OTHER_CID) for domain in Domain}
    assert len(digests) == 2 * len(Domain), "no two constellations or domains share a digest"
    assert [int(d) for d in Domain] == [1, 2, 3]


def test_the_constellation_id_is_sha256_of_the_genesis_settings_xdr() -> None:
    from quanta.core.testing import default_settings
    from quanta.core.xdr.codec import encode

    settings = default_settings(AUDITORS[:3])
    assert constellation_id_of(settings) == hashlib.sha256(encode(settings)).digest()
    assert constellation_id_of(default_settings(AUDITORS[1:4])) != constellation_id_of(settings)


def test_digest_signature_round_trip_and_tampering() -> None:
    digest = message_digest(CID, b"envelope body")
    signature = sign_digest(AUDITORS[1], digest)
    assert verify_digest(AUDITORS[1].public_key, digest, signature)
    assert not verify_digest(AUDITORS[2].public_key, digest, signature)
    assert not verify_digest(
        AUDITORS[1].public_key, message_digest(CID, b"envelope bodY"), signature
    )
    assert not verify_digest(AUDITORS[1].public_key, digest, signature[:-1] + b"\x00")


def test_digest_signature_covers_the_digest_not_the_raw_message() -> None:
    body = b"envelope body"
    signature = sign_digest(AUDITORS[1], message_digest(CID, body))
    assert AUDITORS[1].verify(hashlib.sha256(CID + b"\x01" + body).digest(), signature)
    assert not AUDITORS[1].verify(body, signature)


@pytest.mark.parametrize("length", [0, 31, 33, 64])
def test_verify_digest_refuses_wrong_digest_length(length: int) -> None:
    digest = bytes(length)
    signature = AUDITORS[1].sign(digest)
    # The signature itself is valid for these bytes; only the length rule rejects it.
    assert AUDITORS[1].verify(digest, signature)
    assert not verify_digest(AUDITORS[1].public_key, digest, signature)


def test_sign_digest_refuses_wrong_digest_length() -> None:
    with pytest.raises(AssertionError):
        sign_digest(AUDITORS[1], bytes(31))


# --- payload hash -------------------------------------------------------------------------


def test_payload_hash_golden_value() -> None:
    quantum_hash = bytes(32)
    effects_hash = bytes(range(32))
    by_hand = hashlib.sha256(
        bytes(32) + b"\x02" + b"\x00\x00\x00\x00\x00\x00\x00\x01" + quantum_hash + effects_hash
    ).digest()
    assert payload_hash(NO_CONSTELLATION, 1, quantum_hash, effects_hash) == by_hand
    assert by_hand.hex() == GOLDEN_PAYLOAD_HASH
    assert payload_hash(CID, 1, quantum_hash, effects_hash) != by_hand


def test_payload_hash_uses_big_endian_apex() -> None:
    apex = 0x0102030405060708
    expected = hashlib.sha256(
        CID + b"\x02" + bytes(range(1, 9)) + QUANTUM_HASH + EFFECTS_HASH
    ).digest()
    assert payload_hash(CID, apex, QUANTUM_HASH, EFFECTS_HASH) == expected


def test_payload_hash_depends_on_every_part_and_their_order() -> None:
    base = payload_hash(CID, 5, QUANTUM_HASH, EFFECTS_HASH)
    assert payload_hash(CID, 6, QUANTUM_HASH, EFFECTS_HASH) != base
    assert payload_hash(CID, 5, EFFECTS_HASH, QUANTUM_HASH) != base
    assert payload_hash(CID, 5, QUANTUM_HASH, QUANTUM_HASH) != base
    assert payload_hash(OTHER_CID, 5, QUANTUM_HASH, EFFECTS_HASH) != base


@pytest.mark.parametrize("apex", [0, 2**64 - 1])
def test_payload_hash_accepts_uint64_bounds(apex: int) -> None:
    expected = hashlib.sha256(
        CID + b"\x02" + apex.to_bytes(8, "big") + QUANTUM_HASH + EFFECTS_HASH
    ).digest()
    assert payload_hash(CID, apex, QUANTUM_HASH, EFFECTS_HASH) == expected


@pytest.mark.parametrize(
    ("apex", "quantum_hash", "effects_hash"),
    [
        (-1, QUANTUM_HASH, EFFECTS_HASH),
        (2**64, QUANTUM_HASH, EFFECTS_HASH),
        (1, QUANTUM_HASH[:31], EFFECTS_HASH),
        (1, QUANTUM_HASH, EFFECTS_HASH + b"\x00"),
        (1, b"", EFFECTS_HASH),
    ],
    ids=["negative apex", "apex overflow", "short quantum hash", "long effects hash", "empty"],
)
def test_payload_hash_refuses_out_of_range_inputs(
    apex: int, quantum_hash: bytes, effects_hash: bytes
) -> None:
    with pytest.raises(AssertionError):
        payload_hash(CID, apex, quantum_hash, effects_hash)


# --- majority -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("auditors", "needed"), [(1, 1), (2, 2), (3, 2), (4, 3), (5, 3), (6, 4), (7, 4)]
)
def test_majority_table(auditors: int, needed: int) -> None:
    assert majority(auditors) == needed


def test_majority_needs_at_least_one_auditor() -> None:
    with pytest.raises(AssertionError):
        majority(0)


# --- SignatureSet -------------------------------------------------------------------------


def _new_set(alpha_index: int = ALPHA) -> SignatureSet:
    return SignatureSet(AUDITOR_KEYS, alpha_index, PAYLOAD)


def test_valid_signatures_are_accepted_once() -> None:
    signature_set = _new_set()
    assert signature_set.add(2, SIGNATURES[2])
    assert not signature_set.add(2, SIGNATURES[2])
    assert len(signature_set) == 1
    assert signature_set.signatures() == ((2, SIGNATURES[2]),)


@pytest.mark.parametrize("index", [-1, 5, 100])
def test_out_of_range_signer_is_rejected(index: int) -> None:
    signature_set = _new_set()
    assert not signature_set.add(index, SIGNATURES[0])
    assert len(signature_set) == 0


def test_forged_signatures_are_rejected() -> None:
    signature_set = _new_set()
    forgeries = [
        (1, SIGNATURES[2]),  # auditor 2's valid signature claimed as auditor 1's
        (1, sign_digest(OUTSIDER, PAYLOAD)),  # signed by a key outside the constellation
        (1, sign_digest(AUDITORS[1], OTHER_PAYLOAD)),  # right signer, another payload
        (1, bytes(64)),
        (1, SIGNATURES[1][:-1]),
        (1, SIGNATURES[1][:10] + bytes([SIGNATURES[1][10] ^ 1]) + SIGNATURES[1][11:]),
    ]
    for index, signature in forgeries:
        assert not signature_set.add(index, signature)
    assert len(signature_set) == 0
    assert signature_set.add(1, SIGNATURES[1])


def test_a_rejected_forgery_does_not_block_the_real_signer() -> None:
    signature_set = _new_set()
    assert not signature_set.add(3, bytes(64))
    assert signature_set.add(3, SIGNATURES[3])


def test_final_only_with_alpha_and_majority() -> None:
    signature_set = _new_set()
    assert signature_set.majority == 3
    for index in (1, 2, 3, 4):
        assert signature_set.add(index, SIGNATURES[index])
        assert not signature_set.is_final  # everyone but alpha is not enough
    assert signature_set.add(ALPHA, SIGNATURES[ALPHA])
    assert signature_set.has_alpha
    assert signature_set.is_final


def test_alpha_alone_is_not_final_until_majority() -> None:
    signature_set = _new_set(alpha_index=2)
    assert signature_set.add(2, SIGNATURES[2])
    assert not signature_set.is_final
    assert signature_set.add(4, SIGNATURES[4])
    assert not signature_set.is_final
    assert signature_set.add(0, SIGNATURES[0])
    assert signature_set.is_final


def test_signatures_are_sorted_by_index() -> None:
    signature_set = _new_set()
    for index in (4, 0, 3):
        signature_set.add(index, SIGNATURES[index])
    assert signature_set.signatures() == tuple((i, SIGNATURES[i]) for i in (0, 3, 4))


def test_single_auditor_constellation_is_final_with_alpha() -> None:
    signature_set = SignatureSet(AUDITOR_KEYS[:1], 0, PAYLOAD)
    assert not signature_set.is_final
    assert signature_set.add(0, SIGNATURES[0])
    assert signature_set.is_final


@pytest.mark.parametrize(
    ("keys", "alpha_index", "payload"),
    [
        ([], 0, PAYLOAD),
        (AUDITOR_KEYS, 5, PAYLOAD),
        (AUDITOR_KEYS, -1, PAYLOAD),
        (AUDITOR_KEYS, 0, PAYLOAD[:31]),
        ([AUDITOR_KEYS[0], AUDITOR_KEYS[0]], 0, PAYLOAD),
        ([AUDITOR_KEYS[0][:31]], 0, PAYLOAD),
    ],
    ids=["no auditors", "alpha too high", "alpha negative", "short payload", "dup key", "bad key"],
)
def test_signature_set_refuses_bad_configuration(
    keys: list[bytes], alpha_index: int, payload: bytes
) -> None:
    with pytest.raises(AssertionError):
        SignatureSet(keys, alpha_index, payload)


# --- verify_majority ----------------------------------------------------------------------


def _pairs(indexes: tuple[int, ...]) -> list[tuple[int, bytes]]:
    return [(index, SIGNATURES[index]) for index in indexes]


def test_verify_majority_accepts_alpha_plus_majority() -> None:
    assert verify_majority(AUDITOR_KEYS, ALPHA, PAYLOAD, _pairs((0, 1, 2)))


def test_verify_majority_refuses_without_alpha() -> None:
    assert not verify_majority(AUDITOR_KEYS, ALPHA, PAYLOAD, _pairs((1, 2, 3, 4)))


def test_verify_majority_does_not_count_a_signer_twice() -> None:
    assert not verify_majority(AUDITOR_KEYS, ALPHA, PAYLOAD, _pairs((0, 1, 1, 1)))


def test_verify_majority_ignores_junk_beside_enough_valid_signatures() -> None:
    junk = [(9, SIGNATURES[0]), (3, bytes(64)), (4, SIGNATURES[2])]
    assert verify_majority(AUDITOR_KEYS, ALPHA, PAYLOAD, junk + _pairs((0, 1, 2)))
    assert not verify_majority(AUDITOR_KEYS, ALPHA, PAYLOAD, junk + _pairs((0, 1)))


def test_verify_majority_refuses_signatures_of_another_payload() -> None:
    assert not verify_majority(AUDITOR_KEYS, ALPHA, OTHER_PAYLOAD, _pairs((0, 1, 2, 3, 4)))


@pytest.mark.parametrize("payload", [b"", PAYLOAD[:31], PAYLOAD + b"\x00"])
def test_verify_majority_is_false_for_a_malformed_payload_hash(payload: bytes) -> None:
    assert not verify_majority(AUDITOR_KEYS, ALPHA, payload, _pairs((0, 1, 2)))


@given(
    signers=st.sets(st.integers(min_value=0, max_value=4)),
    alpha_index=st.integers(min_value=0, max_value=4),
)
def test_verify_majority_property(signers: set[int], alpha_index: int) -> None:
    expected = alpha_index in signers and len(signers) >= majority(len(AUDITOR_KEYS))
    pairs = _pairs(tuple(sorted(signers)))
    assert verify_majority(AUDITOR_KEYS, alpha_index, PAYLOAD, pairs) is expected


@given(st.binary(min_size=32, max_size=32))
def test_own_signature_recorded_unverified_is_one_that_verifies(seed: bytes) -> None:
    # add_own skips the check because a seed-derived key always signs validly: prove it.
    node = KeyPair.from_seed(seed)
    digest = payload_hash(CID, 7, QUANTUM_HASH, EFFECTS_HASH)
    signature_set = SignatureSet([node.public_key, *AUDITOR_KEYS[1:3]], 0, digest)
    signature_set.add_own(0, node.sign(digest))
    ((index, signature),) = signature_set.signatures()
    assert index == 0 and verify_digest(node.public_key, digest, signature)
    assert signature_set.has_alpha and not signature_set.is_final
