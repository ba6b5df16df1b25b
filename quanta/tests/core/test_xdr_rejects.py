"""Strictness of the XDR codec: malformed input is refused with `XdrError`, nothing else.

Goal: bytes from the network (a client, a peer node) are decoded before anything else looks
at them, and the same bytes are hashed and signed, so decoding must accept exactly one
encoding per value and refuse everything else with the one exception the gateway and the
auditors handle (`XdrError`): no `EOFError`, `struct.error`, `UnicodeDecodeError`,
`RecursionError`, `MemoryError` or `OverflowError` may escape, and no huge allocation may
happen on a forged length. Encoding refuses values that have no valid encoding the same way.

Method: targeted cases built from a valid encoding by changing one field at a known offset
(truncation at every offset, trailing bytes, unknown discriminants and enum values, bool 2,
non-zero padding, forged lengths, invalid UTF-8, deep nesting, non-bytes input), then a
Hypothesis fuzz of CONSTELLATION_XDR_FUZZ_EXAMPLES inputs (random bytes and random mutations
of valid encodings; 2,000 in the suite, ~4 s; the long mode is 10,000 or more) decoded as
`MESSAGE`, `Quantum` and `MessageEnvelope`. Whenever a fuzzed input does decode,
re-encoding it must give the same bytes (decoding accepts only canonical encodings).
"""

from __future__ import annotations

import dataclasses
import os
import struct
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quanta.core.status import StatusCode
from quanta.core.xdr import codec, schema
from quanta.core.xdr.codec import XdrError, decode, encode
from quanta.tests.strategies import xdr_values

# --- helpers ---------------------------------------------------------------------------------


def u32(value: int) -> bytes:
    return struct.pack(">I", value)


def i32(value: int) -> bytes:
    return struct.pack(">i", value)


def u64(value: int) -> bytes:
    return struct.pack(">Q", value)


def padded(data: bytes) -> bytes:
    return data + b"\x00" * (-len(data) % 4)


def result_bytes(description: bytes, length: int | None = None, padding: bytes = b"") -> bytes:
    """A `ResultMessage` in `MESSAGE` with a raw description: its length prefix and padding
    can be forged."""
    size = len(description) if length is None else length
    body = description + (padding or b"\x00" * (-len(description) % 4))
    return i32(schema.MessageType.RESULT) + u64(1) + i32(StatusCode.SUCCESS) + u32(size) + body


def forged(value: Any, **changes: Any) -> Any:
    """`dataclasses.replace` typed loosely: the encode-reject cases put wrong types in fields."""
    return dataclasses.replace(value, **changes)


def assert_rejected(xdr_type: Any, data: Any) -> XdrError:
    with pytest.raises(XdrError) as caught:
        decode(xdr_type, data)
    return caught.value


SIGNATURE = schema.Signature(signer=b"\x05" * 32, signature=b"\x06" * 64)
PAYMENT = schema.PaymentRequest(
    message_id=1, account=b"\x01" * 32, nonce=2, asset="XLM", amount=3, destination=b"\x02" * 32
)
ORDER = schema.OrderRequest(
    message_id=1,
    account=b"\x01" * 32,
    nonce=2,
    asset="XLM",
    side=schema.OrderSide.SELL,
    amount=3,
    price=0.25,
    time_in_force=schema.TimeInForce.GOOD_TILL_EXPIRE,
)
SETTINGS = schema.ConstellationSettings(
    version=1,
    alpha=b"\x0a" * 32,
    auditors=(schema.AuditorSettings(public_key=b"\x0a" * 32, address="wss://a"),),
    min_account_balance=1,
    min_allowed_lot_size=1,
    assets=(schema.AssetSettings(code="XLM", is_suspended=False, is_quote_asset=True),),
    providers=(),
    request_rate_limits=schema.RequestRateLimits(minute_limit=1, hour_limit=2),
)


def quantum_of(message: Any) -> schema.Quantum:
    return schema.Quantum(
        apex=1,
        prev_hash=b"\x03" * 32,
        effects_proof=b"\x04" * 32,
        timestamp=1,
        body=schema.RequestQuantum(
            request=schema.MessageEnvelope(message=message, signature=SIGNATURE)
        ),
    )


BATCH = schema.QuantaBatch(
    message_id=5,
    quanta=(
        schema.SignedQuantum(
            quantum=quantum_of(ORDER),
            signatures=(schema.NodeSignature(auditor_index=0, signature=b"\x07" * 64),),
        ),
    ),
    last_known_apex=1,
)
QUANTUM_RESULT = schema.QuantumResultMessage(
    message_id=1,
    status=StatusCode.SUCCESS,
    description="ok",
    apex=1,
    quantum_hash=b"\x08" * 32,
    payload_proof=schema.PayloadProof(payload_hash=b"\x09" * 32, signatures=()),
    effects=(
        schema.EffectsGroup(
            account=1,
            account_sequence=1,
            effects=(
                schema.TradeEffect(
                    order_id=1,
                    asset="XLM",
                    side=schema.OrderSide.BUY,
                    price=1,
                    asset_amount=1,
                    quote_amount=1,
                    is_new_order=True,
                ),
                schema.ConstellationUpdateEffect(settings=SETTINGS, prev_settings=None),
            ),
        ),
        schema.EffectsGroupHash(account=2, hash=b"\x0b" * 32),
    ),
    account_data=None,
)

VALID: list[tuple[str, Any, Any]] = [
    ("payment", PAYMENT, schema.MESSAGE),
    ("order", ORDER, schema.MESSAGE),
    ("batch", BATCH, schema.MESSAGE),
    ("quantum_result", QUANTUM_RESULT, schema.MESSAGE),
    ("quantum", quantum_of(PAYMENT), schema.Quantum),
    (
        "envelope",
        schema.MessageEnvelope(message=PAYMENT, signature=SIGNATURE),
        schema.MessageEnvelope,
    ),
]


def test_valid_fixtures_decode() -> None:
    for _, value, xdr_type in VALID:
        assert decode(xdr_type, encode(value, xdr_type)) == value


# --- truncation and trailing bytes ------------------------------------------------------------


@pytest.mark.parametrize(("value", "xdr_type"), [v[1:] for v in VALID], ids=[v[0] for v in VALID])
def test_truncated_at_every_offset(value: Any, xdr_type: Any) -> None:
    data = encode(value, xdr_type)
    for end in range(len(data)):
        assert_rejected(xdr_type, data[:end])


@pytest.mark.parametrize(("value", "xdr_type"), [v[1:] for v in VALID], ids=[v[0] for v in VALID])
def test_trailing_bytes(value: Any, xdr_type: Any) -> None:
    data = encode(value, xdr_type)
    for extra in (b"\x00", b"\x00" * 4, u32(1), data):
        error = assert_rejected(xdr_type, data + extra)
        assert "trailing" in str(error)


# --- discriminants, enums, bools ----------------------------------------------------------------


@pytest.mark.parametrize("discriminant", [0, -1, 7, 99, 2**31 - 1, -(2**31)])
def test_unknown_message_discriminant(discriminant: int) -> None:
    data = encode(PAYMENT, schema.MESSAGE)
    assert_rejected(schema.MESSAGE, i32(discriminant) + data[4:])


def test_unknown_effect_and_effects_info_discriminants() -> None:
    effect = encode(schema.NonceUpdateEffect(nonce=2, prev_nonce=1), schema.EFFECT)
    assert decode(schema.EFFECT, effect) == schema.NonceUpdateEffect(nonce=2, prev_nonce=1)
    for discriminant in (0, 12, -4):
        assert_rejected(schema.EFFECT, i32(discriminant) + effect[4:])
    group_hash = encode(schema.EffectsGroupHash(account=1, hash=b"\x00" * 32), schema.EFFECTS_INFO)
    assert_rejected(schema.EFFECTS_INFO, i32(2) + group_hash[4:])


def test_message_discriminant_is_not_a_quantum_body() -> None:
    # PAYMENT_REQUEST is a valid MessageType, but not an arm of QUANTUM_BODY.
    quantum = encode(quantum_of(PAYMENT))
    body_offset = 8 + 32 + 32 + 8
    assert quantum[body_offset : body_offset + 4] == i32(schema.MessageType.REQUEST_QUANTUM)
    forged = (
        quantum[:body_offset] + i32(schema.MessageType.PAYMENT_REQUEST) + quantum[body_offset + 4 :]
    )
    assert_rejected(schema.Quantum, forged)


@pytest.mark.parametrize("side", [0, 3, -1, 2**31 - 1])
def test_unknown_enum_value(side: int) -> None:
    data = bytearray(encode(ORDER, schema.MESSAGE))
    side_offset = 4 + 8 + 32 + 8 + 8  # discriminant, message_id, account, nonce, "XLM"
    assert bytes(data[side_offset : side_offset + 4]) == i32(schema.OrderSide.SELL)
    data[side_offset : side_offset + 4] = i32(side)
    error = assert_rejected(schema.MESSAGE, bytes(data))
    assert schema.OrderSide.__name__ in str(error)


def test_unknown_status_code() -> None:
    data = bytearray(result_bytes(b"ok"))
    data[12:16] = i32(201)
    assert_rejected(schema.MESSAGE, bytes(data))


@pytest.mark.parametrize("flag", [2, 3, 0x80000000, 0xFFFFFFFF])
def test_bool_other_than_zero_or_one(flag: int) -> None:
    effect = schema.TradeEffect(
        order_id=1,
        asset="XLM",
        side=schema.OrderSide.BUY,
        price=1,
        asset_amount=1,
        quote_amount=1,
        is_new_order=True,
    )
    data = encode(effect)
    flag_at = len(data) - 8 - 4  # the bool is followed by the u64 client order id
    assert data[flag_at:-8] == u32(1)
    assert_rejected(schema.TradeEffect, data[:flag_at] + u32(flag) + data[-8:])


@pytest.mark.parametrize("flag", [2, 0xFFFFFFFF])
def test_optional_flag_other_than_zero_or_one(flag: int) -> None:
    data = encode(schema.ConstellationUpdateEffect(settings=SETTINGS, prev_settings=None))
    assert data[-4:] == u32(0)
    assert_rejected(schema.ConstellationUpdateEffect, data[:-4] + u32(flag))


# --- padding, lengths, UTF-8 --------------------------------------------------------------------


def test_valid_description_helper() -> None:
    assert decode(schema.MESSAGE, result_bytes(b"hello")).description == "hello"


@pytest.mark.parametrize("padding", [b"\x01\x00\x00", b"\x00\x00\x01", b"\xff\xff\xff"])
def test_non_zero_string_padding(padding: bytes) -> None:
    error = assert_rejected(schema.MESSAGE, result_bytes(b"hello", padding=padding))
    assert "padding" in str(error)


def test_non_zero_opaque_padding() -> None:
    signature = schema.TxSignature(signer=b"\x01", signature=b"")
    data = encode(signature)
    assert data[:8] == u32(1) + b"\x01\x00\x00\x00"
    assert_rejected(schema.TxSignature, data[:5] + b"\x00\x00\x02" + data[8:])


@pytest.mark.parametrize("length", [0xFFFFFFFF, 0x80000000, 0x7FFFFFFF])
def test_huge_string_length(length: int) -> None:
    assert_rejected(schema.MESSAGE, result_bytes(b"hello", length=length))


@pytest.mark.parametrize("length", [0xFFFFFFFF, 0x80000000, 0x7FFFFFFF, 16 * 1024])
def test_huge_opaque_length(length: int) -> None:
    withdrawal = schema.WithdrawalQuantum(
        request=schema.MessageEnvelope(message=PAYMENT, signature=SIGNATURE), transaction=b"tx"
    )
    data = encode(withdrawal)
    assert data[-8:] == u32(2) + b"tx\x00\x00"
    # 16 KiB is within the maximum but far beyond the input: truncated, not allocated.
    assert_rejected(schema.WithdrawalQuantum, data[:-8] + u32(length) + b"tx\x00\x00")


@pytest.mark.parametrize("count", [0xFFFFFFFF, 0x80000000, 1000])
def test_huge_array_count(count: int) -> None:
    data = encode(BATCH, schema.MESSAGE)
    assert data[12:16] == u32(1)
    assert_rejected(schema.MESSAGE, data[:12] + u32(count) + data[16:])


def test_length_one_above_declared_maximum() -> None:
    maximum = schema.Limits.DESCRIPTION_MAX
    assert decode(schema.MESSAGE, result_bytes(b"d" * maximum)).description == "d" * maximum
    error = assert_rejected(schema.MESSAGE, result_bytes(b"d" * (maximum + 1)))
    assert "exceeds maximum" in str(error)

    code = schema.Limits.ASSET_CODE_MAX
    assert decode(schema.BalanceCreateEffect, u32(code) + b"A" * code).asset == "A" * code
    assert_rejected(schema.BalanceCreateEffect, u32(code + 1) + padded(b"A" * (code + 1)))

    signer = u32(65) + padded(b"\x01" * 65)
    assert_rejected(schema.TxSignature, signer + u32(0))


def test_array_count_above_declared_maximum() -> None:
    maximum = schema.Limits.AUDITORS_MAX
    one = u32(0) + b"\x01" * 64
    proof_at_max = b"\x00" * 32 + u32(maximum) + one * maximum
    assert len(decode(schema.PayloadProof, proof_at_max).signatures) == maximum
    proof_above = b"\x00" * 32 + u32(maximum + 1) + one * (maximum + 1)
    error = assert_rejected(schema.PayloadProof, proof_above)
    assert "exceeds maximum" in str(error)


@pytest.mark.parametrize(
    "raw",
    [
        b"\xff\xfe",  # never valid in UTF-8
        b"\xc0\xaf",  # overlong encoding of "/"
        b"\xed\xa0\x80",  # UTF-16 surrogate encoded in UTF-8
        b"ab\xe2\x82",  # truncated 3-byte sequence
        b"\x80",  # lone continuation byte
    ],
)
def test_invalid_utf8(raw: bytes) -> None:
    error = assert_rejected(schema.MESSAGE, result_bytes(raw))
    assert "UTF-8" in str(error)


# --- nesting ------------------------------------------------------------------------------------


def nested_batches(levels: int) -> bytes:
    """A MESSAGE nesting QuantaBatch -> SignedQuantum -> Quantum -> RequestQuantum ->
    MessageEnvelope -> MESSAGE (QuantaBatch ...) `levels` times around a HandshakeRequest,
    built directly as bytes (a value this deep could not be encoded by recursion either)."""
    data = encode(
        schema.HandshakeRequest(message_id=1, handshake_data=b"\x00" * 32), schema.MESSAGE
    )
    for level in range(levels):
        head = (
            i32(schema.MessageType.QUANTA_BATCH)
            + u64(level)  # QuantaBatch.message_id
            + u32(1)  # quanta: count 1
            + u64(level + 1)  # Quantum.apex
            + b"\x00" * 64  # prev_hash, effects_proof
            + u64(0)  # timestamp
            + i32(schema.MessageType.REQUEST_QUANTUM)  # body discriminant
        )
        tail = (
            b"\x05" * 32
            + b"\x06" * 64  # MessageEnvelope.signature
            + u32(0)  # SignedQuantum.signatures: count 0
            + u64(level)  # QuantaBatch.last_known_apex
        )
        data = head + data + tail
    return data


def test_shallow_nesting_decodes() -> None:
    message = decode(schema.MESSAGE, nested_batches(3))
    depth = 0
    while isinstance(message, schema.QuantaBatch):
        body = message.quanta[0].quantum.body
        assert isinstance(body, schema.RequestQuantum)
        message = body.request.message
        depth += 1
    assert depth == 3
    assert isinstance(message, schema.HandshakeRequest)


@pytest.mark.parametrize("levels", [300, 2000])
def test_deep_nesting_is_an_xdr_error_not_a_recursion_error(levels: int) -> None:
    data = nested_batches(levels)
    error = assert_rejected(schema.MESSAGE, data)
    assert "deep" in str(error)
    envelope = data + SIGNATURE.signer + SIGNATURE.signature
    assert_rejected(schema.MessageEnvelope, envelope)


# --- non-bytes input ----------------------------------------------------------------------------


@pytest.mark.parametrize("data", ["00000001", None, 1, [0, 0, 0, 1], 1.5, object()])
def test_non_bytes_input(data: Any) -> None:
    assert_rejected(schema.MESSAGE, data)


def test_bytes_like_input_is_accepted() -> None:
    data = encode(PAYMENT, schema.MESSAGE)
    bytes_like: list[Any] = [bytearray(data), memoryview(data)]
    for buffer in bytes_like:
        assert decode(schema.MESSAGE, buffer) == PAYMENT
    assert_rejected(schema.MESSAGE, b"")


# --- encoding rejects ----------------------------------------------------------------------------

ENCODE_REJECTS: list[tuple[str, Any, Any]] = [
    ("negative_uint64", forged(PAYMENT, nonce=-1), schema.MESSAGE),
    ("uint64_overflow", forged(PAYMENT, amount=2**64), schema.MESSAGE),
    ("int64_overflow", forged(PAYMENT, message_id=2**63), schema.MESSAGE),
    ("int64_underflow", forged(PAYMENT, message_id=-(2**63) - 1), schema.MESSAGE),
    ("uint32_overflow", schema.RequestRateLimits(minute_limit=2**32, hour_limit=0), None),
    ("bool_for_int", forged(PAYMENT, message_id=True), schema.MESSAGE),
    ("float_for_int", forged(PAYMENT, amount=1.0), schema.MESSAGE),
    ("str_for_int", forged(PAYMENT, amount="1"), schema.MESSAGE),
    ("int_for_bool", forged(SETTINGS.assets[0], is_suspended=1), None),
    ("none_for_bool", forged(SETTINGS.assets[0], is_suspended=None), None),
    ("string_too_long", forged(PAYMENT, asset="ABCDEFGHIJKLM"), schema.MESSAGE),
    ("string_too_many_bytes", forged(PAYMENT, asset="é" * 7), schema.MESSAGE),
    ("bytes_for_string", forged(PAYMENT, asset=b"XLM"), schema.MESSAGE),
    ("lone_surrogate", forged(PAYMENT, asset="\udc80"), schema.MESSAGE),
    ("short_fixed_opaque", forged(PAYMENT, account=b"\x01" * 31), schema.MESSAGE),
    ("long_fixed_opaque", forged(PAYMENT, account=b"\x01" * 33), schema.MESSAGE),
    ("str_for_opaque", forged(PAYMENT, account="1" * 32), schema.MESSAGE),
    ("var_opaque_too_long", schema.TxSignature(signer=b"\x01" * 65, signature=b""), None),
    ("none_for_struct", forged(SIGNATURE, signer=None), None),
    ("unknown_enum_value", forged(ORDER, side=3), schema.MESSAGE),
    ("bool_for_enum", forged(ORDER, side=True), schema.MESSAGE),
    ("str_for_double", forged(ORDER, price="0.25"), schema.MESSAGE),
    ("int_too_big_for_double", forged(ORDER, price=10**400), schema.MESSAGE),
    ("wrong_dataclass_in_union", SIGNATURE, schema.MESSAGE),
    ("effect_in_message_union", schema.BalanceCreateEffect(asset="XLM"), schema.MESSAGE),
    ("message_in_effect_union", PAYMENT, schema.EFFECT),
    ("message_as_quantum_body", forged(quantum_of(PAYMENT), body=PAYMENT), None),
    ("none_in_union", None, schema.MESSAGE),
    ("wrong_struct_type", PAYMENT, schema.OrderRequest),
    (
        "array_too_long",
        forged(SETTINGS, auditors=SETTINGS.auditors * 21),
        schema.ConstellationSettings,
    ),
    ("set_for_array", forged(SETTINGS, providers=set()), None),
    (
        "wrong_item_in_array",
        forged(SETTINGS, assets=(SETTINGS.auditors[0],)),
        None,
    ),
    (
        "wrong_type_in_optional",
        forged(
            schema.ConstellationUpdateEffect(settings=SETTINGS, prev_settings=None),
            prev_settings=SIGNATURE,
        ),
        None,
    ),
]


@pytest.mark.parametrize(
    ("value", "xdr_type"), [r[1:] for r in ENCODE_REJECTS], ids=[r[0] for r in ENCODE_REJECTS]
)
def test_encode_rejects(value: Any, xdr_type: Any) -> None:
    with pytest.raises(XdrError):
        encode(value, xdr_type)


def test_encode_accepts_the_limits_themselves() -> None:
    edge = dataclasses.replace(PAYMENT, nonce=0, amount=2**64 - 1, message_id=-(2**63))
    assert decode(schema.MESSAGE, encode(edge, schema.MESSAGE)) == edge
    long_asset = dataclasses.replace(PAYMENT, asset="é" * 6)  # 12 bytes: exactly the maximum
    assert decode(schema.MESSAGE, encode(long_asset, schema.MESSAGE)) == long_asset


# --- fuzz ---------------------------------------------------------------------------------------

FUZZ_TARGETS: list[Any] = [schema.MESSAGE, schema.Quantum, schema.MessageEnvelope]
INTERESTING_WORDS = [0, 1, 2, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 1024, 1025]


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A valid encoding of a random value of a fuzz target, then 1-4 random mutations."""
    target = draw(st.sampled_from(FUZZ_TARGETS))
    data = bytearray(encode(draw(xdr_values(target, max_depth=1)), target))
    for _ in range(draw(st.integers(1, 4))):
        position = draw(st.integers(0, len(data)))
        kind = draw(st.sampled_from(["flip", "truncate", "insert", "delete", "word"]))
        if kind == "flip" and position < len(data):
            data[position] ^= 1 << draw(st.integers(0, 7))
        elif kind == "truncate":
            del data[position:]
        elif kind == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "delete":
            del data[position : position + draw(st.integers(1, 8))]
        elif kind == "word":
            aligned = position - position % 4
            data[aligned : aligned + 4] = u32(draw(st.sampled_from(INTERESTING_WORDS)))
    return bytes(data)


FUZZ_EXAMPLES = int(os.environ.get("CONSTELLATION_XDR_FUZZ_EXAMPLES", "2000"))


@pytest.mark.timeout(max(120, FUZZ_EXAMPLES // 50))
@settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.one_of(st.binary(max_size=512), mutated()))
def test_fuzz_decode_raises_only_xdr_error(data: bytes) -> None:
    for target in FUZZ_TARGETS:
        try:
            value = decode(target, data)
        except XdrError:
            continue
        # Whatever is accepted is the one canonical encoding of what it decodes to.
        assert encode(value, target) == data


def test_decode_errors_are_value_errors() -> None:
    # Callers may catch ValueError; XdrError must stay one.
    assert issubclass(codec.XdrError, ValueError)
