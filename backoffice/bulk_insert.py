"""Writing many rows at once: PostgreSQL's COPY where it is available, bulk_create elsewhere.

A bulk cancellation writes ten rows per order (cancellation, items, audit entries, outbox rows).
Through bulk_create most of that time is Python building one INSERT with tens of thousands of
placeholders and psycopg quoting each value; COPY streams the same values, already adapted by
each field, in psycopg's C code. Only for rows whose primary key the caller doesn't need back
(COPY returns none): the objects keep pk None unless they had one.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import connection, models


def insert_rows(model: type[models.Model], objs: Iterable[models.Model]) -> int:
    """Insert the (unsaved) objects; returns how many. The caller owns the transaction."""
    objs = list(objs)
    if not objs:
        return 0
    if connection.vendor != "postgresql":
        model.objects.bulk_create(objs)
        return len(objs)
    fields = [
        field
        for field in model._meta.concrete_fields
        # An auto primary key is the database's to fill in; a given one (a CharField id) is ours.
        if not (field.primary_key and isinstance(field, models.AutoField))
    ]
    columns = ", ".join(connection.ops.quote_name(field.column) for field in fields)
    table = connection.ops.quote_name(model._meta.db_table)
    with (
        connection.cursor() as cursor,
        cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy,
    ):
        for obj in objs:
            copy.write_row(
                [
                    field.get_db_prep_save(field.pre_save(obj, add=True), connection)
                    for field in fields
                ]
            )
    for obj in objs:
        obj._state.adding, obj._state.db = False, connection.alias
    return len(objs)
