"""Staff retrying a delivery: retry_delivery."""

import pytest
from django.utils import timezone

from cancellations.models import AuditEntry
from providers import dispatch
from providers.base import Outcome
from providers.errors import DeliveryError
from providers.models import Delivery
from providers.services import retry_delivery
from providers.states import DeliveryStatus
from tests.factories import UserFactory
from tests.providers.outbox_support import (
    cancel,
    make_provider_fixture,  # noqa: F401 - the fixture
    revoke,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def failed_add(make_provider):
    alpha = make_provider("alpha")
    alpha.script.append(Outcome.FAILED)
    cancel()
    dispatch.deliver()
    return Delivery.objects.get(action="add")


def test_a_retried_failed_delivery_is_pending_again_with_a_fresh_attempt_budget(failed_add):
    retry_delivery(failed_add, actor=UserFactory())

    failed_add.refresh_from_db()
    assert (failed_add.status, failed_add.attempts) == (DeliveryStatus.PENDING, 0)
    assert failed_add.next_attempt_at <= timezone.now()


def test_a_retry_is_audited_with_who_and_what(failed_add):
    agent = UserFactory()

    retry_delivery(failed_add, actor=agent)

    entry = AuditEntry.objects.get(action="delivery.retried")
    assert (entry.actor, entry.cancellation_id) == (agent, failed_add.cancellation_id)
    assert entry.data["provider"] == "alpha"
    assert entry.data["from"] == DeliveryStatus.FAILED
    assert entry.data["lastError"] == "alpha said failed"


def test_a_retried_delivery_is_sent_after_the_commit(
    failed_add, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        retry_delivery(failed_add, actor=UserFactory())

    failed_add.refresh_from_db()
    assert failed_add.status == DeliveryStatus.DELIVERED


def test_a_delivered_delivery_cannot_be_retried(make_provider):
    make_provider("alpha")
    cancel()
    dispatch.deliver()
    delivered = Delivery.objects.get()

    with pytest.raises(DeliveryError) as error:
        retry_delivery(delivered, actor=UserFactory())

    assert "delivery" in error.value.message_dict
    assert not AuditEntry.objects.filter(action="delivery.retried").exists()


def test_the_add_of_a_revoked_cancellation_cannot_be_retried(failed_add):
    revoke(failed_add.cancellation)

    with pytest.raises(DeliveryError) as error:
        retry_delivery(failed_add, actor=UserFactory())

    assert "revoked" in error.value.message_dict["delivery"][0]
    failed_add.refresh_from_db()
    assert failed_add.status == DeliveryStatus.FAILED
