"""XDR codec (RFC 4506) for the declarative schema in `schema.py`.

Every wire structure is a frozen dataclass whose fields are annotated with an XDR type
(`Annotated[int, UINT64]`, `Annotated[bytes, FixedOpaque(32)]`, a nested dataclass, a
`Union` of message types...). This module turns those annotations into pack/unpack functions
once per class, using xdrlib3's `Packer`/`Unpacker` for the byte layout (big-endian, 4-byte
alignment, zero padding, length-prefixed variable data, discriminated unions).

Decoding is strict, because the same bytes are hashed and signed on every node: trailing
bytes, non-zero padding, booleans other than 0/1, unknown enum values or union arms,
invalid UTF-8 and any length above its declared maximum are refused with `XdrError`, never
with an unhandled exception.
"""

from __future__ import annotations

import dataclasses
import enum
import typing
from collections.abc import Callable, Mapping
from typing import Any

import xdrlib3

U32_MAX = 2**32 - 1
U64_MAX = 2**64 - 1
I32_MIN, I32_MAX = -(2**31), 2**31 - 1
I64_MIN, I64_MAX = -(2**63), 2**63 - 1


class XdrError(ValueError):
    """Raised when bytes are not a valid encoding of the expected type, or a value cannot be
    encoded (out of range, too long, wrong type)."""


class XdrType:
    """One XDR type: knows how to pack a Python value and how to unpack it strictly."""

    def pack(self, packer: xdrlib3.Packer, value: Any) -> None:
        """Appends the encoding of `value` to `packer`."""
        raise NotImplementedError

    def unpack(self, unpacker: xdrlib3.Unpacker) -> Any:
        """Reads one value from `unpacker`."""
        raise NotImplementedError


class _Integer(XdrType):
    def __init__(self, name: str, low: int, high: int, wide: bool, signed: bool) -> None:
        self.name, self.low, self.high = name, low, high
        self._pack = _integer_packer(wide, signed)
        self._unpack = _integer_unpacker(wide, signed)

    def pack(self, packer: xdrlib3.Packer, value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            raise XdrError(f"{self.name} expects int, got {type(value).__name__}")
        if not self.low <= value <= self.high:
            raise XdrError(f"{self.name} out of range: {value}")
        self._pack(packer, value)

    def unpack(self, unpacker: xdrlib3.Unpacker) -> int:
        return int(self._unpack(unpacker))


def _integer_packer(wide: bool, signed: bool) -> Callable[[xdrlib3.Packer, int], None]:
    packer: Callable[[xdrlib3.Packer, int], None]
    if wide:
        packer = xdrlib3.Packer.pack_hyper if signed else xdrlib3.Packer.pack_uhyper
    else:
        packer = xdrlib3.Packer.pack_int if signed else xdrlib3.Packer.pack_uint
    return packer


def _integer_unpacker(wide: bool, signed: bool) -> Callable[[xdrlib3.Unpacker], int]:
    if wide:
        return xdrlib3.Unpacker.unpack_hyper if signed else xdrlib3.Unpacker.unpack_uhyper
    return xdrlib3.Unpacker.unpack_int if signed else xdrlib3.Unpacker.unpack_uint


UINT32 = _Integer("uint32", 0, U32_MAX, wide=False, signed=False)
INT32 = _Integer("int32", I32_MIN, I32_MAX, wide=False, signed=True)
UINT64 = _Integer("uint64", 0, U64_MAX, wide=True, signed=False)
INT64 = _Integer("int64", I64_MIN, I64_MAX, wide=True, signed=True)


class _Bool(XdrType):
    def pack(self, packer: xdrlib3.Packer, value: Any) -> None:
        if not isinstance(value, bool):
            raise XdrError(f"bool expects bool, got {type(value).__name__}")
        packer.pack_bool(value)

    def unpack(self, unpacker: xdrlib3.Unpacker) -> bool:
        raw = unpacker.unpack_uint()
        if raw > 1:
            raise XdrError(f"bool must be 0 or 1, got {raw}")
        return raw == 1


BOOL = _Bool()


class _Double(XdrType):
    def pack(self, packer: xdrlib3.Packer, value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise XdrError(f"double expects float, got {type(value).__name__}")
        try:
            number = float(value)
        except OverflowError:
            raise XdrError("double out of range: int too large for a double") from None
        packer.pack_double(number)

    def unpack(self, unpacker: xdrlib3.Unpacker) -> float:
        return float(unpacker.unpack_double())


DOUBLE = _Double()


def _read_padded(unpacker: xdrlib3.Unpacker, size: int) -> bytes:
    """Reads `size` bytes plus their zero padding; refuses non-zero padding."""
    start = unpacker.get_position()
    padded = (size + 3) & ~3
    buffer = unpacker.get_buffer()
    if start + padded > len(buffer):
        raise XdrError(f"truncated: need {padded} bytes at offset {start}")
    data = bytes(buffer[start : start + size])
    if any(buffer[start + size : start + padded]):
        raise XdrError(f"non-zero padding at offset {start + size}")
    unpacker.set_position(start + padded)
    return data


def _read_length(unpacker: xdrlib3.Unpacker, maximum: int, what: str) -> int:
    length = int(unpacker.unpack_uint())
    if length > maximum:
        raise XdrError(f"{what} length {length} exceeds maximum {maximum}")
    return length


class FixedOpaque(XdrType):
    """opaque[n]: exactly n bytes (keys, hashes, signatures)."""

    def __init__(self, size: int) -> None:
        self.size = size

    def pack(self, packer: xdrlib3.Packer, value: Any) -> None:
        if not isinstance(value, bytes) or len(value) != self.size:
            raise XdrError(f"opaque[{self.size}] expects {self.size} bytes")
        packer.pack_fopaque(self.size, value)

    def unpack(self, unpacker: xdrlib3.Unpacker) -> bytes:
        return _read_padded(unpacker, self.size)


class VarOpaque(XdrType):
    """opaque<max>: length-prefixed bytes."""

    def __init__(self, maximum: int) -> None:
        self.maximum = maximum

    def pack(self, packer: xdrlib3.Packer, value: Any) -> None:
        if not isinstance(value, bytes) or len(value) > self.maximum:
            raise XdrError(f"opaque<{self.maximum}> expects at most {self.maximum} bytes")
        packer.pack_opaque(value)

    def unpack(self, unpacker: xdrlib3.Unpacker) -> bytes:
        return _read_padded(unpacker, _read_length(unpacker, self.maximum, "opaque"))


class String(XdrType):
    """string<max>: length-prefixed UTF-8 text; the maximum counts encoded bytes."""

    def __init__(self, maximum: int) -> None:
        self.maximum = maximum

    def pack(self, packer: xdrlib3.Packer, value: Any) -> None:
        if not isinstance(value, str):
            raise XdrError(f"string expects str, got {type(value).__name__}")
        data = value.encode("utf-8")
        if len(data) > self.maximum:
            raise XdrError(f"string<{self.maximum}> too long: {len(data)} bytes")
        packer.pack_string(data)

    def unpack(self, unpacker: xdrlib3.Unpacker) -> str:
        data = _read_padded(unpacker, _read_length(unpacker, self.maximum, "string"))
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as error:
            raise XdrError(f"string is not valid UTF-8: {error}") from None


class Array(XdrType):
    """T<max>: a length-prefixed array, decoded as a tuple (frozen messages stay hashable)."""

    def __init__(self, item: XdrType | type, maximum: int) -> None:
        self.item = item
        self.maximum = maximum

    def pack(self, packer: xdrlib3.Packer, value: Any) -> None:
        if not isinstance(value, tuple | list) or len(value) > self.maximum:
            raise XdrError(f"array<{self.maximum}> expects a sequence of at most {self.maximum}")
        item = resolve(self.item)
        packer.pack_uint(len(value))
        for element in value:
            item.pack(packer, element)

    def unpack(self, unpacker: xdrlib3.Unpacker) -> tuple[Any, ...]:
        length = _read_length(unpacker, self.maximum, "array")
        # Each element takes at least 4 bytes, so a length that cannot fit in what is left is
        # refused before any allocation.
        if length * 4 > len(unpacker.get_buffer()) - unpacker.get_position():
            raise XdrError(f"array length {length} exceeds the remaining input")
        item = resolve(self.item)
        return tuple(item.unpack(unpacker) for _ in range(length))


class Optional(XdrType):
    """T *: a bool flag followed by the value when present."""

    def __init__(self, item: XdrType | type) -> None:
        self.item = item

    def pack(self, packer: xdrlib3.Packer, value: Any) -> None:
        packer.pack_bool(value is not None)
        if value is not None:
            resolve(self.item).pack(packer, value)

    def unpack(self, unpacker: xdrlib3.Unpacker) -> Any:
        return resolve(self.item).unpack(unpacker) if BOOL.unpack(unpacker) else None


class Enum(XdrType):
    """An XDR enum backed by an IntEnum; unknown values are refused."""

    def __init__(self, enum_type: type[enum.IntEnum]) -> None:
        self.enum_type = enum_type

    def pack(self, packer: xdrlib3.Packer, value: Any) -> None:
        # `OrderSide(True)` would be SELL: like the integer types, refuse bool and non-ints.
        if isinstance(value, bool) or not isinstance(value, int):
            raise XdrError(f"{self.enum_type.__name__} expects int, got {type(value).__name__}")
        packer.pack_int(int(self.enum_type(value)))

    def unpack(self, unpacker: xdrlib3.Unpacker) -> enum.IntEnum:
        raw = unpacker.unpack_int()
        try:
            return self.enum_type(raw)
        except ValueError:
            raise XdrError(f"unknown {self.enum_type.__name__} value {raw}") from None


class Union(XdrType):
    """A discriminated union: an IntEnum discriminant selects the dataclass of the arm."""

    def __init__(self, name: str, discriminant: type[enum.IntEnum], arms: Mapping[Any, type]):
        self.name = name
        self.discriminant = discriminant
        self.arms: dict[int, type] = {int(key): arm for key, arm in arms.items()}
        self.discriminant_of: dict[type, int] = {arm: key for key, arm in self.arms.items()}
        assert len(self.discriminant_of) == len(self.arms), f"{name}: an arm appears twice"

    def pack(self, packer: xdrlib3.Packer, value: Any) -> None:
        key = self.discriminant_of.get(type(value))
        if key is None:
            raise XdrError(f"{type(value).__name__} is not an arm of {self.name}")
        packer.pack_int(key)
        struct_codec(type(value)).pack(packer, value)

    def unpack(self, unpacker: xdrlib3.Unpacker) -> Any:
        key = unpacker.unpack_int()
        arm = self.arms.get(key)
        if arm is None:
            raise XdrError(f"unknown {self.name} discriminant {key}")
        return struct_codec(arm).unpack(unpacker)

    def __contains__(self, arm: type) -> bool:
        return arm in self.discriminant_of


class Struct(XdrType):
    """A dataclass encoded as its fields in declaration order."""

    def __init__(self, cls: type) -> None:
        self.cls = cls
        self.fields: list[tuple[str, XdrType]] = []

    def pack(self, packer: xdrlib3.Packer, value: Any) -> None:
        if type(value) is not self.cls:
            raise XdrError(f"expected {self.cls.__name__}, got {type(value).__name__}")
        for name, field_type in self.fields:
            field_type.pack(packer, getattr(value, name))

    def unpack(self, unpacker: xdrlib3.Unpacker) -> Any:
        return self.cls(*[field_type.unpack(unpacker) for _, field_type in self.fields])


_STRUCTS: dict[type, Struct] = {}


def struct_codec(cls: type) -> Struct:
    """Returns the codec of a schema dataclass, compiling its field list on first use.

    Compilation is lazy because the schema is recursive (a quanta batch holds quanta that hold
    client envelopes that hold messages), so annotations can only be resolved once every
    class of the schema module exists."""
    codec = _STRUCTS.get(cls)
    if codec is None:
        assert dataclasses.is_dataclass(cls), f"{cls!r} is not a schema dataclass"
        codec = _STRUCTS[cls] = Struct(cls)
        hints = typing.get_type_hints(cls, include_extras=True)
        codec.fields = [(f.name, _field_type(hints[f.name])) for f in dataclasses.fields(cls)]
    return codec


def _field_type(hint: Any) -> XdrType:
    if typing.get_origin(hint) is typing.Annotated:
        for extra in hint.__metadata__:
            if isinstance(extra, XdrType):
                return extra
    if isinstance(hint, type) and issubclass(hint, enum.IntEnum):
        return Enum(hint)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return struct_codec(hint)
    raise TypeError(f"no XDR type declared for annotation {hint!r}")


def resolve(xdr_type: XdrType | type) -> XdrType:
    """Returns the codec for an XDR type or a schema dataclass."""
    return xdr_type if isinstance(xdr_type, XdrType) else struct_codec(xdr_type)


def encode(value: Any, xdr_type: XdrType | type | None = None) -> bytes:
    """Encodes `value` (a schema dataclass unless `xdr_type` names a union or primitive)."""
    packer = xdrlib3.Packer()
    codec = resolve(xdr_type if xdr_type is not None else type(value))
    try:
        codec.pack(packer, value)
    except XdrError:
        raise
    except (TypeError, ValueError, AttributeError, xdrlib3.Error) as error:
        raise XdrError(f"cannot encode {type(value).__name__}: {error}") from None
    return packer.get_buffer()


def decode(xdr_type: XdrType | type, data: bytes) -> Any:
    """Decodes exactly one value of `xdr_type` from `data`; anything malformed is XdrError."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise XdrError("input must be bytes")
    unpacker = xdrlib3.Unpacker(bytes(data))
    codec = resolve(xdr_type)
    try:
        value = codec.unpack(unpacker)
    except XdrError:
        raise
    except (EOFError, xdrlib3.Error, ValueError, TypeError, IndexError) as error:
        raise XdrError(f"malformed input: {error or type(error).__name__}") from None
    except RecursionError:
        raise XdrError("malformed input: nesting too deep") from None
    if unpacker.get_position() != len(data):
        raise XdrError(f"{len(data) - unpacker.get_position()} trailing bytes")
    return value
