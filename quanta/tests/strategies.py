"""Hypothesis strategies for every wire structure of `quanta.core.xdr.schema`.

Goal: one generator of valid values for ANY schema dataclass, union or primitive XDR type, so
a new message or field is covered by the round-trip and fuzz tests without touching them.

Method: the strategies are derived from what the codec itself compiled, never from a second
hand-written description: `codec.struct_codec(cls).fields` gives each field's `XdrType`, and
each `XdrType` maps to a strategy (integer ranges, bool, any double including NaN and
infinities, exact-size and bounded bytes, text bounded by its UTF-8 size, small arrays,
optionals, enum members, union arms, nested structs).

The schema is recursive (a `QuantaBatch` holds quanta whose `RequestQuantum` holds an envelope
holding any message, a `QuantaBatch` again). Each union crossed adds one to a depth; past
`max_depth`, a union only chooses arms that cannot reach themselves, and arrays/optionals of
such arms stay empty/absent, so every generated value is finite. Arrays are kept small, and
shrink with depth, so a test of hundreds of examples stays fast.

`xdr_equal` compares decoded values NaN-aware (doubles by their bits), because a dataclass
holding a NaN is never `==` to its round-tripped copy.
"""

from __future__ import annotations

import dataclasses
import enum
import struct
from typing import Any

from hypothesis import strategies as st

from quanta.core.xdr import codec
from quanta.core.xdr import schema as schema_module

DEFAULT_MAX_DEPTH = 2
ARRAY_SIZE_MAX = 3
SMALL_BYTES_MAX = 40


# --- introspection ---------------------------------------------------------------------------


def schema_dataclasses() -> list[type]:
    """Every dataclass defined in `schema.py`, in definition order of the module namespace."""
    return [
        value
        for value in vars(schema_module).values()
        if isinstance(value, type)
        and dataclasses.is_dataclass(value)
        and value.__module__ == schema_module.__name__
    ]


def schema_unions() -> dict[str, codec.Union]:
    """Every `Union` object bound at module level in `schema.py`, by its variable name."""
    return {
        name: value for name, value in vars(schema_module).items() if isinstance(value, codec.Union)
    }


def _children(xdr_type: codec.XdrType) -> list[codec.XdrType]:
    """The XDR types directly contained in `xdr_type` (struct fields, union arms, items)."""
    if isinstance(xdr_type, codec.Struct):
        return [field_type for _, field_type in xdr_type.fields]
    if isinstance(xdr_type, codec.Union):
        return [codec.struct_codec(arm) for arm in xdr_type.arms.values()]
    if isinstance(xdr_type, codec.Array | codec.Optional):
        return [codec.resolve(xdr_type.item)]
    return []


def _reachable(start: codec.XdrType) -> set[int]:
    """Ids of every XDR type reachable from `start` in one or more steps."""
    seen: set[int] = set()
    stack = list(_children(start))
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        stack.extend(_children(current))
    return seen


_RECURSIVE: dict[int, bool] = {}


def is_recursive(xdr_type: codec.XdrType | type) -> bool:
    """Whether a value of this type can contain another value of the same type."""
    resolved = codec.resolve(xdr_type)
    cached = _RECURSIVE.get(id(resolved))
    if cached is None:
        cached = _RECURSIVE[id(resolved)] = id(resolved) in _reachable(resolved)
    return cached


# --- primitives ------------------------------------------------------------------------------


def _truncate_utf8(text: str, maximum: int) -> str:
    """Cuts `text` to at most `maximum` UTF-8 bytes without splitting a character."""
    return text.encode("utf-8")[:maximum].decode("utf-8", errors="ignore")


def _fill_utf8(text: str, maximum: int) -> str:
    """Repeats `text` (or "x") and cuts it so its UTF-8 size is as close to `maximum` as the
    last character allows: exercises the declared limit itself."""
    unit = text or "x"
    repeated = unit * (maximum // max(1, len(unit.encode("utf-8"))) + 1)
    return _truncate_utf8(repeated, maximum)


def _string(maximum: int) -> st.SearchStrategy[str]:
    small = st.text(max_size=min(maximum, SMALL_BYTES_MAX)).map(
        lambda text: _truncate_utf8(text, maximum)
    )
    at_limit = st.text(min_size=1, max_size=3).map(lambda text: _fill_utf8(text, maximum))
    return st.one_of(small, at_limit)


def _var_opaque(maximum: int) -> st.SearchStrategy[bytes]:
    small = st.binary(max_size=min(maximum, SMALL_BYTES_MAX))
    # Hypothesis' input buffer is small, so the at-limit value is one byte repeated.
    at_limit = st.integers(0, 255).map(lambda byte: bytes([byte]) * maximum)
    return st.one_of(small, at_limit)


def _primitive(xdr_type: codec.XdrType) -> st.SearchStrategy[Any] | None:
    if isinstance(xdr_type, codec._Integer):
        return st.integers(xdr_type.low, xdr_type.high)
    if xdr_type is codec.BOOL:
        return st.booleans()
    if xdr_type is codec.DOUBLE:
        return st.floats(allow_nan=True, allow_infinity=True)
    if isinstance(xdr_type, codec.FixedOpaque):
        return st.binary(min_size=xdr_type.size, max_size=xdr_type.size)
    if isinstance(xdr_type, codec.VarOpaque):
        return _var_opaque(xdr_type.maximum)
    if isinstance(xdr_type, codec.String):
        return _string(xdr_type.maximum)
    if isinstance(xdr_type, codec.Enum):
        return st.sampled_from(list(xdr_type.enum_type))
    return None


# --- composite -------------------------------------------------------------------------------


_CACHE: dict[tuple[int, int, int], st.SearchStrategy[Any]] = {}


def xdr_values(
    xdr_type: codec.XdrType | type, *, max_depth: int = DEFAULT_MAX_DEPTH, depth: int = 0
) -> st.SearchStrategy[Any]:
    """A strategy of valid values of a schema dataclass, a `Union` or any `XdrType`."""
    resolved = codec.resolve(xdr_type)
    key = (id(resolved), depth, max_depth)
    strategy = _CACHE.get(key)
    if strategy is None:
        strategy = _CACHE[key] = _build(resolved, max_depth, depth)
    return strategy


def _build(xdr_type: codec.XdrType, max_depth: int, depth: int) -> st.SearchStrategy[Any]:
    primitive = _primitive(xdr_type)
    if primitive is not None:
        return primitive
    if isinstance(xdr_type, codec.Struct):
        cls = xdr_type.cls
        # Deferred: the field list of a recursive struct is only walked when drawn.
        return st.deferred(
            lambda: st.builds(
                cls,
                **{
                    name: xdr_values(field_type, max_depth=max_depth, depth=depth)
                    for name, field_type in codec.struct_codec(cls).fields
                },
            )
        )
    if isinstance(xdr_type, codec.Union):
        arms = list(xdr_type.arms.values())
        if depth >= max_depth:
            arms = [arm for arm in arms if not is_recursive(arm)]
        assert arms, f"{xdr_type.name} has no non-recursive arm to stop at"
        return st.one_of([xdr_values(arm, max_depth=max_depth, depth=depth + 1) for arm in arms])
    if isinstance(xdr_type, codec.Array):
        item = codec.resolve(xdr_type.item)
        size_max = min(xdr_type.maximum, max(1, ARRAY_SIZE_MAX - depth))
        if depth >= max_depth and is_recursive(item):
            size_max = 0
        return st.lists(xdr_values(item, max_depth=max_depth, depth=depth), max_size=size_max).map(
            tuple
        )
    if isinstance(xdr_type, codec.Optional):
        item = codec.resolve(xdr_type.item)
        if depth >= max_depth and is_recursive(item):
            return st.none()
        return st.none() | xdr_values(item, max_depth=max_depth, depth=depth)
    raise TypeError(f"no strategy for XDR type {xdr_type!r}")


def messages(max_depth: int = DEFAULT_MAX_DEPTH) -> st.SearchStrategy[Any]:
    """Any message of the `MESSAGE` union."""
    return xdr_values(schema_module.MESSAGE, max_depth=max_depth)


# --- comparison ------------------------------------------------------------------------------


def xdr_equal(left: Any, right: Any) -> bool:
    """Structural equality where doubles compare by their 64 bits (NaN equals the same NaN,
    0.0 differs from -0.0) and enum members must also have the same enum type."""
    if type(left) is not type(right):
        return False
    if isinstance(left, float):
        return struct.pack(">d", left) == struct.pack(">d", right)
    if isinstance(left, tuple):
        return len(left) == len(right) and all(map(xdr_equal, left, right))
    if dataclasses.is_dataclass(left):
        return all(
            xdr_equal(getattr(left, field.name), getattr(right, field.name))
            for field in dataclasses.fields(left)
        )
    if isinstance(left, enum.Enum | int | str | bytes | bool) or left is None:
        return bool(left == right)
    raise TypeError(f"unexpected value type {type(left).__name__}")
