"""The reference XDR codec: the schema's types packed and unpacked with xdrlib3.

`codec.py` compiles one Python function per structure for speed (the engine encodes every
quantum, effects group and envelope it hashes). This module is the slow, obvious reading of
the same declarations with xdrlib3's `Packer`/`Unpacker` (RFC 4506: big-endian, 4-byte
alignment, zero padding, length-prefixed variable data, discriminated unions). Tests encode
every schema type both ways and require identical bytes (`test_xdr_reference.py`), so the
wire format is defined by xdrlib3's layout and the fast codec only has to agree with it.
Validation (ranges, maximum lengths, strictness) stays the fast codec's job.
"""

from __future__ import annotations

import enum
from typing import Any

import xdrlib3

from quanta.core.xdr import codec

_INTEGER_PACKERS = {"i": "int", "I": "uint", "q": "hyper", "Q": "uhyper"}


def reference_encode(value: Any, xdr_type: codec.XdrType | type | None = None) -> bytes:
    """Encodes `value` with xdrlib3 (a schema dataclass unless `xdr_type` says otherwise)."""
    packer = xdrlib3.Packer()
    _pack(packer, codec.resolve(value.__class__ if xdr_type is None else xdr_type), value)
    return bytes(packer.get_buffer())


def reference_decode(xdr_type: codec.XdrType | type, data: bytes) -> Any:
    """Decodes one value of `xdr_type` with xdrlib3; raises on trailing bytes."""
    unpacker = xdrlib3.Unpacker(data)
    value = _unpack(unpacker, codec.resolve(xdr_type))
    unpacker.done()
    return value


def _pack(packer: xdrlib3.Packer, xdr_type: codec.XdrType, value: Any) -> None:
    if isinstance(xdr_type, codec.Struct):
        codec.struct_codec(xdr_type.cls)  # Makes sure the field list is resolved.
        for name, field in xdr_type.fields:
            _pack(packer, field, getattr(value, name))
    elif isinstance(xdr_type, codec.Union):
        packer.pack_int(xdr_type.discriminant_of[value.__class__])
        _pack(packer, codec.struct_codec(value.__class__), value)
    elif isinstance(xdr_type, codec.Array):
        packer.pack_uint(len(value))
        for item in value:
            _pack(packer, codec.resolve(xdr_type.item), item)
    elif isinstance(xdr_type, codec.Optional):
        packer.pack_uint(0 if value is None else 1)
        if value is not None:
            _pack(packer, codec.resolve(xdr_type.item), value)
    else:
        _pack_primitive(packer, xdr_type, value)


def _pack_primitive(packer: xdrlib3.Packer, xdr_type: codec.XdrType, value: Any) -> None:
    if isinstance(xdr_type, codec.FixedOpaque):
        packer.pack_fopaque(xdr_type.size, value)
    elif isinstance(xdr_type, codec.VarOpaque):
        packer.pack_opaque(value)
    elif isinstance(xdr_type, codec.String):
        packer.pack_string(value.encode("utf-8"))
    elif isinstance(xdr_type, codec.Enum):
        packer.pack_int(int(value))
    elif xdr_type.fixed_format == "d":
        packer.pack_double(value)
    elif xdr_type.fixed_format == "I" and xdr_type.needs_finish:  # bool
        packer.pack_bool(value)
    else:
        getattr(packer, "pack_" + _INTEGER_PACKERS[str(xdr_type.fixed_format)])(value)


def _unpack(unpacker: xdrlib3.Unpacker, xdr_type: codec.XdrType) -> Any:
    if isinstance(xdr_type, codec.Struct):
        codec.struct_codec(xdr_type.cls)
        values = {name: _unpack(unpacker, field) for name, field in xdr_type.fields}
        return xdr_type.cls(**values)
    if isinstance(xdr_type, codec.Union):
        arm = xdr_type.arms[unpacker.unpack_int()]
        return _unpack(unpacker, codec.struct_codec(arm))
    if isinstance(xdr_type, codec.Array):
        item = codec.resolve(xdr_type.item)
        return tuple(_unpack(unpacker, item) for _ in range(unpacker.unpack_uint()))
    if isinstance(xdr_type, codec.Optional):
        present = unpacker.unpack_uint()
        return _unpack(unpacker, codec.resolve(xdr_type.item)) if present else None
    return _unpack_primitive(unpacker, xdr_type)


def _unpack_primitive(unpacker: xdrlib3.Unpacker, xdr_type: codec.XdrType) -> Any:
    if isinstance(xdr_type, codec.FixedOpaque):
        return bytes(unpacker.unpack_fopaque(xdr_type.size))
    if isinstance(xdr_type, codec.VarOpaque):
        return bytes(unpacker.unpack_opaque())
    if isinstance(xdr_type, codec.String):
        return bytes(unpacker.unpack_string()).decode("utf-8")
    if isinstance(xdr_type, codec.Enum):
        enum_type: type[enum.IntEnum] = xdr_type.enum_type
        return enum_type(unpacker.unpack_int())
    if xdr_type.fixed_format == "d":
        return unpacker.unpack_double()
    if xdr_type.fixed_format == "I" and xdr_type.needs_finish:
        return bool(unpacker.unpack_uint())
    return getattr(unpacker, "unpack_" + _INTEGER_PACKERS[str(xdr_type.fixed_format)])()
