"""`records_insert`: bulk INSERT ... ON CONFLICT through a binary COPY; `records_delete`.

The hot writes of every node (final quanta, their effects groups, the chronicler's trades, and
the accounts, balances and orders of each snapshot) go through them instead of `bulk_create`
and `filter(...__in=...).delete()`; see `records_insert` for the measured difference.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connections, router, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Field, Model

ORDINAL = "_ordinal"
"""Extra column of the staging tables: the position of the row in `values`."""


@dataclass(frozen=True, slots=True)
class InsertPlan:
    """The statements that insert rows of some fields of one model, and the COPY types."""

    stage: str
    copy: str
    move: str
    types: tuple[str, ...]


def records_insert(
    model: type[Model],
    fields: Sequence[str],
    values: Sequence[tuple[Any, ...]],
    *,
    conflict: Sequence[str] = (),
    update: Sequence[str] = (),
) -> None:
    """Inserts `values` (tuples in `fields` order) into the table of `model`, skipping the rows
    a unique constraint already holds: `bulk_create(ignore_conflicts=True)` for hot paths.
    With `update` (and the unique `conflict` fields), a row whose `conflict` fields exist
    updates those fields instead: `bulk_create(update_conflicts=True, ...)`. Each key may then
    appear only once in `values` (PostgreSQL refuses to update a row twice in one statement).

    Model instances and Django's per-field preparation cost most of the CPU of a bulk_create,
    and psycopg's list dumpers most of an `unnest(%s::type[], ...)` INSERT; a binary COPY into
    a staging table of the session, then one INSERT ... SELECT ... ON CONFLICT DO NOTHING, cost
    the least (`quanta_persist`, client CPU per quantum: ~290 µs with bulk_create, ~60 µs
    in batches of 50 and ~25 µs in batches of 500 this way; unnest: ~85 and ~60 µs). No field
    preparation runs: values must already be what the columns take (int, bytes, str, Decimal).
    """
    if not values:
        return
    alias = router.db_for_write(model)
    connection = connections[alias]
    plan = insert_plan(model, tuple(fields), alias, tuple(conflict), tuple(update))
    # The staging table empties at commit: COPY and the move must share one transaction.
    with transaction.atomic(using=alias, savepoint=False), connection.cursor() as cursor:
        cursor.execute(plan.stage)
        with connection.wrap_database_errors, cursor.copy(plan.copy) as copy:
            copy.set_types(plan.types)
            for ordinal, row in enumerate(values):
                copy.write_row((*row, ordinal))
        cursor.execute(plan.move)


def records_delete(model: type[Model], field: str, keys: Sequence[Any]) -> None:
    """Deletes the rows of `model` whose `field` is one of `keys`, in one statement with one
    array parameter (Django's `__in` prepares and binds every key separately, which cost
    more CPU than anything else in a snapshot with thousands of removed orders)."""
    if not keys:
        return
    alias = router.db_for_write(model)
    connection = connections[alias]
    quote = connection.ops.quote_name
    column, type_name = _column(model, field, connection)
    table = quote(model._meta.db_table)
    sql = f"DELETE FROM {table} WHERE {quote(column)} = ANY(%s::{type_name}[])"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, [list(keys)])


@functools.cache
def insert_plan(
    model: type[Model],
    fields: tuple[str, ...],
    alias: str,
    conflict: tuple[str, ...] = (),
    update: tuple[str, ...] = (),
) -> InsertPlan:
    """Returns the statements of `records_insert` for `fields` of `model`.

    Table, column names and types come from the model, so migrations keep them true. The
    staging table is a temporary table of the session, created at its first use (IF NOT
    EXISTS: a no-op afterwards, where ON COMMIT DROP would churn the catalog on every call),
    emptied at each commit and by the move itself (a second insert in the same transaction
    must not see the first one's rows). The move inserts in the order of `values`, as
    bulk_create does, so auto ids keep that order.
    """
    connection = connections[alias]
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    # One staging table per model and field list (their shapes differ).
    shape = hashlib.sha256(",".join(fields).encode()).hexdigest()[:8]
    stage = f"pg_temp.{quote(f'insert_{model._meta.db_table}_{shape}')}"
    columns = [_column(model, name, connection) for name in fields]
    names = ", ".join(quote(column) for column, _ in columns)
    on_conflict = "ON CONFLICT DO NOTHING"
    if update:
        keys = ", ".join(quote(_column(model, name, connection)[0]) for name in conflict)
        sets = ", ".join(
            f"{quote(column)} = EXCLUDED.{quote(column)}"
            for column, _ in (_column(model, name, connection) for name in update)
        )
        on_conflict = f"ON CONFLICT ({keys}) DO UPDATE SET {sets}"
    ordinal = quote(ORDINAL)
    # Only quoted identifiers are formatted into the SQL (S608); values go through COPY.
    return InsertPlan(
        stage=(
            f"CREATE TEMPORARY TABLE IF NOT EXISTS {stage} ON COMMIT DELETE ROWS"  # noqa: S608
            f" AS SELECT {names}, 0 AS {ordinal} FROM {table} WITH NO DATA"
        ),
        copy=f"COPY {stage} ({names}, {ordinal}) FROM STDIN (FORMAT BINARY)",
        move=(
            f"WITH moved AS (DELETE FROM {stage} RETURNING *)"  # noqa: S608
            f" INSERT INTO {table} ({names}) SELECT {names} FROM moved ORDER BY {ordinal}"
            f" {on_conflict}"
        ),
        types=(*(type_name for _, type_name in columns), "int4"),
    )


def _column(model: type[Model], name: str, connection: BaseDatabaseWrapper) -> tuple[str, str]:
    """Returns the column of field `name` and its type as COPY names it: without modifiers
    ("numeric(20, 0)" -> "numeric"), as the staging column has the table's type, modifiers
    included, and applies them (precision, length) on the server as an INSERT would."""
    field = model._meta.get_field(name)
    db_type = field.db_type(connection) if isinstance(field, Field) else None
    assert isinstance(field, Field) and field.column and db_type, (model, name)
    return field.column, db_type.split("(", 1)[0].strip()
