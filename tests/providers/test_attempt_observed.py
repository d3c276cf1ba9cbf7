"""What a delivery attempt tells the operator: a log line and the request id that caused it
(#17)."""

import logging

import pytest

from backoffice import request_id
from providers import dispatch
from providers.models import DeliveryAttempt
from tests.providers.outbox_support import (
    cancel,
    make_provider_fixture,  # noqa: F401 - the fixture
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def in_request():
    token = request_id._current.set("req-from-the-api")
    yield "req-from-the-api"
    request_id._current.reset(token)


def test_an_attempt_keeps_the_request_id_its_task_ran_under(make_provider, in_request):
    make_provider("alpha")
    cancel()

    dispatch.deliver()

    assert DeliveryAttempt.objects.get().request_id == in_request


def test_an_attempt_made_by_a_sweep_has_no_request_id(make_provider):
    make_provider("alpha")
    cancel()

    dispatch.deliver_due()

    assert DeliveryAttempt.objects.get().request_id == ""


def test_each_attempt_is_logged_with_provider_outcome_and_duration(make_provider, caplog):
    make_provider("alpha")
    cancellation = cancel()
    caplog.set_level(logging.INFO, logger="providers.outcomes")

    dispatch.deliver()

    (record,) = [r for r in caplog.records if r.name == "providers.outcomes"]
    assert (record.provider, record.outcome, record.duration_ms) == ("alpha", "delivered", 7)
    assert record.delivery_id == cancellation.deliveries.get().pk
