"""Every attention item can be closed: a failed delivery is resolved by a later success, by the
undo that makes it moot (its add never reached the provider), or by staff with a comment
(audited); the attention list and the dashboard count only what still needs someone."""

import pytest
from django.utils import timezone

from cancellations import dashboard
from cancellations.models import AuditEntry
from providers import dispatch, selectors
from providers.base import Outcome
from providers.errors import DeliveryError
from providers.services import resolve_delivery, retry_delivery
from tests.factories import CancellationFactory, DeliveryFactory, UserFactory
from tests.providers.outbox_support import (
    cancel,
    make_provider_fixture,  # noqa: F401 - the fixture
    revoke,
)

pytestmark = pytest.mark.django_db


def attention() -> set[int]:
    return set(selectors.deliveries_needing_attention().values_list("pk", flat=True))


def failed_counts() -> dict[str, int]:
    return {row.provider: row.failed for row in dashboard.deliveries_by_provider()}


def test_staff_resolve_a_failed_delivery_with_a_comment_and_it_is_audited():
    failed = DeliveryFactory(status="failed", provider="rebilly", last_error="HTTP 422")
    lead = UserFactory()

    resolve_delivery(failed, actor=lead, comment="Cancelled it in Rebilly by hand.")

    failed.refresh_from_db()
    assert (failed.status, failed.resolved_by, failed.resolution_comment) == (
        "failed",
        lead,
        "Cancelled it in Rebilly by hand.",
    )
    entry = AuditEntry.objects.get(action="delivery.failure_resolved")
    assert (entry.cancellation_id, entry.actor, entry.comment) == (
        failed.cancellation_id,
        lead,
        "Cancelled it in Rebilly by hand.",
    )
    assert entry.data["lastError"] == "HTTP 422"


def test_a_resolved_failure_no_longer_needs_attention_nor_counts_on_the_dashboard():
    open_one = DeliveryFactory(status="failed", provider="rebilly")
    resolved = DeliveryFactory(status="failed", provider="rebilly")
    resolve_delivery(resolved, actor=UserFactory(), comment="Told them by phone.")

    assert attention() == {open_one.pk}
    assert failed_counts() == {"rebilly": 1}


def test_a_failure_is_resolved_once():
    failed = DeliveryFactory(status="failed")
    resolve_delivery(failed, actor=UserFactory(), comment="Done.")

    with pytest.raises(DeliveryError):
        resolve_delivery(failed, actor=UserFactory(), comment="Done again.")

    assert AuditEntry.objects.filter(action="delivery.failure_resolved").count() == 1


@pytest.mark.parametrize("status", ["pending", "in_flight", "delivered", "skipped"])
def test_only_failures_and_tasks_can_be_resolved(status):
    with pytest.raises(DeliveryError) as refused:
        resolve_delivery(DeliveryFactory(status=status), actor=UserFactory(), comment="Done.")

    assert list(refused.value.message_dict) == ["delivery"]


def test_a_failed_add_of_an_undone_cancellation_is_moot_and_closed_by_the_undo():
    undone = CancellationFactory(status="revoked")
    moot = DeliveryFactory(cancellation=undone, status="failed", provider="rebilly")

    assert moot.is_moot_failure and not moot.is_open_failure
    assert attention() == set()
    assert failed_counts() == {}
    with pytest.raises(DeliveryError):
        resolve_delivery(moot, actor=UserFactory(), comment="Nothing to do.")


def test_a_failed_revoke_still_needs_someone():
    undone = CancellationFactory(status="revoked")
    DeliveryFactory(cancellation=undone, status="delivered", provider="rebilly")
    failed_revoke = DeliveryFactory(
        cancellation=undone, status="failed", provider="rebilly", action="revoke"
    )

    assert failed_revoke.is_open_failure
    assert attention() == {failed_revoke.pk}
    assert failed_counts() == {"rebilly": 1}


def test_an_add_that_fails_after_the_undo_is_moot_too(make_provider):
    alpha = make_provider("alpha")
    alpha.script.extend([Outcome.RETRY, Outcome.FAILED])
    cancellation = cancel()
    dispatch.deliver_due()  # tried, not settled: the revoke waits for it
    revoke(cancellation)
    cancellation.deliveries.filter(action="add").update(next_attempt_at=timezone.now())

    dispatch.deliver_due()

    rows = dict(cancellation.deliveries.values_list("action", "status"))
    assert rows == {"add": "failed", "revoke": "skipped"}
    assert attention() == set()


def test_a_later_success_closes_a_failure(make_provider):
    alpha = make_provider("alpha")
    alpha.script.append(Outcome.FAILED)
    cancellation = cancel()
    dispatch.deliver_due()
    add = cancellation.deliveries.get(provider="alpha")
    assert attention() == {add.pk}

    retry_delivery(add, actor=UserFactory())
    dispatch.deliver_due()

    add.refresh_from_db()
    assert add.status == "delivered"
    assert attention() == set()
    assert failed_counts() == {}


def test_a_new_failure_after_a_resolved_one_needs_someone_again(make_provider):
    alpha = make_provider("alpha")
    alpha.script.extend([Outcome.FAILED, Outcome.FAILED])
    cancellation = cancel()
    dispatch.deliver_due()
    add = cancellation.deliveries.get(provider="alpha")
    resolve_delivery(add, actor=UserFactory(), comment="Looked at it; trying again.")

    retry_delivery(add, actor=UserFactory())
    dispatch.deliver_due()

    add.refresh_from_db()
    assert (add.status, add.resolved_at, add.resolution_comment) == ("failed", None, "")
    assert attention() == {add.pk}


def test_open_staff_tasks_need_attention_and_done_ones_dont():
    open_task = DeliveryFactory(task=True)
    done = DeliveryFactory(task=True)
    resolve_delivery(done, actor=UserFactory(), comment="Changed in Callisto.")

    assert attention() == {open_task.pk}


def test_the_attention_list_is_one_query(django_assert_num_queries):
    DeliveryFactory(status="failed")
    DeliveryFactory(task=True)
    DeliveryFactory(cancellation=CancellationFactory(status="revoked"), status="failed")

    with django_assert_num_queries(1):
        rows = list(selectors.deliveries_needing_attention())

    assert len(rows) == 2
