"""`U64Field`: the one column type of every unsigned 64-bit integer of the protocol.

Nonces, amounts, apexes, order and withdrawal ids, account ids and sequences are XDR uint64:
a client may choose a nonce of 2^64 - 1, and the engine executes it. PostgreSQL has no
unsigned 64-bit type and its `bigint` stops at 2^63 - 1, so such a value in a `bigint` column
made every snapshot save fail for good. `numeric(20, 0)` holds every uint64 exactly (and
orders them as numbers, so range queries and indexes keep their meaning); a CHECK keeps the
column to the uint64 range, and values come back as `int`, as the engine and the hashes use
them.

Raw writes (`quanta.copy_insert`) pass Python ints straight to the numeric columns: psycopg's
binary COPY takes them losslessly.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.core import validators
from django.db import models
from django.db.backends.base.base import BaseDatabaseWrapper

U64_MAX = 2**64 - 1


class U64Field(models.Field):  # type: ignore[type-arg]
    """An unsigned 64-bit integer, stored losslessly as numeric(20, 0), read back as int."""

    description = "Unsigned 64-bit integer"
    default_validators = [validators.MinValueValidator(0), validators.MaxValueValidator(U64_MAX)]

    def db_type(self, connection: BaseDatabaseWrapper) -> str:
        return "numeric(20, 0)"

    def db_check(self, connection: BaseDatabaseWrapper) -> str:
        assert self.column is not None  # Set once the field is attached to its model.
        column = connection.ops.quote_name(self.column)
        return f"{column} >= 0 AND {column} <= {U64_MAX}"

    def get_prep_value(self, value: Any) -> Any:
        value = super().get_prep_value(value)
        return None if value is None or hasattr(value, "as_sql") else int(value)

    def from_db_value(self, value: Any, expression: Any, connection: BaseDatabaseWrapper) -> Any:
        return None if value is None else int(value)

    def to_python(self, value: Any) -> Any:
        return None if value is None else int(value)

    def formfield(self, **kwargs: Any) -> Any:
        defaults = {"form_class": forms.IntegerField, "min_value": 0, "max_value": U64_MAX}
        return super().formfield(**{**defaults, **kwargs})
