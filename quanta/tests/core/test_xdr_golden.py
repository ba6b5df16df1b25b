"""Golden byte vectors: the codec produces exactly the bytes RFC 4506 prescribes.

Goal: pin the wire format, independently of the codec's own implementation, so a change of
field order, discriminant, width or padding is caught (every node hashes and signs these
bytes; a silent change is a protocol break).

Method: each expected encoding is written out by hand below, field by field, from the XDR
rules: int32/enum/union discriminant = 4 bytes big-endian two's complement; (u)int64 = 8 bytes
big-endian; double = IEEE 754 binary64 big-endian; bool = uint32 0 or 1; opaque[n] = n bytes
zero-padded to a multiple of 4; opaque<max>/string<max> = uint32 length, the bytes, zero
padding to a multiple of 4; T<max> = uint32 count then the items; T* = bool flag then the
value when present. Each vector must encode to those bytes and decode back to the value.
For two of them, xdrlib3's `Packer` driven by hand, field by field, gives the same bytes too.
"""

from __future__ import annotations

from typing import Any

import pytest
import xdrlib3

from quanta.core.status import StatusCode
from quanta.core.xdr import schema
from quanta.core.xdr.codec import decode, encode


def hexbytes(*parts: str) -> bytes:
    """Joins hex fragments (spaces allowed) into bytes."""
    return bytes.fromhex("".join(parts).replace(" ", ""))


def repeat(byte: str, count: int) -> str:
    """`count` copies of one hex byte, e.g. repeat("11", 32) for a 32-byte key."""
    return byte * count


# --- vectors ---------------------------------------------------------------------------------

PAYMENT = schema.PaymentRequest(
    message_id=1,
    account=b"\x11" * 32,
    nonce=2,
    asset="XLM",
    amount=10_000_000,
    destination=b"\x22" * 32,
)
PAYMENT_HEX = hexbytes(
    "0000000b",  # MESSAGE discriminant: PAYMENT_REQUEST = 11 (int32)
    "0000000000000001",  # message_id = 1 (int64)
    repeat("11", 32),  # account: opaque[32], no padding
    "0000000000000002",  # nonce = 2 (uint64)
    "00000003",  # asset: string length 3
    "584c4d 00",  # "XLM" + 1 zero byte of padding
    "0000000000989680",  # amount = 10_000_000 (uint64)
    repeat("22", 32),  # destination: opaque[32]
)

ORDER = schema.OrderRequest(
    message_id=-1,
    account=b"\x33" * 32,
    nonce=7,
    asset="USDC",
    side=schema.OrderSide.BUY,
    amount=5,
    price=1.5,
    time_in_force=schema.TimeInForce.IMMEDIATE_OR_CANCEL,
    client_order_id=0x0102030405060708,
)
ORDER_HEX = hexbytes(
    "0000000c",  # MESSAGE discriminant: ORDER_REQUEST = 12
    "ffffffffffffffff",  # message_id = -1 (int64, two's complement)
    repeat("33", 32),  # account
    "0000000000000007",  # nonce = 7
    "00000004",  # asset: string length 4
    "55534443",  # "USDC", already a multiple of 4: no padding
    "00000002",  # side = BUY (enum = int32 2)
    "0000000000000005",  # amount = 5
    "3ff8000000000000",  # price = 1.5 (double: sign 0, exponent 0x3ff, mantissa .1b)
    "00000001",  # time_in_force = IMMEDIATE_OR_CANCEL (1)
    "0102030405060708",  # client_order_id (uint64)
)

HANDSHAKE = schema.HandshakeRequest(message_id=0x0102030405060708, handshake_data=bytes(range(32)))
HANDSHAKE_HEX = hexbytes(
    "00000001",  # MESSAGE discriminant: HANDSHAKE_REQUEST = 1
    "0102030405060708",  # message_id (int64, big-endian)
    "000102030405060708090a0b0c0d0e0f",  # handshake_data: opaque[32], bytes 0..15
    "101112131415161718191a1b1c1d1e1f",  # bytes 16..31
)

RESULT = schema.ResultMessage(message_id=42, status=StatusCode.BAD_REQUEST, description="hello")
RESULT_HEX = hexbytes(
    "00000005",  # MESSAGE discriminant: RESULT = 5
    "000000000000002a",  # message_id = 42
    "00000190",  # status = 400 (enum)
    "00000005",  # description: string length 5
    "68656c6c6f",  # "hello"
    "000000",  # 3 zero bytes of padding up to 8
)

BALANCE_UPDATE = schema.BalanceUpdateEffect(
    asset="EURO1", sign=schema.BalanceUpdateSign.MINUS, amount=2**64 - 1
)
BALANCE_UPDATE_HEX = hexbytes(
    "00000004",  # EFFECT discriminant: BALANCE_UPDATE = 4
    "00000005",  # asset: string length 5
    "4555524f31 000000",  # "EURO1" + 3 zero bytes of padding
    "00000001",  # sign = MINUS (1)
    "ffffffffffffffff",  # amount = 2**64 - 1 (largest uint64)
)

SETTINGS = schema.ConstellationSettings(
    version=1,
    alpha=b"\xaa" * 32,
    auditors=(schema.AuditorSettings(public_key=b"\xbb" * 32, address=""),),
    min_account_balance=0,
    min_allowed_lot_size=1,
    assets=(schema.AssetSettings(code="XLM", is_suspended=False, is_quote_asset=True),),
    providers=(),
    request_rate_limits=schema.RequestRateLimits(minute_limit=10, hour_limit=100),
)
SETTINGS_HEX = (
    "0000000000000001"  # version = 1 (uint64)
    + repeat("aa", 32)  # alpha: opaque[32]
    + "00000001"  # auditors: array count 1
    + repeat("bb", 32)  # auditors[0].public_key
    + "00000000"  # auditors[0].address: empty string, length 0 and no bytes
    + "0000000000000000"  # min_account_balance = 0
    + "0000000000000001"  # min_allowed_lot_size = 1
    + "00000001"  # assets: array count 1
    + "00000003 584c4d00"  # assets[0].code = "XLM" (length 3 + 1 byte padding)
    + "00000000"  # assets[0].is_suspended = false
    + "00000001"  # assets[0].is_quote_asset = true
    + "00000000"  # providers: array count 0
    + "0000000a"  # request_rate_limits.minute_limit = 10 (uint32)
    + "00000064"  # request_rate_limits.hour_limit = 100
    + "0000000000000000"  # halt_after_apex = 0 (uint64: running)
)

SETTINGS_UPDATE_FIRST = schema.ConstellationUpdateEffect(settings=SETTINGS, prev_settings=None)
SETTINGS_UPDATE_FIRST_HEX = hexbytes(
    "00000009",  # EFFECT discriminant: CONSTELLATION_UPDATE = 9
    SETTINGS_HEX,  # settings
    "00000000",  # prev_settings: optional flag 0 = absent, nothing follows
)

SETTINGS_UPDATE_NEXT = schema.ConstellationUpdateEffect(settings=SETTINGS, prev_settings=SETTINGS)
SETTINGS_UPDATE_NEXT_HEX = hexbytes(
    "00000009",  # EFFECT discriminant: CONSTELLATION_UPDATE = 9
    SETTINGS_HEX,  # settings
    "00000001",  # prev_settings: optional flag 1 = present
    SETTINGS_HEX,  # the value itself
)

CANCELLATION = schema.OrderCancellationRequest(
    message_id=9, account=b"\x44" * 32, nonce=10, order_id=0, client_order_id=11
)
QUANTUM = schema.Quantum(
    apex=3,
    prev_hash=b"\x01" * 32,
    effects_proof=b"\x02" * 32,
    timestamp=1_700_000_000_000,
    body=schema.RequestQuantum(
        request=schema.MessageEnvelope(
            message=CANCELLATION,
            signature=schema.Signature(signer=b"\x55" * 32, signature=b"\x66" * 64),
        )
    ),
)
QUANTUM_HEX = hexbytes(
    "0000000000000003",  # apex = 3 (uint64)
    repeat("01", 32),  # prev_hash: opaque[32]
    repeat("02", 32),  # effects_proof: opaque[32]
    "0000018bcfe56800",  # timestamp = 1_700_000_000_000 ms (int64)
    "0000001e",  # body: QUANTUM_BODY discriminant REQUEST_QUANTUM = 30
    # body.request: MessageEnvelope
    "0000000d",  # message: MESSAGE discriminant ORDER_CANCELLATION_REQUEST = 13
    "0000000000000009",  # message.message_id = 9
    repeat("44", 32),  # message.account
    "000000000000000a",  # message.nonce = 10
    "0000000000000000",  # message.order_id = 0: the order is named by its client order id
    "000000000000000b",  # message.client_order_id = 11
    repeat("55", 32),  # signature.signer: opaque[32]
    repeat("66", 64),  # signature.signature: opaque[64]
)

BATCH = schema.QuantaBatch(
    message_id=7,
    quanta=(schema.SignedQuantum(quantum=QUANTUM, signatures=()),),
    last_known_apex=4,
)
BATCH_HEX = hexbytes(
    "00000028",  # MESSAGE discriminant: QUANTA_BATCH = 40
    "0000000000000007",  # message_id = 7
    "00000001",  # quanta: array count 1
    QUANTUM_HEX.hex(),  # quanta[0].quantum
    "00000000",  # quanta[0].signatures: array count 0
    "0000000000000004",  # last_known_apex = 4
)

AUDITOR_RESULT = schema.AuditorResult(
    apex=5,
    signature=schema.NodeSignature(auditor_index=2, signature=b"\x77" * 64),
    tx_signature=schema.TxSignature(signer=b"\x01\x02", signature=b"\x03\x04\x05\x06\x07"),
    rotation_signatures=(schema.TxSignature(signer=b"\x08", signature=b"\x09\x0a"),),
)
AUDITOR_RESULT_HEX = hexbytes(
    "0000000000000005",  # apex = 5
    "00000002",  # signature.auditor_index = 2 (uint32)
    repeat("77", 64),  # signature.signature: opaque[64]
    "00000001",  # tx_signature: optional flag 1 = present
    "00000002 0102 0000",  # tx_signature.signer: opaque<64>, length 2, 2 bytes padding
    "00000005 0304050607 000000",  # tx_signature.signature: length 5, 3 bytes padding
    "00000001",  # rotation_signatures: TxSignature<10>, 1 element
    "00000001 08 000000",  # [0].signer: length 1, 3 bytes padding
    "00000002 090a 0000",  # [0].signature: length 2, 2 bytes padding
)

GOLDEN: list[tuple[str, Any, Any, bytes]] = [
    ("payment_in_message", PAYMENT, schema.MESSAGE, PAYMENT_HEX),
    ("order_in_message", ORDER, schema.MESSAGE, ORDER_HEX),
    ("handshake_in_message", HANDSHAKE, schema.MESSAGE, HANDSHAKE_HEX),
    ("result_in_message", RESULT, schema.MESSAGE, RESULT_HEX),
    ("balance_update_in_effect", BALANCE_UPDATE, schema.EFFECT, BALANCE_UPDATE_HEX),
    ("settings_update_absent", SETTINGS_UPDATE_FIRST, schema.EFFECT, SETTINGS_UPDATE_FIRST_HEX),
    ("settings_update_present", SETTINGS_UPDATE_NEXT, schema.EFFECT, SETTINGS_UPDATE_NEXT_HEX),
    ("quantum_request", QUANTUM, schema.Quantum, QUANTUM_HEX),
    ("quanta_batch_in_message", BATCH, schema.MESSAGE, BATCH_HEX),
    ("auditor_result", AUDITOR_RESULT, schema.AuditorResult, AUDITOR_RESULT_HEX),
]


@pytest.mark.parametrize(
    ("value", "xdr_type", "expected"), [g[1:] for g in GOLDEN], ids=[g[0] for g in GOLDEN]
)
def test_encoding_matches_hand_written_bytes(value: Any, xdr_type: Any, expected: bytes) -> None:
    assert encode(value, xdr_type).hex() == expected.hex()


@pytest.mark.parametrize(
    ("value", "xdr_type", "encoded"), [g[1:] for g in GOLDEN], ids=[g[0] for g in GOLDEN]
)
def test_hand_written_bytes_decode_to_the_value(value: Any, xdr_type: Any, encoded: bytes) -> None:
    assert decode(xdr_type, encoded) == value


def test_vector_lengths_follow_the_padding_rules() -> None:
    # Sizes recomputed from the field list, not from the hex: catches a typo in a vector.
    assert len(PAYMENT_HEX) == 4 + 8 + 32 + 8 + (4 + 4) + 8 + 32
    assert len(ORDER_HEX) == 4 + 8 + 32 + 8 + (4 + 4) + 4 + 8 + 8 + 4 + 8
    assert len(HANDSHAKE_HEX) == 4 + 8 + 32
    assert len(RESULT_HEX) == 4 + 8 + 4 + (4 + 8)
    assert len(BALANCE_UPDATE_HEX) == 4 + (4 + 8) + 4 + 8
    settings_size = 8 + 32 + 4 + (32 + 4) + 8 + 8 + 4 + (8 + 4 + 4) + 4 + 4 + 4 + 8
    assert len(SETTINGS_UPDATE_FIRST_HEX) == 4 + settings_size + 4
    assert len(SETTINGS_UPDATE_NEXT_HEX) == 4 + settings_size + 4 + settings_size
    assert len(QUANTUM_HEX) == 8 + 32 + 32 + 8 + 4 + (4 + 8 + 32 + 8 + 8 + 8) + (32 + 64)
    assert len(AUDITOR_RESULT_HEX) == 8 + 4 + 64 + 4 + (4 + 4) + (4 + 8) + 4 + (4 + 4) + (4 + 4)


def test_xdrlib3_packer_by_hand_gives_the_payment_bytes() -> None:
    packer = xdrlib3.Packer()
    packer.pack_int(schema.MessageType.PAYMENT_REQUEST)
    packer.pack_hyper(PAYMENT.message_id)
    packer.pack_fopaque(32, PAYMENT.account)
    packer.pack_uhyper(PAYMENT.nonce)
    packer.pack_string(PAYMENT.asset.encode())
    packer.pack_uhyper(PAYMENT.amount)
    packer.pack_fopaque(32, PAYMENT.destination)
    assert packer.get_buffer() == PAYMENT_HEX == encode(PAYMENT, schema.MESSAGE)


def test_xdrlib3_packer_by_hand_gives_the_order_bytes() -> None:
    packer = xdrlib3.Packer()
    packer.pack_int(schema.MessageType.ORDER_REQUEST)
    packer.pack_hyper(ORDER.message_id)
    packer.pack_fopaque(32, ORDER.account)
    packer.pack_uhyper(ORDER.nonce)
    packer.pack_string(ORDER.asset.encode())
    packer.pack_enum(ORDER.side)
    packer.pack_uhyper(ORDER.amount)
    packer.pack_double(ORDER.price)
    packer.pack_enum(ORDER.time_in_force)
    packer.pack_uhyper(ORDER.client_order_id)
    assert packer.get_buffer() == ORDER_HEX == encode(ORDER, schema.MESSAGE)


def test_xdrlib3_packer_by_hand_gives_the_result_and_optional_bytes() -> None:
    packer = xdrlib3.Packer()
    packer.pack_int(schema.MessageType.RESULT)
    packer.pack_hyper(RESULT.message_id)
    packer.pack_enum(RESULT.status)
    packer.pack_string(RESULT.description.encode())
    assert packer.get_buffer() == RESULT_HEX == encode(RESULT, schema.MESSAGE)

    packer = xdrlib3.Packer()
    packer.pack_uhyper(AUDITOR_RESULT.apex)
    packer.pack_uint(AUDITOR_RESULT.signature.auditor_index)
    packer.pack_fopaque(64, AUDITOR_RESULT.signature.signature)
    packer.pack_bool(True)
    assert AUDITOR_RESULT.tx_signature is not None
    packer.pack_opaque(AUDITOR_RESULT.tx_signature.signer)
    packer.pack_opaque(AUDITOR_RESULT.tx_signature.signature)
    packer.pack_uint(len(AUDITOR_RESULT.rotation_signatures))
    for rotation in AUDITOR_RESULT.rotation_signatures:
        packer.pack_opaque(rotation.signer)
        packer.pack_opaque(rotation.signature)
    assert packer.get_buffer() == AUDITOR_RESULT_HEX == encode(AUDITOR_RESULT)


def test_utf8_string_length_counts_bytes_not_characters() -> None:
    effect = schema.BalanceCreateEffect(asset="é€")  # 2 characters, 2 + 3 = 5 UTF-8 bytes
    assert encode(effect) == hexbytes("00000005", "c3a9 e282ac", "000000")
    assert decode(schema.BalanceCreateEffect, encode(effect)) == effect


def test_negative_int64_timestamp_and_status_enum_values() -> None:
    update = schema.StateUpdate(
        message_id=-(2**63), state=schema.NodeState.STOPPED, apex=0, reason=""
    )
    assert encode(update, schema.MESSAGE) == hexbytes(
        "0000002a",  # MESSAGE discriminant: STATE_UPDATE = 42
        "8000000000000000",  # message_id = -2**63 (smallest int64)
        "00000014",  # state = STOPPED (20)
        "0000000000000000",  # apex = 0
        "00000000",  # reason: empty string
    )
