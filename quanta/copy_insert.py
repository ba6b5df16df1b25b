"""`records_insert`: bulk INSERT ... ON CONFLICT DO NOTHING through a binary COPY.

The hot writes of every node (final quanta, their effects groups, the chronicler's trades) go
through it instead of `bulk_create(ignore_conflicts=True)`; see `records_insert` for the
measured difference.
"""

from __future__ import annotations

import functools
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
    model: type[Model], fields: Sequence[str], values: Sequence[tuple[Any, ...]]
) -> None:
    """Inserts `values` (tuples in `fields` order) into the table of `model`, skipping the rows
    a unique constraint already holds: `bulk_create(ignore_conflicts=True)` for hot paths.

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
    plan = insert_plan(model, tuple(fields), alias)
    # The staging table empties at commit: COPY and the move must share one transaction.
    with transaction.atomic(using=alias, savepoint=False), connection.cursor() as cursor:
        cursor.execute(plan.stage)
        with connection.wrap_database_errors, cursor.copy(plan.copy) as copy:
            copy.set_types(plan.types)
            for ordinal, row in enumerate(values):
                copy.write_row((*row, ordinal))
        cursor.execute(plan.move)


@functools.cache
def insert_plan(model: type[Model], fields: tuple[str, ...], alias: str) -> InsertPlan:
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
    stage = f"pg_temp.{quote('insert_' + model._meta.db_table)}"
    columns = [_column(model, name, connection) for name in fields]
    names = ", ".join(quote(column) for column, _ in columns)
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
            " ON CONFLICT DO NOTHING"
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
