"""Staff tasks: what a provider can't carry is a skipped delivery that staff make by hand at the
provider and mark done with a comment (audited). It is never retried."""

import pytest

from cancellations.models import AuditEntry
from providers import dispatch
from providers.base import Outcome, Result
from providers.errors import DeliveryError
from providers.services import resolve_task, retry_delivery
from tests.factories import DeliveryFactory, UserFactory
from tests.providers.outbox_support import (
    cancel,
    make_provider_fixture,  # noqa: F401 - the fixture
)

pytestmark = pytest.mark.django_db


def test_marking_a_task_done_keeps_who_when_and_what_and_audits_it():
    task = DeliveryFactory(task=True)
    lead = UserFactory()

    resolve_task(task, actor=lead, comment="Cancelled order 4711 in Callisto by hand.")

    task.refresh_from_db()
    assert (task.resolved_by, task.resolution_comment) == (
        lead,
        "Cancelled order 4711 in Callisto by hand.",
    )
    assert task.resolved_at is not None and not task.is_open_task
    entry = AuditEntry.objects.get(action="delivery.task_resolved")
    assert (entry.cancellation_id, entry.actor, entry.comment) == (
        task.cancellation_id,
        lead,
        "Cancelled order 4711 in Callisto by hand.",
    )
    assert entry.data["provider"] == "callisto"


def test_a_task_needs_a_comment_saying_what_was_done():
    task = DeliveryFactory(task=True)

    with pytest.raises(DeliveryError) as refused:
        resolve_task(task, actor=UserFactory(), comment="  ")

    assert list(refused.value.message_dict) == ["comment"]
    assert not AuditEntry.objects.exists()


def test_a_task_is_marked_done_once():
    task = DeliveryFactory(task=True)
    resolve_task(task, actor=UserFactory(), comment="Done.")

    with pytest.raises(DeliveryError):
        resolve_task(task, actor=UserFactory(), comment="Done again.")

    assert AuditEntry.objects.filter(action="delivery.task_resolved").count() == 1


def test_only_a_task_can_be_marked_done():
    with pytest.raises(DeliveryError):
        resolve_task(DeliveryFactory(status="skipped"), actor=UserFactory(), comment="Done.")


def test_a_task_cant_be_retried():
    with pytest.raises(DeliveryError):
        retry_delivery(DeliveryFactory(task=True), actor=UserFactory())


def test_a_skip_the_provider_asks_staff_to_mend_becomes_a_task(make_provider):
    alpha = make_provider("alpha")
    alpha.script.append(
        Result(Outcome.SKIPPED, message="Change it by hand.", needs_manual_action=True)
    )
    cancellation = cancel()

    dispatch.deliver_due()

    row = cancellation.deliveries.get(provider="alpha")
    assert (row.status, row.needs_manual_action, row.last_error) == (
        "skipped",
        True,
        "Change it by hand.",
    )


def test_a_plain_skip_is_no_task(make_provider):
    alpha = make_provider("alpha")
    alpha.script.append(Result(Outcome.SKIPPED, message="Nothing to do here."))
    cancellation = cancel()

    dispatch.deliver_due()

    row = cancellation.deliveries.get(provider="alpha")
    assert (row.status, row.needs_manual_action) == ("skipped", False)
