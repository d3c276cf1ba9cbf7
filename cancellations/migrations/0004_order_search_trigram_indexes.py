"""Trigram indexes for the order search on PostgreSQL.

The staff order list and GET /api/v1/orders/?search= find orders whose number, customer name or
e-mail contains the text (icontains: UPPER(column) LIKE UPPER('%text%')). No b-tree index can
answer that, so PostgreSQL read every order: 2.4 s per search at a million orders. A GIN index of
trigrams on UPPER(column) answers it for texts of three characters or more. Other databases get
nothing. pg_trgm ships with PostgreSQL and is a trusted extension: the database owner may create
it; where that is refused the indexes are left out (searching still works, only slower).
"""

import logging

from django.db import DatabaseError, migrations, transaction

logger = logging.getLogger(__name__)

TABLE = "cancellations_order"
COLUMNS = ["number", "customer_name", "customer_email"]


def index_name(column: str) -> str:
    return f"{TABLE}_{column}_upper_trgm"


def create_indexes(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        return
    try:
        with transaction.atomic(using=connection.alias):
            schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except DatabaseError as error:
        logger.warning("pg_trgm not available (%s): the order search stays unindexed.", error)
        return
    quote = connection.ops.quote_name
    for column in COLUMNS:
        # The expression Django's icontains compares, so the planner can use the index.
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {quote(index_name(column))} ON {quote(TABLE)} "
            f"USING gin ((UPPER({quote(column)}::text)) gin_trgm_ops)"
        )


def drop_indexes(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        return
    for column in COLUMNS:
        schema_editor.execute(
            f"DROP INDEX IF EXISTS {connection.ops.quote_name(index_name(column))}"
        )


class Migration(migrations.Migration):
    dependencies = [("cancellations", "0003_bulk_cancellation")]

    operations = [migrations.RunPython(create_indexes, drop_indexes)]
