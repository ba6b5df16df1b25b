"""XDR codec (RFC 4506) for the declarative schema in `schema.py`.

Every wire structure is a `record` (an immutable dataclass) whose fields are annotated with an
XDR type (`Annotated[int, UINT64]`, `Annotated[bytes, FixedOpaque(32)]`, a nested dataclass, a
`Union` of message types...). This module turns those annotations into a writer and a reader
per type, compiled once on first use (big-endian, 4-byte alignment, zero padding,
length-prefixed variable data, discriminated unions).

Speed matters here (every quantum, effects group and envelope is encoded at least once on the
sequential engine's path), so a struct's writer and reader are generated as one Python
function per dataclass: consecutive fixed-size fields (integers, enums, bools, doubles,
aligned opaque[n]) are packed and unpacked with ONE precompiled `struct.Struct`, and the
common case of each field is checked inline (an `int` in range, `bytes` of the right size,
a member of the enum); anything else goes through the type's full check, which accepts and
refuses exactly what it always did. The byte layout is xdrlib3's: `reference.py` packs the same
declarations with xdrlib3's Packer, and a property test requires identical bytes for every
schema type (`test_xdr_reference.py`).

Decoding is strict, because the same bytes are hashed and signed on every node: trailing
bytes, non-zero padding, booleans other than 0/1, unknown enum values or union arms,
invalid UTF-8 and any length above its declared maximum are refused with `XdrError`, never
with an unhandled exception.
"""

from __future__ import annotations

import dataclasses
import enum
import struct
import threading
import typing
from collections.abc import Callable, Mapping
from typing import Any

U32_MAX = 2**32 - 1
U64_MAX = 2**64 - 1
I32_MIN, I32_MAX = -(2**31), 2**31 - 1
I64_MIN, I64_MAX = -(2**63), 2**63 - 1

# A writer appends the encoding of a value to a list of byte strings; a reader decodes one
# value from `data` at `position` and returns it with the position after it.
Writer = Callable[[Any, list[bytes]], None]
Reader = Callable[[bytes, int], tuple[Any, int]]

_U32 = struct.Struct(">I")
_I32 = struct.Struct(">i")
_PADDING = (b"", b"\x00\x00\x00", b"\x00\x00", b"\x00")  # indexed by length % 4
_FLAG = (b"\x00\x00\x00\x00", b"\x00\x00\x00\x01")


# Compilation happens on first use, possibly in several threads (Channels runs sync code in
# a thread pool): one lock, re-entrant because compiling a struct compiles its fields.
_COMPILING = threading.RLock()


class XdrError(ValueError):
    """Raised when bytes are not a valid encoding of the expected type, or a value cannot be
    encoded (out of range, too long, wrong type)."""


class XdrType:
    """One XDR type: compiles (once) a writer of Python values and a strict reader."""

    # Set by fixed-size types: `struct` format of the value, its size, a Python expression
    # true for the common valid value (`{v}` is the value), and whether decoded raw values
    # need `finish` (bools, enums).
    fixed_format: str | None = None
    fixed_size = 0
    fast_check = "False"
    fast_class: type | None = None
    needs_finish = False

    def __init__(self) -> None:
        self._writer: Writer | None = None
        self._reader: Reader | None = None

    def writer(self) -> Writer:
        """Returns the writer of this type, compiling it on first use."""
        if self._writer is None:
            with _COMPILING:
                if self._writer is None:
                    # A recursive schema could reach this type again while compiling: it
                    # then gets a forwarder that finds the finished writer at run time.
                    self._writer = lambda value, out: self._compiled_writer()(value, out)
                    try:
                        self._writer = self._compile_writer()
                    except BaseException:
                        self._writer = None
                        raise
        return self._writer

    def _compiled_writer(self) -> Writer:
        with _COMPILING:  # another thread may still be compiling it
            assert self._writer is not None
            return self._writer

    def reader(self) -> Reader:
        """Returns the reader of this type, compiling it on first use."""
        if self._reader is None:
            with _COMPILING:
                if self._reader is None:
                    self._reader = lambda data, position: self._compiled_reader()(data, position)
                    try:
                        self._reader = self._compile_reader()
                    except BaseException:
                        self._reader = None
                        raise
        return self._reader

    def _compiled_reader(self) -> Reader:
        with _COMPILING:
            assert self._reader is not None
            return self._reader

    def coerce(self, value: Any) -> Any:
        """Returns `value` as the fixed-size format packs it; raises XdrError if invalid."""
        raise NotImplementedError

    def finish(self, raw: Any) -> Any:
        """Returns the decoded value of a raw fixed-size field; raises XdrError if invalid."""
        return raw

    def _compile_writer(self) -> Writer:
        return _fixed_writer(self)

    def _compile_reader(self) -> Reader:
        return _fixed_reader(self)


def _fixed_writer(xdr_type: XdrType) -> Writer:
    packer = struct.Struct(">" + str(xdr_type.fixed_format)).pack
    coerce = xdr_type.coerce

    def write(value: Any, out: list[bytes]) -> None:
        out.append(packer(coerce(value)))

    return write


def _fixed_reader(xdr_type: XdrType) -> Reader:
    unpack_from = struct.Struct(">" + str(xdr_type.fixed_format)).unpack_from
    size, finish = xdr_type.fixed_size, xdr_type.finish

    def read(data: bytes, position: int) -> tuple[Any, int]:
        return finish(unpack_from(data, position)[0]), position + size

    return read


class _Integer(XdrType):
    def __init__(self, name: str, low: int, high: int, wide: bool, signed: bool) -> None:
        super().__init__()
        self.name, self.low, self.high = name, low, high
        code = "q" if wide else "i"
        self.fixed_format = code if signed else code.upper()
        self.fixed_size = 8 if wide else 4
        self.fast_check = f"{{v}}.__class__ is int and {low} <= {{v}} <= {high}"

    def coerce(self, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int):
            raise XdrError(f"{self.name} expects int, got {type(value).__name__}")
        if not self.low <= value <= self.high:
            raise XdrError(f"{self.name} out of range: {value}")
        return int(value)


UINT32 = _Integer("uint32", 0, U32_MAX, wide=False, signed=False)
INT32 = _Integer("int32", I32_MIN, I32_MAX, wide=False, signed=True)
UINT64 = _Integer("uint64", 0, U64_MAX, wide=True, signed=False)
INT64 = _Integer("int64", I64_MIN, I64_MAX, wide=True, signed=True)


class _Bool(XdrType):
    fixed_format, fixed_size, fast_check, needs_finish = "I", 4, "{v}.__class__ is bool", True

    def coerce(self, value: Any) -> Any:
        if not isinstance(value, bool):
            raise XdrError(f"bool expects bool, got {type(value).__name__}")
        return int(value)

    def finish(self, raw: Any) -> bool:
        if raw > 1:
            raise XdrError(f"bool must be 0 or 1, got {raw}")
        return bool(raw == 1)


BOOL = _Bool()


class _Double(XdrType):
    fixed_format, fixed_size, fast_check = "d", 8, "{v}.__class__ is float"

    def coerce(self, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise XdrError(f"double expects float, got {type(value).__name__}")
        try:
            return float(value)
        except OverflowError:
            raise XdrError("double out of range: int too large for a double") from None


DOUBLE = _Double()


def _read_padded(data: bytes, position: int, size: int) -> tuple[bytes, int]:
    """Reads `size` bytes plus their zero padding; refuses non-zero padding."""
    end = position + size
    padded = position + ((size + 3) & ~3)
    if padded > len(data):
        raise XdrError(f"truncated: need {padded - position} bytes at offset {position}")
    if padded != end and data[end:padded] != _PADDING[size % 4]:
        raise XdrError(f"non-zero padding at offset {end}")
    return data[position:end], padded


def _read_length(data: bytes, position: int, maximum: int, what: str) -> int:
    (length,) = _U32.unpack_from(data, position)
    if length > maximum:
        raise XdrError(f"{what} length {length} exceeds maximum {maximum}")
    return int(length)


class FixedOpaque(XdrType):
    """opaque[n]: exactly n bytes (keys, hashes, signatures)."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size
        if size % 4 == 0:  # aligned: no padding to check, so it joins fixed-size runs
            self.fixed_format, self.fixed_size = f"{size}s", size
            self.fast_check = f"{{v}}.__class__ is bytes and len({{v}}) == {size}"

    def coerce(self, value: Any) -> Any:
        if not isinstance(value, bytes) or len(value) != self.size:
            raise XdrError(f"opaque[{self.size}] expects {self.size} bytes")
        return value

    def _compile_writer(self) -> Writer:
        if self.fixed_format is not None:
            return _fixed_writer(self)
        coerce, padding = self.coerce, _PADDING[self.size % 4]

        def write(value: Any, out: list[bytes]) -> None:
            out.append(coerce(value))
            out.append(padding)

        return write

    def _compile_reader(self) -> Reader:
        if self.fixed_format is not None:
            return _fixed_reader(self)
        size = self.size
        return lambda data, position: _read_padded(data, position, size)


def _variable_writer(
    to_bytes: Callable[[Any], bytes], maximum: int, too_long: Callable[[int], None]
) -> Writer:
    pack_length = _U32.pack

    def write(value: Any, out: list[bytes]) -> None:
        data = to_bytes(value)
        if len(data) > maximum:
            too_long(len(data))
        out.append(pack_length(len(data)))
        out.append(data)
        out.append(_PADDING[len(data) % 4])

    return write


class VarOpaque(XdrType):
    """opaque<max>: length-prefixed bytes."""

    def __init__(self, maximum: int) -> None:
        super().__init__()
        self.maximum = maximum

    def to_bytes(self, value: Any) -> bytes:
        """Returns the bytes to write for `value`; raises XdrError if it is not bytes."""
        if not isinstance(value, bytes):
            raise XdrError(f"opaque<{self.maximum}> expects at most {self.maximum} bytes")
        return value

    def too_long(self, length: int) -> None:
        """Raises the XdrError of a value that is not bytes or too long."""
        raise XdrError(f"opaque<{self.maximum}> expects at most {self.maximum} bytes")

    def _compile_writer(self) -> Writer:
        return _variable_writer(self.to_bytes, self.maximum, self.too_long)

    def _compile_reader(self) -> Reader:
        maximum = self.maximum

        def read(data: bytes, position: int) -> tuple[Any, int]:
            length = _read_length(data, position, maximum, "opaque")
            return _read_padded(data, position + 4, length)

        return read


class String(XdrType):
    """string<max>: length-prefixed UTF-8 text; the maximum counts encoded bytes."""

    def __init__(self, maximum: int) -> None:
        super().__init__()
        self.maximum = maximum

    def to_bytes(self, value: Any) -> bytes:
        """Returns the UTF-8 bytes to write for `value`; raises XdrError if it is not text."""
        if not isinstance(value, str):
            raise XdrError(f"string expects str, got {type(value).__name__}")
        return value.encode("utf-8")

    def too_long(self, length: int) -> None:
        """Raises the XdrError of a text whose encoding is too long."""
        raise XdrError(f"string<{self.maximum}> too long: {length} bytes")

    def _compile_writer(self) -> Writer:
        return _variable_writer(self.to_bytes, self.maximum, self.too_long)

    def _compile_reader(self) -> Reader:
        maximum = self.maximum

        def read(data: bytes, position: int) -> tuple[Any, int]:
            length = _read_length(data, position, maximum, "string")
            raw, position = _read_padded(data, position + 4, length)
            try:
                return raw.decode("utf-8"), position
            except UnicodeDecodeError as error:
                raise XdrError(f"string is not valid UTF-8: {error}") from None

        return read


class Array(XdrType):
    """T<max>: a length-prefixed array, decoded as a tuple (frozen messages stay hashable)."""

    def __init__(self, item: XdrType | type, maximum: int) -> None:
        super().__init__()
        self.item = item
        self.maximum = maximum

    def _compile_writer(self) -> Writer:
        item = resolve(self.item)
        if isinstance(item, Union):
            return _union_array_writer(self.maximum, item)
        maximum, write_item, pack_length = self.maximum, item.writer(), _U32.pack

        def write(value: Any, out: list[bytes]) -> None:
            if not isinstance(value, tuple | list) or len(value) > maximum:
                raise XdrError(f"array<{maximum}> expects a sequence of at most {maximum}")
            out.append(pack_length(len(value)))
            for element in value:
                write_item(element, out)

        return write

    def _compile_reader(self) -> Reader:
        maximum, read_item = self.maximum, resolve(self.item).reader()

        def read(data: bytes, position: int) -> tuple[Any, int]:
            length = _read_length(data, position, maximum, "array")
            position += 4
            # Each element takes at least 4 bytes, so a length that cannot fit in what is
            # left is refused before any allocation.
            if length * 4 > len(data) - position:
                raise XdrError(f"array length {length} exceeds the remaining input")
            items = []
            for _ in range(length):
                item, position = read_item(data, position)
                items.append(item)
            return tuple(items), position

        return read


def _union_array_writer(maximum: int, union: Union) -> Writer:
    """Returns the writer of an array of union values (effects): the arm lookup is inlined,
    since such arrays are encoded for every effects group hash."""
    table, write_arm, pack_length = union.arm_writers, union.write_arm, _U32.pack

    def write(value: Any, out: list[bytes]) -> None:
        if not isinstance(value, tuple | list) or len(value) > maximum:
            raise XdrError(f"array<{maximum}> expects a sequence of at most {maximum}")
        out.append(pack_length(len(value)))
        for element in value:
            write = table.get(element.__class__)
            if write is None:
                write_arm(element, out)
            else:
                write(element, out)

    return write


class Optional(XdrType):
    """T *: a bool flag followed by the value when present."""

    def __init__(self, item: XdrType | type) -> None:
        super().__init__()
        self.item = item

    def _compile_writer(self) -> Writer:
        write_item = resolve(self.item).writer()
        absent, present = _FLAG

        def write(value: Any, out: list[bytes]) -> None:
            if value is None:
                out.append(absent)
            else:
                out.append(present)
                write_item(value, out)

        return write

    def _compile_reader(self) -> Reader:
        read_item, read_flag = resolve(self.item).reader(), BOOL.reader()

        def read(data: bytes, position: int) -> tuple[Any, int]:
            flag, position = read_flag(data, position)
            return read_item(data, position) if flag else (None, position)

        return read


class Enum(XdrType):
    """An XDR enum backed by an IntEnum; unknown values are refused."""

    fixed_format, fixed_size, needs_finish = "i", 4, True

    def __init__(self, enum_type: type[enum.IntEnum]) -> None:
        super().__init__()
        self.enum_type = enum_type
        self.members: dict[int, enum.IntEnum] = {int(member): member for member in enum_type}
        self.fast_check, self.fast_class = "{v}.__class__ is {t}", enum_type

    def coerce(self, value: Any) -> Any:
        # `OrderSide(True)` would be SELL: like the integer types, refuse bool and non-ints.
        if isinstance(value, bool) or not isinstance(value, int):
            raise XdrError(f"{self.enum_type.__name__} expects int, got {type(value).__name__}")
        try:
            return int(self.enum_type(value))
        except ValueError:
            raise XdrError(f"unknown {self.enum_type.__name__} value {value}") from None

    def finish(self, raw: Any) -> enum.IntEnum:
        member = self.members.get(raw)
        if member is None:
            raise XdrError(f"unknown {self.enum_type.__name__} value {raw}")
        return member


class Union(XdrType):
    """A discriminated union: an IntEnum discriminant selects the dataclass of the arm."""

    def __init__(self, name: str, discriminant: type[enum.IntEnum], arms: Mapping[Any, type]):
        super().__init__()
        self.name = name
        self.discriminant = discriminant
        self.arms: dict[int, type] = {int(key): arm for key, arm in arms.items()}
        self.discriminant_of: dict[type, int] = {arm: key for key, arm in self.arms.items()}
        assert len(self.discriminant_of) == len(self.arms), f"{name}: an arm appears twice"
        # Filled on first use, not at compile time: the schema is recursive through unions,
        # so compiling the arms eagerly would meet the structs being compiled.
        self.arm_writers: dict[type, Writer] = {}
        self._arm_readers: dict[int, Reader] = {}

    def write_arm(self, value: Any, out: list[bytes]) -> None:
        """Writes discriminant and value, compiling the arm writers on first use."""
        if not self.arm_writers:
            with _COMPILING:
                # Filled in one step: a table that is not empty is complete.
                writers = {
                    arm: struct_codec(arm).tagged_writer(key)
                    for arm, key in self.discriminant_of.items()
                }
                self.arm_writers.update(writers)
        write = self.arm_writers.get(value.__class__)
        if write is None:
            raise XdrError(f"{type(value).__name__} is not an arm of {self.name}")
        write(value, out)

    def _compile_writer(self) -> Writer:
        table, write_arm = self.arm_writers, self.write_arm

        def write(value: Any, out: list[bytes]) -> None:
            write = table.get(value.__class__)
            if write is None:
                write_arm(value, out)
            else:
                write(value, out)

        return write

    def read_arm(self, data: bytes, position: int) -> tuple[Any, int]:
        """Reads discriminant and value, compiling the arm readers on first use."""
        if not self._arm_readers:
            with _COMPILING:
                readers = {key: struct_codec(arm).reader() for key, arm in self.arms.items()}
                self._arm_readers.update(readers)
        (key,) = _I32.unpack_from(data, position)
        read = self._arm_readers.get(key)
        if read is None:
            raise XdrError(f"unknown {self.name} discriminant {key}")
        return read(data, position + 4)

    def _compile_reader(self) -> Reader:
        table, read_arm, unpack_from = self._arm_readers, self.read_arm, _I32.unpack_from

        def read(data: bytes, position: int) -> tuple[Any, int]:
            read = table.get(unpack_from(data, position)[0])
            if read is None:
                return read_arm(data, position)
            return read(data, position + 4)

        return read

    def __contains__(self, arm: type) -> bool:
        return arm in self.discriminant_of


class Struct(XdrType):
    """A dataclass encoded as its fields in declaration order."""

    def __init__(self, cls: type) -> None:
        super().__init__()
        self.cls = cls
        self.fields: list[tuple[str, XdrType]] = []

    def _compile_writer(self) -> Writer:
        return typing.cast(Writer, _writer_source(self, None).compile("write"))

    def tagged_writer(self, key: int) -> Writer:
        """Returns a writer that puts the union discriminant `key` first (for union arms: the
        caller has matched the class, and the key joins the first fixed-size run)."""
        return typing.cast(Writer, _writer_source(self, key).compile("write"))

    def _compile_reader(self) -> Reader:
        return typing.cast(Reader, _reader_source(self).compile("read"))


class _Source:
    """Python source being generated, with the objects it names."""

    def __init__(self, cls: type) -> None:
        self.lines: list[str] = []
        self.names: dict[str, Any] = {"cls": cls, "XdrError": XdrError, "PADDING": _PADDING}
        self.formats: list[str] = []  # the pending fixed-size run: struct codes and values
        self.values: list[str] = []
        self.count = 0

    def bind(self, value: Any) -> str:
        """Returns a name under which the generated code sees `value`."""
        name = f"n{len(self.names)}"
        self.names[name] = value
        return name

    def add(self, line: str) -> None:
        """Appends one line of the function body."""
        self.lines.append("    " + line)

    def variable(self) -> str:
        """Returns a fresh local variable name."""
        self.count += 1
        return f"v{self.count}"

    def flush(self, indent: str = "") -> None:
        """Emits the pack of the pending fixed-size run, if any."""
        if self.formats:
            packer = self.bind(struct.Struct(">" + "".join(self.formats)).pack)
            self.add(f"{indent}out.append({packer}({', '.join(self.values)}))")
            self.formats, self.values = [], []

    def compile(self, name: str) -> Any:
        """Compiles the generated function and returns it."""
        exec("\n".join(self.lines), self.names)  # noqa: S102 - our own generated source
        return self.names[name]


def _writer_source(codec: Struct, key: int | None) -> _Source:
    source = _Source(codec.cls)
    source.lines.append("def write(value, out):")
    if key is None:
        _write_struct(source, codec, "value")
    else:  # a union arm: the union matched the class already
        source.formats, source.values = ["i"], [str(key)]
        _write_fields(source, codec, "value")
    source.flush()
    source.add("return None")
    return source


def _write_struct(source: _Source, codec: Struct, expression: str) -> None:
    """Checks the class of a struct value, then writes its fields inline (nested structs
    too, so a run of fixed-size fields continues across them)."""
    cls = source.bind(codec.cls)
    source.add(f"if {expression}.__class__ is not {cls}:")
    got = f"type({expression}).__name__"
    source.add(f"    raise XdrError(f'expected {{{cls}.__name__}}, got {{{got}}}')")
    _write_fields(source, codec, expression)


def _write_fields(source: _Source, codec: Struct, expression: str) -> None:
    for name, field_type in codec.fields:
        variable = source.variable()
        if field_type.fixed_format is not None:
            bound = source.bind(field_type.fast_class) if field_type.fast_class else ""
            check = field_type.fast_check.format(v=variable, t=bound)
            source.add(f"{variable} = {expression}.{name}")
            source.add(f"if not ({check}):")
            source.add(f"    {variable} = {source.bind(field_type.coerce)}({variable})")
            source.formats.append(field_type.fixed_format)
            source.values.append(variable)
        elif isinstance(field_type, String | VarOpaque):
            _write_variable(source, variable, f"{expression}.{name}", field_type)
        elif isinstance(field_type, Struct):
            source.add(f"{variable} = {expression}.{name}")
            _write_struct(source, field_type, variable)
        elif isinstance(field_type, Array) and isinstance(resolve(field_type.item), Union):
            _write_union_array(source, variable, f"{expression}.{name}", field_type)
        else:
            source.flush()
            source.add(f"{source.bind(field_type.writer())}({expression}.{name}, out)")


def _write_union_array(source: _Source, variable: str, expression: str, field: Array) -> None:
    """Writes an array of union values (the effects of a group) with the arm lookup inline."""
    union = resolve(field.item)
    assert isinstance(union, Union)
    source.add(f"{variable} = {expression}")
    source.add(f"if {variable}.__class__ is not tuple or len({variable}) > {field.maximum}:")
    pending = list(source.formats), list(source.values)
    source.flush(indent="    ")
    source.add(f"    {source.bind(field.writer())}({variable}, out)")
    source.formats, source.values = pending
    source.add("else:")
    source.formats.append("I")
    source.values.append(f"len({variable})")
    source.flush(indent="    ")
    table, write_arm = source.bind(union.arm_writers), source.bind(union.write_arm)
    source.add(f"    for item in {variable}:")
    source.add(f"        write = {table}.get(item.__class__)")
    source.add("        if write is None:")
    source.add(f"            {write_arm}(item, out)")
    source.add("        else:")
    source.add("            write(item, out)")


def _write_variable(source: _Source, variable: str, expression: str, field: XdrType) -> None:
    """Writes a string or opaque<max> field: its length joins the pending fixed-size run."""
    assert isinstance(field, String | VarOpaque)
    fast = "str" if isinstance(field, String) else "bytes"
    source.add(f"{variable} = {expression}")
    source.add(f"if {variable}.__class__ is {fast}:")
    source.add(f"    {variable} = {variable}.encode()" if fast == "str" else "    pass")
    source.add("else:")
    source.add(f"    {variable} = {source.bind(field.to_bytes)}({variable})")
    length = f"{variable}_length"
    source.add(f"{length} = len({variable})")
    source.add(f"if {length} > {field.maximum}:")
    source.add(f"    {source.bind(field.too_long)}({length})")
    source.formats.append("I")
    source.values.append(length)
    source.flush()
    source.add(f"out.append({variable})")
    source.add(f"if {length} & 3:")
    source.add(f"    out.append(PADDING[{length} & 3])")


def _reader_source(codec: Struct) -> _Source:
    source = _Source(codec.cls)
    source.lines.append("def read(data, position):")
    fields = codec.fields
    index = 0
    while index < len(fields):
        field_type = fields[index][1]
        if field_type.fixed_format is None:
            reader = source.bind(field_type.reader())
            source.add(f"f{index}, position = {reader}(data, position)")
            index += 1
            continue
        run = []
        while index < len(fields) and fields[index][1].fixed_format is not None:
            run.append(index)
            index += 1
        unpack = source.bind(struct.Struct(">" + "".join(_formats(fields, run))).unpack_from)
        source.add(f"{''.join(f'f{i}, ' for i in run)}= {unpack}(data, position)")
        source.add(f"position += {sum(fields[i][1].fixed_size for i in run)}")
        for i in run:
            if fields[i][1].needs_finish:
                source.add(f"f{i} = {source.bind(fields[i][1].finish)}(f{i})")
    source.add(f"return cls({''.join(f'f{i}, ' for i in range(len(fields)))}), position")
    return source


def _formats(fields: list[tuple[str, XdrType]], run: list[int]) -> list[str]:
    return [str(fields[i][1].fixed_format) for i in run]


_STRUCTS: dict[type, Struct] = {}


def struct_codec(cls: type) -> Struct:
    """Returns the codec of a schema dataclass, compiling its field list on first use.

    Compilation is lazy because the schema is recursive (a quanta batch holds quanta that hold
    client envelopes that hold messages), so annotations can only be resolved once every
    class of the schema module exists."""
    codec = _STRUCTS.get(cls)
    if codec is None:
        assert dataclasses.is_dataclass(cls), f"{cls!r} is not a schema dataclass"
        with _COMPILING:
            codec = _STRUCTS.get(cls)
            if codec is None:
                codec = Struct(cls)
                hints = typing.get_type_hints(cls, include_extras=True)
                fields = dataclasses.fields(cls)
                codec.fields = [(f.name, _field_type(hints[f.name])) for f in fields]
                # Registered once complete (a dataclass holds itself only through a union,
                # array or optional, which resolve later), so no thread sees it half-built.
                _STRUCTS[cls] = codec
    return codec


_ENUMS: dict[type, Enum] = {}


def _field_type(hint: Any) -> XdrType:
    if typing.get_origin(hint) is typing.Annotated:
        for extra in hint.__metadata__:
            if isinstance(extra, XdrType):
                return extra
    if isinstance(hint, type) and issubclass(hint, enum.IntEnum):
        return _ENUMS.setdefault(hint, Enum(hint))
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return struct_codec(hint)
    raise TypeError(f"no XDR type declared for annotation {hint!r}")


def resolve(xdr_type: XdrType | type) -> XdrType:
    """Returns the codec for an XDR type or a schema dataclass."""
    return xdr_type if isinstance(xdr_type, XdrType) else struct_codec(xdr_type)


_WRITERS: dict[Any, Writer] = {}


def encode(value: Any, xdr_type: XdrType | type | None = None) -> bytes:
    """Encodes `value` (a schema dataclass unless `xdr_type` names a union or primitive)."""
    out: list[bytes] = []
    key = value.__class__ if xdr_type is None else xdr_type
    write = _WRITERS.get(key)
    if write is None:
        write = _WRITERS[key] = resolve(key).writer()
    try:
        write(value, out)
    except XdrError:
        raise
    except (TypeError, ValueError, AttributeError, struct.error) as error:
        raise XdrError(f"cannot encode {type(value).__name__}: {error}") from None
    return b"".join(out)


def decode(xdr_type: XdrType | type, data: bytes) -> Any:
    """Decodes exactly one value of `xdr_type` from `data`; anything malformed is XdrError."""
    buffer = _input_bytes(data)
    value, position = _read(resolve(xdr_type), buffer)
    if position != len(buffer):
        raise XdrError(f"{len(buffer) - position} trailing bytes")
    return value


def decode_prefix(xdr_type: XdrType | type, data: bytes) -> tuple[Any, int]:
    """Decodes one value of `xdr_type` from the start of `data`, as strictly as `decode`, and
    returns it with the number of bytes it took: what follows is the caller's to judge (a
    server frame is a Message union followed by nothing or by a signature)."""
    buffer = _input_bytes(data)
    value, position = _read(resolve(xdr_type), buffer)
    if position > len(buffer):  # Readers refuse truncation; this keeps a slip from passing.
        raise XdrError(f"truncated: {position - len(buffer)} bytes missing")
    return value, position


def _input_bytes(data: bytes) -> bytes:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise XdrError("input must be bytes")
    return bytes(data)


def _read(codec: XdrType, buffer: bytes) -> tuple[Any, int]:
    try:
        value, position = codec.reader()(buffer, 0)
    except XdrError:
        raise
    except (struct.error, ValueError, TypeError, IndexError) as error:
        raise XdrError(f"malformed input: {error or type(error).__name__}") from None
    except RecursionError:
        raise XdrError("malformed input: nesting too deep") from None
    return value, position
