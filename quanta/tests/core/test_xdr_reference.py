"""The fast codec agrees with the xdrlib3 reference codec, byte for byte, on every type.

Goal: the wire format is the RFC 4506 layout as xdrlib3 writes it (`reference.py`); the
compiled codec (`codec.py`) is an optimisation that must never change a byte, for every
dataclass and every union arm of the schema, in both directions.
Method: Hypothesis values from `quanta.tests.strategies` (derived from the schema) are encoded
with both codecs and compared, and each side's bytes are decoded by the other side.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quanta.core.xdr.codec import decode, encode
from quanta.core.xdr.reference import reference_decode, reference_encode
from quanta.core.xdr.schema import Signature
from quanta.tests.strategies import schema_dataclasses, schema_unions, xdr_equal, xdr_values

AGREEMENT_SETTINGS = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
UNION_ARMS = [(name, arm) for name, union in schema_unions().items() for arm in union.arms.values()]


@pytest.mark.parametrize("cls", schema_dataclasses(), ids=lambda cls: cls.__name__)
@AGREEMENT_SETTINGS
@given(data=st.data())
def test_dataclass_bytes_agree_with_xdrlib3(cls: type, data: st.DataObject) -> None:
    value = data.draw(xdr_values(cls), label=cls.__name__)
    fast = encode(value, cls)
    assert reference_encode(value, cls) == fast
    assert xdr_equal(reference_decode(cls, fast), value)
    assert xdr_equal(decode(cls, reference_encode(value, cls)), value)


@pytest.mark.parametrize(
    ("union_name", "arm"), UNION_ARMS, ids=lambda item: getattr(item, "__name__", item)
)
@AGREEMENT_SETTINGS
@given(data=st.data())
def test_union_arm_bytes_agree_with_xdrlib3(
    union_name: str, arm: type, data: st.DataObject
) -> None:
    union = schema_unions()[union_name]
    value = data.draw(xdr_values(arm), label=arm.__name__)
    fast = encode(value, union)
    assert reference_encode(value, union) == fast
    assert xdr_equal(reference_decode(union, fast), value)


def test_reference_refuses_trailing_bytes() -> None:
    value = Signature(signer=bytes(32), signature=bytes(64))
    assert reference_decode(Signature, encode(value)) == value
    with pytest.raises(Exception, match="unextracted"):
        reference_decode(Signature, encode(value) + bytes(4))
