"""backoffice.bulk_update.update_rows: each row its own values, in one statement."""

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from backoffice.bulk_update import update_rows
from providers.models import Delivery
from tests.providers.outbox_support import (
    cancel,
    make_provider_fixture,  # noqa: F401 - the fixture
)

pytestmark = pytest.mark.django_db


def test_each_row_gets_its_own_values_in_one_statement(make_provider, django_assert_num_queries):
    make_provider("alpha")
    make_provider("beta")
    cancel()
    alpha, beta = Delivery.objects.order_by("provider")
    later = timezone.now() + timedelta(hours=1)
    token = uuid.uuid4()
    alpha.status, alpha.next_attempt_at, alpha.claim_token = "in_flight", later, token
    alpha.references = {"id": "cnl_1", "nested": {"ü": [1, 2]}}
    alpha.last_status_code = 200
    beta.last_error = "Ärger: 'quoted' \"text\""
    beta.claim_token, beta.last_status_code = None, None

    with django_assert_num_queries(1):
        updated = update_rows(
            Delivery,
            [alpha, beta],
            [
                "status",
                "next_attempt_at",
                "claim_token",
                "references",
                "last_status_code",
                "last_error",
            ],
        )

    assert updated == 2
    alpha.refresh_from_db()
    beta.refresh_from_db()
    assert (alpha.status, alpha.next_attempt_at, alpha.claim_token) == ("in_flight", later, token)
    assert alpha.references == {"id": "cnl_1", "nested": {"ü": [1, 2]}}
    assert alpha.last_status_code == 200
    assert (beta.status, beta.claim_token, beta.last_status_code) == ("pending", None, None)
    assert beta.last_error == "Ärger: 'quoted' \"text\""


def test_other_rows_and_fields_are_left_alone(make_provider):
    make_provider("alpha")
    first, second = cancel(), cancel()
    row = Delivery.objects.get(cancellation=first)
    row.last_error, row.status = "changed", "failed"  # status not among the fields written

    update_rows(Delivery, [row], ["last_error"])

    assert Delivery.objects.get(cancellation=first).status == "pending"
    assert Delivery.objects.get(cancellation=first).last_error == "changed"
    assert Delivery.objects.get(cancellation=second).last_error == ""


def test_no_rows_is_no_statement(django_assert_num_queries):
    with django_assert_num_queries(0):
        assert update_rows(Delivery, [], ["status"]) == 0
