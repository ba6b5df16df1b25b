"""Round trip of every wire structure through the XDR codec.

Goal: for every dataclass of `schema.py` and every arm of every union (`MESSAGE`,
`QUANTUM_BODY`, `EFFECT`, `EFFECTS_INFO` and any union added later), decoding an encoding
gives back the same value, and encoding that decoded value gives back the same bytes (the
bytes are hashed and signed, so they must be canonical).

Method: the structures are discovered by introspecting the schema module, and the count is
checked against the `@schema` classes found by parsing `schema.py` with `ast`, so a new
message is covered without editing this file. Values come from `quanta.tests.strategies`,
which derives them from the codec's compiled field types; equality is NaN-aware.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import struct
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quanta.core.xdr import codec, schema
from quanta.core.xdr.codec import decode, encode
from quanta.tests.strategies import schema_dataclasses, schema_unions, xdr_equal, xdr_values

ROUNDTRIP_SETTINGS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

DATACLASSES = schema_dataclasses()
UNIONS = schema_unions()
UNION_ARMS = [
    (union_name, arm) for union_name, union in UNIONS.items() for arm in union.arms.values()
]


DATACLASS_DECORATORS = {"dataclass", "record"}


def _decorator_name(decorator: ast.expr) -> str:
    """`dataclass`, `dataclass(...)`, `dataclasses.dataclass(...)` and `record` give their
    last name."""
    target = decorator.func if isinstance(decorator, ast.Call) else decorator
    if isinstance(target, ast.Attribute):
        return target.attr
    return target.id if isinstance(target, ast.Name) else ""


def _schema_classes_in_source() -> set[str]:
    """Names of the dataclasses defined in schema.py, read from its source with `ast`."""
    tree = ast.parse(inspect.getsource(schema))
    return {
        node.name
        for node in tree.body
        if isinstance(node, ast.ClassDef)
        and any(_decorator_name(d) in DATACLASS_DECORATORS for d in node.decorator_list)
    }


def test_discovery_covers_every_schema_dataclass() -> None:
    in_source = _schema_classes_in_source()
    discovered = {cls.__name__ for cls in DATACLASSES}
    assert len(in_source) >= 50  # the parse itself found the schema
    assert len(DATACLASSES) >= len(in_source)
    assert in_source <= discovered


def test_discovery_finds_the_four_unions() -> None:
    assert {"MESSAGE", "QUANTUM_BODY", "EFFECT", "EFFECTS_INFO"} <= set(UNIONS)
    assert len(UNION_ARMS) == sum(len(union.arms) for union in UNIONS.values())
    assert len(UNIONS["MESSAGE"].arms) >= 20
    assert len(UNIONS["EFFECT"].arms) == 11


def test_every_union_arm_is_a_schema_dataclass() -> None:
    for union_name, arm in UNION_ARMS:
        assert arm in DATACLASSES, f"{union_name} arm {arm.__name__} is not in schema.py"


def as_any(value: Any) -> Any:
    """Hides a deliberately mistyped field value from the type checker."""
    return value


def _assert_roundtrip(value: Any, xdr_type: codec.XdrType | type) -> bytes:
    data = encode(value, xdr_type)
    assert len(data) % 4 == 0, "XDR encodings are a multiple of 4 bytes"
    decoded = decode(xdr_type, data)
    assert xdr_equal(decoded, value), f"{decoded!r} != {value!r}"
    assert encode(decoded, xdr_type) == data
    return data


@pytest.mark.parametrize("cls", DATACLASSES, ids=lambda cls: cls.__name__)
@ROUNDTRIP_SETTINGS
@given(data=st.data())
def test_dataclass_roundtrip(cls: type, data: st.DataObject) -> None:
    value = data.draw(xdr_values(cls), label=cls.__name__)
    assert type(value) is cls
    encoded = _assert_roundtrip(value, cls)
    # The class is also its own default type: `encode(value)` gives the same bytes.
    assert encode(value) == encoded


@pytest.mark.parametrize(
    ("union_name", "arm"), UNION_ARMS, ids=lambda item: getattr(item, "__name__", item)
)
@ROUNDTRIP_SETTINGS
@given(data=st.data())
def test_union_arm_roundtrip(union_name: str, arm: type, data: st.DataObject) -> None:
    union = UNIONS[union_name]
    value = data.draw(xdr_values(arm), label=arm.__name__)
    encoded = _assert_roundtrip(value, union)
    discriminant = int.from_bytes(encoded[:4], "big", signed=True)
    assert union.arms[discriminant] is arm
    # After the discriminant comes exactly the arm's own encoding.
    assert encoded[4:] == encode(value, arm)


@pytest.mark.parametrize("union_name", sorted(UNIONS))
@ROUNDTRIP_SETTINGS
@given(data=st.data())
def test_union_roundtrip(union_name: str, data: st.DataObject) -> None:
    union = UNIONS[union_name]
    value = data.draw(xdr_values(union), label=union_name)
    assert type(value) in union
    _assert_roundtrip(value, union)


def test_decoded_arrays_are_tuples_and_values_hashable() -> None:
    group = schema.EffectsGroup(
        account=1,
        account_sequence=2,
        effects=as_any([schema.NonceUpdateEffect(nonce=2, prev_nonce=1)]),  # a list is accepted
    )
    decoded = decode(schema.EffectsGroup, encode(group))
    assert decoded.effects == (schema.NonceUpdateEffect(nonce=2, prev_nonce=1),)
    assert isinstance(decoded.effects, tuple)
    assert hash(decoded) == hash(decode(schema.EffectsGroup, encode(group)))


def test_nan_and_signed_zero_prices_keep_their_bits() -> None:
    nan_with_payload = struct.unpack(">d", bytes.fromhex("7ff8000000abcdef"))[0]
    negative_nan = struct.unpack(">d", bytes.fromhex("fff8000000000001"))[0]
    for price in (nan_with_payload, negative_nan, float("inf"), float("-inf"), -0.0, 5e-324):
        order = schema.OrderRequest(
            message_id=1,
            account=b"\x01" * 32,
            nonce=1,
            asset="XLM",
            side=schema.OrderSide.BUY,
            amount=1,
            price=price,
            time_in_force=schema.TimeInForce.GOOD_TILL_EXPIRE,
        )
        data = _assert_roundtrip(order, schema.MESSAGE)
        assert len(data) == 4 + 8 + 32 + 8 + 8 + 4 + 8 + 8 + 4 + 8


def test_enum_fields_decode_to_enum_members() -> None:
    value = schema.StateUpdate(
        message_id=3, state=schema.NodeState.CHASING, apex=9, reason="behind"
    )
    decoded = decode(schema.MESSAGE, encode(value, schema.MESSAGE))
    assert type(decoded.state) is schema.NodeState
    assert decoded.state is schema.NodeState.CHASING


def test_every_dataclass_field_has_a_compiled_xdr_type() -> None:
    for cls in DATACLASSES:
        compiled = codec.struct_codec(cls).fields
        assert [name for name, _ in compiled] == [f.name for f in dataclasses.fields(cls)]
        assert all(isinstance(field_type, codec.XdrType) for _, field_type in compiled)
