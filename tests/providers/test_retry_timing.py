"""Retries go when the page says: a retry waiting out its backoff gets a message for its
next_attempt_at, so it doesn't wait for the beat's next sweep (which stays the safety net)."""

from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from providers import dispatch, outbox
from providers.base import Outcome, Result
from providers.models import Delivery
from providers.states import DeliveryStatus
from providers.tasks import deliver_one
from tests.providers.outbox_support import (
    cancel,
    make_provider_fixture,  # noqa: F401 - the fixture
)

pytestmark = pytest.mark.django_db


class RecordingTask:
    """Stands in for deliver_one: writes down what was published and when it should run."""

    def __init__(self):
        self.scheduled = []

    def delay(self, *args):
        self.scheduled.append((args, None))

    def apply_async(self, args, eta=None):
        self.scheduled.append((tuple(args), eta))


@pytest.fixture
def published(monkeypatch):
    task = RecordingTask()
    monkeypatch.setitem(outbox._tasks, "deliver_one", task)
    return task.scheduled


def the_add():
    return Delivery.objects.get(provider="alpha", action="add")


def test_a_retry_is_published_for_the_time_its_next_try_says(
    make_provider, published, django_capture_on_commit_callbacks
):
    alpha = make_provider("alpha")
    alpha.script.append(Outcome.RETRY)
    cancel()

    with (
        override_settings(DELIVERY_BACKOFF_BASE_SECONDS=30),
        django_capture_on_commit_callbacks(execute=True),
    ):
        dispatch.deliver()

    delivery = the_add()
    assert delivery.status == DeliveryStatus.PENDING
    assert published == [((delivery.pk,), delivery.next_attempt_at)]


def test_a_providers_not_before_is_the_time_of_the_message(
    make_provider, published, django_capture_on_commit_callbacks
):
    alpha = make_provider("alpha")
    not_before = timezone.now() + timedelta(minutes=15)
    alpha.script.append(Result(Outcome.RETRY, status_code=429, retry_after=not_before))
    cancel()

    with django_capture_on_commit_callbacks(execute=True):
        dispatch.deliver()

    assert published == [((the_add().pk,), not_before)]


def test_a_retry_hours_away_is_left_to_the_sweep(
    make_provider, published, django_capture_on_commit_callbacks
):
    alpha = make_provider("alpha")
    alpha.script.append(
        Result(Outcome.RETRY, status_code=429, retry_after=timezone.now() + timedelta(hours=3))
    )
    cancel()

    with django_capture_on_commit_callbacks(execute=True):
        dispatch.deliver()

    assert the_add().status == DeliveryStatus.PENDING
    assert published == []


@pytest.mark.parametrize("outcome", [Outcome.DELIVERED, Outcome.FAILED, Outcome.SKIPPED])
def test_a_settled_delivery_schedules_nothing(
    make_provider, published, django_capture_on_commit_callbacks, outcome
):
    alpha = make_provider("alpha")
    alpha.script.append(outcome)
    cancel()

    with django_capture_on_commit_callbacks(execute=True):
        dispatch.deliver()

    assert published == []


def test_the_scheduled_message_sends_the_retry_once_its_time_has_come(make_provider):
    alpha = make_provider("alpha")
    alpha.script.append(Outcome.RETRY)
    cancel()
    dispatch.deliver()
    delivery = the_add()

    assert deliver_one(delivery.pk) is None  # early (a clock ahead): nothing is sent
    Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
    assert deliver_one(delivery.pk) == DeliveryStatus.DELIVERED
    assert len(alpha.calls) == 2


def test_the_first_retry_waits_what_the_readme_promises():
    # README, DELIVERY_BACKOFF_BASE_SECONDS: "first retry after 15–30 s, doubling each time".
    waits = [dispatch.backoff_seconds(1) for _ in range(200)]
    assert min(waits) >= 15
    assert max(waits) <= 30
    assert 30 <= dispatch.backoff_seconds(2) <= 60
