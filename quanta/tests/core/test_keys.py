"""Proves strkeys match Stellar's encoding, malformed ones are refused, and signing is sound.

stellar-sdk is used here only, as an independent reference implementation of strkeys and
ed25519 keys; the production code never imports it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib

import pytest
import stellar_sdk
from hypothesis import given
from hypothesis import strategies as st

from quanta.core import keys
from quanta.core.keys import (
    InvalidKey,
    KeyPair,
    decode_public_key,
    decode_secret_seed,
    encode_public_key,
    encode_secret_seed,
    verify_signature,
)

# Literal (secret, public) pairs. The first is the pair from the stellar-sdk documentation;
# the second is the all-zero seed, whose secret strkey is easy to recognise.
LITERAL_PAIRS = [
    (
        "SDJHRQF4GCMIIKAAAQ6IHY42X73FQFLHUULAPSKKD4DFDM7UXWWCRHBE",
        "GCZHXL5HXQX5ABDM26LHYRCQZ5OJFHLOPLZX47WEBP3V2PF5AVFK2A5D",
    ),
    (
        "SAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAABSU2",
        "GA5WUJ54Z23KILLCUOUNAKTPBVZWKMQVO4O6EQ5GHLAERIMLLHNCSKYH",
    ),
    (
        "SAAACAQDAQCQMBYIBEFAWDANBYHRAEISCMKBKFQXDAMRUGY4DUPB6NKI",
        "GAB2CB576PHBBPQ5ODORRZ2LYCMWPZGWGCN2KDK7DXOIMZASKUY3QZ6Q",
    ),
]
ZERO_SEED_SECRET = LITERAL_PAIRS[1][0]
COUNTING_SEED_SECRET = LITERAL_PAIRS[2][0]

# SEP-23's valid account vector: the raw key and its G... strkey.
SEP23_PUBLIC_RAW = bytes.fromhex("3f0c34bf93ad0d9971d04ccc90f705511c838aad9734a4a2fb0d7a03fc7fe89a")
SEP23_PUBLIC_STRKEY = "GA7QYNF7SOWQ3GLR2BGMZEHXAVIRZA4KVWLTJJFC7MGXUA74P7UJVSGZ"

# Deterministic seeds for cross-checking against the reference implementation.
REFERENCE_SEEDS = [hashlib.sha256(b"constellation seed %d" % i).digest() for i in range(8)]

VALID_PUBLIC = LITERAL_PAIRS[0][1]
VALID_SECRET = LITERAL_PAIRS[0][0]

payloads = st.binary(min_size=32, max_size=32)


def _strkey(version: int, payload: bytes, *, little_endian_crc: bool = True) -> str:
    """Builds a strkey by hand, so tests can forge version bytes and checksum orders."""
    body = bytes([version]) + payload
    crc = binascii.crc_hqx(body, 0).to_bytes(2, "little" if little_endian_crc else "big")
    return base64.b32encode(body + crc).decode("ascii")


# --- known vectors ------------------------------------------------------------------------


@pytest.mark.parametrize(("secret", "public"), LITERAL_PAIRS)
def test_literal_pairs_decode_and_derive_each_other(secret: str, public: str) -> None:
    keypair = KeyPair.from_secret(secret)
    assert keypair.public_key_strkey == public
    assert keypair.secret == secret
    assert encode_secret_seed(decode_secret_seed(secret)) == secret
    assert encode_public_key(decode_public_key(public)) == public


def test_literal_seeds_are_the_expected_raw_bytes() -> None:
    assert decode_secret_seed(ZERO_SEED_SECRET) == bytes(32)
    assert decode_secret_seed(COUNTING_SEED_SECRET) == bytes(range(32))


def test_sep23_public_key_vector() -> None:
    assert encode_public_key(SEP23_PUBLIC_RAW) == SEP23_PUBLIC_STRKEY
    assert decode_public_key(SEP23_PUBLIC_STRKEY) == SEP23_PUBLIC_RAW


@pytest.mark.parametrize("seed", REFERENCE_SEEDS, ids=lambda seed: seed.hex()[:8])
def test_matches_stellar_sdk_for_reference_seeds(seed: bytes) -> None:
    reference = stellar_sdk.Keypair.from_raw_ed25519_seed(seed)
    keypair = KeyPair.from_seed(seed)
    assert encode_secret_seed(seed) == reference.secret
    assert keypair.secret == reference.secret
    assert keypair.public_key_strkey == reference.public_key
    assert keypair.public_key == reference.raw_public_key()
    assert decode_public_key(reference.public_key) == reference.raw_public_key()


@given(seed=payloads)
def test_matches_stellar_sdk_for_random_seeds(seed: bytes) -> None:
    reference = stellar_sdk.Keypair.from_raw_ed25519_seed(seed)
    assert encode_secret_seed(seed) == reference.secret
    assert encode_public_key(reference.raw_public_key()) == reference.public_key


def test_signature_matches_stellar_sdk() -> None:
    # Ed25519 signatures are deterministic, so an independent signer must agree byte for byte.
    seed = REFERENCE_SEEDS[0]
    data = b"withdrawal 42"
    reference = stellar_sdk.Keypair.from_raw_ed25519_seed(seed)
    assert KeyPair.from_seed(seed).sign(data) == reference.sign(data)


# --- round trips --------------------------------------------------------------------------


@given(raw=payloads)
def test_public_key_round_trip(raw: bytes) -> None:
    strkey = encode_public_key(raw)
    assert strkey.startswith("G")
    assert len(strkey) == 56
    assert decode_public_key(strkey) == raw


@given(raw=payloads)
def test_secret_seed_round_trip(raw: bytes) -> None:
    strkey = encode_secret_seed(raw)
    assert strkey.startswith("S")
    assert len(strkey) == 56
    assert decode_secret_seed(strkey) == raw


@given(raw=payloads)
def test_public_and_secret_kinds_are_not_interchangeable(raw: bytes) -> None:
    with pytest.raises(InvalidKey):
        decode_secret_seed(encode_public_key(raw))
    with pytest.raises(InvalidKey):
        decode_public_key(encode_secret_seed(raw))


# --- malformed strkeys --------------------------------------------------------------------

MALFORMED_PUBLIC = {
    "empty": "",
    "too short": VALID_PUBLIC[:-1],
    "too long": VALID_PUBLIC + "A",
    "sep23 short": "GAAAAAAAACGC6",
    "lowercase": VALID_PUBLIC.lower(),
    "one lowercase char": VALID_PUBLIC[:10] + VALID_PUBLIC[10].lower() + VALID_PUBLIC[11:],
    "padding at end": VALID_PUBLIC[:-1] + "=",
    "padding appended": VALID_PUBLIC + "====",
    "digit 0": VALID_PUBLIC[:-1] + "0",
    "digit 1": VALID_PUBLIC[:-1] + "1",
    "digit 8": VALID_PUBLIC[:-1] + "8",
    "digit 9": VALID_PUBLIC[:-1] + "9",
    "punctuation": VALID_PUBLIC[:-1] + "!",
    "space inside": VALID_PUBLIC[:20] + " " + VALID_PUBLIC[21:],
    "trailing newline": VALID_PUBLIC[:-1] + "\n",
    "surrounding spaces": " " + VALID_PUBLIC + " ",
    "non-ascii": VALID_PUBLIC[:-1] + "É",
    "bad checksum": VALID_PUBLIC[:-1] + ("A" if VALID_PUBLIC[-1] != "A" else "B"),
    "altered payload": VALID_PUBLIC[:5]
    + ("A" if VALID_PUBLIC[5] != "A" else "B")
    + VALID_PUBLIC[6:],
    "secret seed": VALID_SECRET,
    "pre-auth tx version": _strkey(19 << 3, SEP23_PUBLIC_RAW),
    "sha256 hash version": _strkey(23 << 3, SEP23_PUBLIC_RAW),
    "version zero": _strkey(0, SEP23_PUBLIC_RAW),
    "big-endian checksum": _strkey(6 << 3, SEP23_PUBLIC_RAW, little_endian_crc=False),
}


@pytest.mark.parametrize("strkey", MALFORMED_PUBLIC.values(), ids=MALFORMED_PUBLIC.keys())
def test_malformed_public_key_is_refused(strkey: str) -> None:
    with pytest.raises(InvalidKey):
        decode_public_key(strkey)
    with pytest.raises(InvalidKey):
        KeyPair.from_public_key(strkey)


MALFORMED_SECRET = {
    "empty": "",
    "too short": VALID_SECRET[:-1],
    "too long": VALID_SECRET + "A",
    "lowercase": VALID_SECRET.lower(),
    "padding at end": VALID_SECRET[:-1] + "=",
    "digit 1": VALID_SECRET[:-1] + "1",
    "bad checksum": VALID_SECRET[:-1] + ("A" if VALID_SECRET[-1] != "A" else "B"),
    "public key": VALID_PUBLIC,
    "big-endian checksum": _strkey(18 << 3, bytes(range(32)), little_endian_crc=False),
}


@pytest.mark.parametrize("strkey", MALFORMED_SECRET.values(), ids=MALFORMED_SECRET.keys())
def test_malformed_secret_seed_is_refused(strkey: str) -> None:
    with pytest.raises(InvalidKey):
        decode_secret_seed(strkey)
    with pytest.raises(InvalidKey):
        KeyPair.from_secret(strkey)


def test_hand_built_strkey_matches_encoder() -> None:
    # Guards the malformed cases above: the forging helper builds valid keys when told to.
    assert _strkey(6 << 3, SEP23_PUBLIC_RAW) == SEP23_PUBLIC_STRKEY


@given(strkey=st.text(max_size=60))
def test_arbitrary_text_raises_only_invalid_key(strkey: str) -> None:
    try:
        raw = decode_public_key(strkey)
    except InvalidKey:
        return
    assert encode_public_key(raw) == strkey


@pytest.mark.parametrize("raw", [b"", bytes(31), bytes(33), bytes(64)], ids=len)
def test_encoding_refuses_wrong_payload_length(raw: bytes) -> None:
    with pytest.raises(InvalidKey):
        encode_public_key(raw)
    with pytest.raises(InvalidKey):
        encode_secret_seed(raw)
    with pytest.raises(InvalidKey):
        KeyPair.from_seed(raw)
    with pytest.raises(InvalidKey):
        KeyPair.from_public_key(raw)


def test_non_string_strkey_is_refused() -> None:
    with pytest.raises(InvalidKey):
        decode_public_key(VALID_PUBLIC.encode())  # type: ignore[arg-type]


def test_invalid_key_is_a_value_error() -> None:
    assert issubclass(InvalidKey, ValueError)


# --- KeyPair ------------------------------------------------------------------------------


def test_random_key_pairs_sign_and_differ() -> None:
    first, second = KeyPair.random(), KeyPair.random()
    assert first.can_sign
    assert first != second
    assert KeyPair.from_secret(first.secret) == first
    assert KeyPair.from_secret(first.secret).sign(b"x") == first.sign(b"x")


def test_verify_only_pair_cannot_sign_or_reveal_a_secret() -> None:
    signer = KeyPair.from_seed(REFERENCE_SEEDS[1])
    verifier = KeyPair.from_public_key(signer.public_key_strkey)
    assert not verifier.can_sign
    with pytest.raises(ValueError):
        _ = verifier.secret
    with pytest.raises(ValueError):
        verifier.sign(b"data")
    assert verifier.verify(b"data", signer.sign(b"data"))


def test_from_public_key_accepts_raw_bytes_and_strkey() -> None:
    from_raw = KeyPair.from_public_key(SEP23_PUBLIC_RAW)
    from_strkey = KeyPair.from_public_key(SEP23_PUBLIC_STRKEY)
    assert from_raw.public_key == SEP23_PUBLIC_RAW
    assert from_raw.public_key_strkey == SEP23_PUBLIC_STRKEY
    assert from_raw == from_strkey


def test_equality_and_hash_follow_the_public_key() -> None:
    signer = KeyPair.from_seed(REFERENCE_SEEDS[2])
    verifier = KeyPair.from_public_key(signer.public_key)
    other = KeyPair.from_seed(REFERENCE_SEEDS[3])
    assert signer == verifier
    assert hash(signer) == hash(verifier)
    assert signer != other
    assert len({signer, verifier, other}) == 2
    assert signer != signer.public_key


def test_repr_shows_only_the_public_key() -> None:
    keypair = KeyPair.from_secret(VALID_SECRET)
    text = repr(keypair)
    assert VALID_PUBLIC in text
    assert VALID_SECRET not in text
    assert VALID_SECRET[1:20] not in text
    assert decode_secret_seed(VALID_SECRET).hex() not in text


def test_signature_is_64_bytes_and_verifies() -> None:
    keypair = KeyPair.from_seed(REFERENCE_SEEDS[4])
    signature = keypair.sign(b"payload")
    assert len(signature) == 64
    assert keypair.verify(b"payload", signature)
    assert verify_signature(keypair.public_key, b"payload", signature)


# --- tampering ----------------------------------------------------------------------------

SIGNER = KeyPair.from_seed(REFERENCE_SEEDS[5])
OTHER = KeyPair.from_seed(REFERENCE_SEEDS[6])


def _flip_bit(data: bytes, bit: int) -> bytes:
    """Returns data with one bit inverted."""
    flipped = bytearray(data)
    flipped[bit // 8] ^= 1 << (bit % 8)
    return bytes(flipped)


@given(data=st.binary(min_size=1, max_size=200), bit_seed=st.integers(min_value=0))
def test_flipping_any_data_bit_breaks_the_signature(data: bytes, bit_seed: int) -> None:
    signature = SIGNER.sign(data)
    tampered = _flip_bit(data, bit_seed % (len(data) * 8))
    assert SIGNER.verify(data, signature)
    assert not SIGNER.verify(tampered, signature)
    assert not verify_signature(SIGNER.public_key, tampered, signature)


@given(data=st.binary(max_size=200), bit=st.integers(min_value=0, max_value=64 * 8 - 1))
def test_flipping_any_signature_bit_breaks_the_signature(data: bytes, bit: int) -> None:
    tampered = _flip_bit(SIGNER.sign(data), bit)
    assert not SIGNER.verify(data, tampered)
    assert not verify_signature(SIGNER.public_key, data, tampered)


@given(data=st.binary(max_size=200))
def test_another_key_does_not_verify(data: bytes) -> None:
    signature = SIGNER.sign(data)
    assert not OTHER.verify(data, signature)
    assert not verify_signature(OTHER.public_key, data, signature)
    assert not SIGNER.verify(data, OTHER.sign(data))


@pytest.mark.parametrize("length", [0, 1, 32, 63, 65, 128])
def test_wrong_signature_length_is_false_not_an_error(length: int) -> None:
    signature = (SIGNER.sign(b"m") * 3)[:length]
    assert not SIGNER.verify(b"m", signature)
    assert not verify_signature(SIGNER.public_key, b"m", signature)


@pytest.mark.parametrize("length", [0, 31, 33, 64])
def test_wrong_public_key_length_is_false_not_an_error(length: int) -> None:
    public_key = (SIGNER.public_key * 2)[:length]
    assert not verify_signature(public_key, b"m", SIGNER.sign(b"m"))


@given(public_key=payloads, signature=st.binary(min_size=64, max_size=64))
def test_junk_keys_and_signatures_never_raise(public_key: bytes, signature: bytes) -> None:
    # Junk 32-byte keys include points off the curve and small-order points.
    assert verify_signature(public_key, b"m", signature) is False


def test_non_bytes_input_is_false_not_an_error() -> None:
    signature = SIGNER.sign(b"m")
    assert not verify_signature(SIGNER.public_key.hex(), b"m", signature)  # type: ignore[arg-type]
    assert not verify_signature(SIGNER.public_key, b"m", signature.hex())  # type: ignore[arg-type]
    assert not SIGNER.verify(b"m", None)  # type: ignore[arg-type]


def test_verify_key_cache_is_bounded_and_reused() -> None:
    cache_info = keys._verify_key.cache_info
    assert cache_info().maxsize is not None
    keypair = KeyPair.from_seed(REFERENCE_SEEDS[7])
    signature = keypair.sign(b"m")
    assert verify_signature(keypair.public_key, b"m", signature)
    hits = cache_info().hits
    assert verify_signature(keypair.public_key, b"m", signature)
    assert cache_info().hits == hits + 1
