"""The compiled codec's slow paths agree with its fast paths.

The generated struct writers check the common case of each field inline (an exact `int` in
range, exact `bytes` of the right size, an enum member, a tuple of effects) and hand anything
else to the type's full check. These tests feed the other cases through the same struct and
compare bytes with the common case, or expect the refusal the full check gives.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Any

import pytest

from quanta.core.xdr import schema
from quanta.core.xdr.codec import XdrError, decode, encode

TRADE = schema.TradeEffect(
    order_id=7,
    asset="XLM",
    side=schema.OrderSide.BUY,
    price=10_000_000,
    asset_amount=5,
    quote_amount=5,
    is_new_order=False,
)
PAYMENT = schema.PaymentRequest(1, b"\x01" * 32, 2, "XLM", 3, b"\x02" * 32)
GROUP = schema.EffectsGroup(account=3, account_sequence=4, effects=(TRADE,))


class Small(enum.IntEnum):
    """An IntEnum that is not the field's enum: an int subclass, accepted as its value."""

    SEVEN = 7


def replaced(value: Any, **changes: Any) -> Any:
    """`dataclasses.replace` typed loosely, to put other types in fields."""
    return dataclasses.replace(value, **changes)


def test_int_subclass_in_an_integer_field_encodes_as_the_int() -> None:
    assert encode(replaced(TRADE, order_id=Small.SEVEN)) == encode(TRADE)


def test_plain_int_in_an_enum_field_encodes_as_the_member() -> None:
    assert encode(replaced(TRADE, side=int(schema.OrderSide.BUY))) == encode(TRADE)


def test_list_of_effects_encodes_as_the_tuple() -> None:
    as_list = replaced(GROUP, effects=[TRADE])
    assert encode(as_list) == encode(GROUP)
    assert decode(schema.EffectsGroup, encode(as_list)) == GROUP


def test_int_in_a_double_field_encodes_as_the_float() -> None:
    order = schema.OrderRequest(1, b"\x01" * 32, 2, "XLM", schema.OrderSide.SELL, 3, 1.0, 0)
    assert encode(replaced(order, price=1), schema.MESSAGE) == encode(order, schema.MESSAGE)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("order_id", True),
        ("order_id", -1),
        ("order_id", 2**64),
        ("order_id", 1.0),
        ("side", 99),
        ("side", True),
        ("asset", b"XLM"),
        ("asset", "X" * 13),
        ("is_new_order", 1),
    ],
)
def test_invalid_field_values_are_refused(field: str, value: Any) -> None:
    with pytest.raises(XdrError):
        encode(replaced(TRADE, **{field: value}))
    with pytest.raises(XdrError):
        encode(replaced(GROUP, effects=(replaced(TRADE, **{field: value}),)))


def test_wrong_struct_and_wrong_arm_are_refused() -> None:
    with pytest.raises(XdrError, match="expected Signature"):
        encode(schema.MessageEnvelope(PAYMENT, TRADE))  # type: ignore[arg-type]
    with pytest.raises(XdrError, match="not an arm"):
        encode(replaced(GROUP, effects=(GROUP,)))
    with pytest.raises(XdrError):
        encode(replaced(GROUP, effects=(TRADE,) * 4097))
