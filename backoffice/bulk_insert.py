"""Writing many rows at once: PostgreSQL's COPY where it is available, bulk_create elsewhere.

A bulk cancellation writes ten rows per order (cancellation, items, audit entries, outbox rows).
Through bulk_create most of that time is Python building one INSERT with tens of thousands of
placeholders and psycopg quoting each value; COPY streams the values in psycopg's C code. Only
for rows whose primary key the caller doesn't need back (COPY returns none).

Two ways in: `insert_rows` takes unsaved model instances (they keep pk None unless they had
one); `insert_values` takes plain dicts (attname → value, the rest from the fields' defaults),
for rows no one reads back as objects: making a model instance costs more than writing its row.
Either way each value goes through its field's get_db_prep_save, except a value already of the
type the database driver takes as it is (a str for a CharField, an int for an IntegerField, an
aware datetime…), which is what Field.get_db_prep_save would hand back unchanged anyway.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from decimal import Decimal

from django.db import DEFAULT_DB_ALIAS, connections, models
from django.utils import timezone

# Internal types whose get_db_prep_save returns a value of these types unchanged (PostgreSQL).
_PLAIN = {
    "CharField": (str,),
    "TextField": (str,),
    "SlugField": (str,),
    "EmailField": (str,),
    "URLField": (str,),
    "IntegerField": (int,),
    "BigIntegerField": (int,),
    "SmallIntegerField": (int,),
    "PositiveIntegerField": (int,),
    "PositiveBigIntegerField": (int,),
    "PositiveSmallIntegerField": (int,),
    "AutoField": (int,),
    "BigAutoField": (int,),
    "SmallAutoField": (int,),
    "BooleanField": (bool,),
    "DecimalField": (Decimal,),
}

_Prep = Callable[[object], object]


def insert_rows(model: type[models.Model], objs: Iterable[models.Model]) -> int:
    """Insert the (unsaved) objects; returns how many. The caller owns the transaction."""
    objs = list(objs)
    if not objs:
        return 0
    connection = connections[DEFAULT_DB_ALIAS]
    if connection.vendor != "postgresql":
        model.objects.bulk_create(objs)
        return len(objs)
    fields = _copied_fields(model)
    now = timezone.now()
    auto = {field.attname for field in fields if _is_auto_now(field)}
    for obj in objs:
        for attname in auto:  # what pre_save(add=True) does
            setattr(obj, attname, now)
    _copy(model, fields, ([obj.__dict__[field.attname] for field in fields] for obj in objs))
    for obj in objs:
        obj._state.adding, obj._state.db = False, connection.alias
    return len(objs)


def insert_values(model: type[models.Model], rows: Iterable[dict]) -> int:
    """Insert rows given as {attname: value}, every row with the same keys. A field left out
    gets its default (auto_now and auto_now_add: now), evaluated once for all the rows unless
    it is unique (a primary key's callable default is called for each row). Returns how many.
    The caller owns the transaction."""
    rows = list(rows)
    if not rows:
        return 0
    connection = connections[DEFAULT_DB_ALIAS]
    if connection.vendor != "postgresql":
        model.objects.bulk_create(model(**row) for row in rows)
        return len(rows)
    now = timezone.now()
    given, per_row, constant = [], [], []
    for field in _copied_fields(model):
        if field.attname in rows[0]:
            given.append(field)
        elif field.unique and field.has_default() and callable(field.default):
            per_row.append(field)
        else:
            constant.append(field)
    # The columns of a COPY come in any order: the given ones, then the defaults, prepared once.
    tail = [
        field.get_db_prep_save(now if _is_auto_now(field) else field.get_default(), connection)
        for field in constant
    ]
    preps = [_prep(field, connection) for field in given + per_row]
    names = [field.attname for field in given]
    _copy(
        model,
        given + per_row + constant,
        (
            [prep(value) for prep, value in zip(preps, values, strict=True)] + tail
            for values in (
                [row[name] for name in names] + [field.get_default() for field in per_row]
                for row in rows
            )
        ),
        prepared=True,
    )
    return len(rows)


def insert_select(model: type[models.Model], given: list[str], select: str, params: list) -> int:
    """INSERT … SELECT: `select` yields the `given` fields (attnames, in that order); every
    other field gets its default, evaluated once (auto_now and auto_now_add: now). Returns how
    many rows. For rows the database can make from what it has, so their values never travel
    through Python one by one."""
    connection = connections[DEFAULT_DB_ALIAS]
    ops = connection.ops
    now = timezone.now()
    fields = {field.attname: field for field in _copied_fields(model)}
    rest = [field for name, field in fields.items() if name not in given]
    defaults = [
        field.get_db_prep_save(now if _is_auto_now(field) else field.get_default(), connection)
        for field in rest
    ]
    columns = [fields[name] for name in given] + rest
    source_columns = ", ".join(f"source.{ops.quote_name(name)}" for name in given)
    casts = "".join(f", CAST(%s AS {field.db_type(connection)})" for field in rest)
    sql = (
        f"INSERT INTO {ops.quote_name(model._meta.db_table)} "  # noqa: S608 - model names
        f"({', '.join(ops.quote_name(field.column) for field in columns)}) "
        f"SELECT {source_columns}{casts} FROM ({select}) source"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*defaults, *params])  # the outer SELECT list comes first
        return cursor.rowcount


def _copied_fields(model: type[models.Model]) -> list[models.Field]:
    return [
        field
        for field in model._meta.concrete_fields
        # An auto primary key is the database's to fill in; a given one (a CharField id) is ours.
        if not (field.primary_key and isinstance(field, models.AutoField))
    ]


def _is_auto_now(field: models.Field) -> bool:
    return getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False)


def _copy(model, fields, value_rows: Iterable[list], *, prepared: bool = False) -> None:
    """COPY the rows. Each value is prepared here, unless `prepared` says the caller
    did (the rows are then written as they come)."""
    connection = connections[DEFAULT_DB_ALIAS]
    columns = ", ".join(connection.ops.quote_name(field.column) for field in fields)
    table = connection.ops.quote_name(model._meta.db_table)
    with (
        connection.cursor() as cursor,
        cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy,
    ):
        write_row = copy.write_row
        if prepared:
            for values in value_rows:
                write_row(values)
            return
        preps = [_prep(field, connection) for field in fields]
        for values in value_rows:
            write_row([prep(value) for prep, value in zip(preps, values, strict=True)])


def _prep(field: models.Field, connection) -> _Prep:
    """The field's get_db_prep_save, skipped for a value the database takes as it is."""

    def slow(value):
        return field.get_db_prep_save(value, connection)

    target = field.target_field if field.is_relation else field
    internal = target.get_internal_type()
    if internal == "DateTimeField":

        def prep_datetime(value):
            if value is None or (type(value) is datetime and value.tzinfo is not None):
                return value
            return slow(value)

        return prep_datetime
    plain = _PLAIN.get(internal)
    if plain is None:
        return slow

    def prep(value):
        return value if value is None or type(value) in plain else slow(value)

    return prep
