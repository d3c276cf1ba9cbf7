"""backoffice.bulk_insert: rows as plain values, and rows the database makes itself, are the
rows bulk_create would have written (COPY / INSERT … SELECT on PostgreSQL, bulk_create on
SQLite)."""

from __future__ import annotations

import pytest
from django.db import connection

from backoffice.bulk_insert import insert_select, insert_values
from providers.models import Delivery
from tests.factories import CancellationFactory

pytestmark = pytest.mark.django_db


def test_insert_values_writes_the_given_values_and_the_defaults_of_the_rest():
    cancellation = CancellationFactory()

    written = insert_values(
        Delivery,
        [
            {"cancellation_id": cancellation.pk, "provider": "callisto", "action": "add"},
            {"cancellation_id": cancellation.pk, "provider": "rebilly", "action": "add"},
        ],
    )

    assert written == 2
    rows = list(Delivery.objects.filter(cancellation=cancellation).order_by("id"))
    assert [row.provider for row in rows] == ["callisto", "rebilly"]
    for row in rows:
        assert (row.status, row.attempts, row.revision, row.references) == ("pending", 0, 0, {})
        assert row.last_error == ""
        assert row.created_at is not None
        assert row.updated_at is not None
        assert row.next_attempt_at is not None


def test_insert_values_writes_nothing_for_no_rows():
    assert insert_values(Delivery, []) == 0
    assert not Delivery.objects.exists()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="unnest and arrays are PostgreSQL's")
def test_insert_select_fills_what_the_select_does_not_give_with_the_defaults():
    first, second = CancellationFactory(), CancellationFactory()

    written = insert_select(
        Delivery,
        ["cancellation_id", "provider", "action"],
        "SELECT c.id AS cancellation_id, 'js7' AS provider, 'add' AS action "
        "FROM unnest(%s::text[]) WITH ORDINALITY AS c(id, n) ORDER BY c.n",
        [[second.pk, first.pk]],
    )

    assert written == 2
    rows = list(Delivery.objects.order_by("id"))
    assert [row.cancellation_id for row in rows] == [second.pk, first.pk]
    for row in rows:
        assert (row.provider, row.action, row.status, row.attempts) == ("js7", "add", "pending", 0)
        assert (row.references, row.last_error, row.credentials_problem) == ({}, "", False)
        assert row.created_at is not None
