"""Human-readable form of decoded XDR values, for the admin and logs.

Dataclasses become objects tagged with their type name, enums their names, public keys (fields
declared `PublicKey` in the schema) `G...` strkeys, other bytes hex; everything else stays as
it is, so the result is JSON-ready.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import json
import typing
from typing import Any

from quanta.core.keys import encode_public_key
from quanta.core.xdr.schema import PublicKey


@functools.cache
def _key_fields(cls: type) -> frozenset[str]:
    hints = typing.get_type_hints(cls, include_extras=True)
    return frozenset(name for name, hint in hints.items() if hint is PublicKey)


def readable(value: object) -> Any:
    """Returns `value` (a decoded XDR value) as JSON-ready data."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        keys = _key_fields(type(value))
        fields: dict[str, Any] = {"type": type(value).__name__}
        for field in dataclasses.fields(value):
            item = getattr(value, field.name)
            is_key = field.name in keys and isinstance(item, bytes) and len(item) == 32
            fields[field.name] = encode_public_key(item) if is_key else readable(item)
        return fields
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, tuple | list):
        return [readable(item) for item in value]
    return value


def readable_json(value: object) -> str:
    """Returns `value` as indented JSON text."""
    return json.dumps(readable(value), indent=2, sort_keys=False)
