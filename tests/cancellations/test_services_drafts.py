"""Drafts and the status a client asks for (Rebilly's upsert), as the services enforce them."""

from datetime import timedelta

import pytest
from django.utils import timezone

from cancellations.audit import AuditInfo
from cancellations.errors import CancellationError
from cancellations.models import AuditEntry
from cancellations.services import effect, updating, writing
from cancellations.states import CancellationStatus, OrderStatus, check_requested_status
from providers.models import Delivery, ProviderSetting
from tests.factories import OrderFactory, OrderItemFactory

pytestmark = pytest.mark.django_db
API = AuditEntry.Via.API


@pytest.fixture
def rebilly_order(order_with_items):
    order_with_items.external_ids = {"rebilly": "ord_1"}
    order_with_items.save()
    ProviderSetting.objects.create(kind="rebilly", base_url="http://127.0.0.1:9/organizations/o")
    return order_with_items


def draft(order, reason, **kwargs):
    return writing.cancel_order(order, reason=reason, actor=None, via=API, draft=True, **kwargs)


def update(cancellation, reason, **kwargs):
    kwargs.setdefault("order", cancellation.order)
    return updating.update_cancellation(cancellation, reason=reason, actor=None, via=API, **kwargs)


def test_a_draft_is_stored_with_its_plan_and_changes_nothing(rebilly_order, reason):
    cancellation = draft(rebilly_order, reason)

    rebilly_order.refresh_from_db()
    assert cancellation.status == CancellationStatus.DRAFT
    assert cancellation.items.count() == 2
    assert rebilly_order.status == OrderStatus.OPEN
    assert all(item.cancelled_quantity == 0 for item in rebilly_order.items.all())
    assert not Delivery.objects.exists()
    created = AuditEntry.objects.get(action="cancellation.created")
    assert created.data["draft"] is True


def test_a_draft_is_not_made_effective_when_its_time_comes(rebilly_order, reason):
    draft(rebilly_order, reason, churn_time=timezone.now() + timedelta(hours=1))

    completed = effect.complete_due_cancellations(now=timezone.now() + timedelta(days=1))

    assert completed == 0


def test_confirming_a_draft_quotes_it_again_and_takes_effect(rebilly_order, reason):
    cancellation = draft(rebilly_order, reason)
    stored_at = cancellation.canceled_time

    cancellation, changed = update(cancellation, reason)

    rebilly_order.refresh_from_db()
    assert changed
    assert cancellation.status == CancellationStatus.COMPLETED
    assert cancellation.canceled_time > stored_at
    assert cancellation.order_status_before == OrderStatus.OPEN
    assert rebilly_order.status == OrderStatus.CANCELLED
    assert Delivery.objects.count() == 1
    assert AuditEntry.objects.filter(action="cancellation.confirmed").count() == 1


def test_a_draft_whose_order_was_cancelled_meanwhile_cannot_be_confirmed(rebilly_order, reason):
    cancellation = draft(rebilly_order, reason)
    writing.cancel_order(rebilly_order, reason=reason, actor=None, via=API)

    with pytest.raises(CancellationError) as excinfo:
        update(cancellation, reason)

    assert set(excinfo.value.message_dict) == {"order"}
    cancellation.refresh_from_db()
    assert cancellation.status == CancellationStatus.DRAFT


def test_nothing_else_can_become_a_draft_again(rebilly_order, reason):
    later = timezone.now() + timedelta(days=2)
    confirmed = writing.cancel_order(
        rebilly_order, reason=reason, actor=None, via=API, churn_time=later
    )

    with pytest.raises(CancellationError) as excinfo:
        update(confirmed, reason, churn_time=later, draft=True)

    assert set(excinfo.value.message_dict) == {"status"}


@pytest.mark.parametrize(
    ("current", "requested"),
    [
        (None, CancellationStatus.COMPLETED),
        (CancellationStatus.DRAFT, CancellationStatus.COMPLETED),
        (CancellationStatus.CONFIRMED, CancellationStatus.COMPLETED),
        (None, CancellationStatus.REVOKED),
    ],
)
def test_a_client_cannot_ask_for_what_only_storno_sets(current, requested):
    with pytest.raises(CancellationError) as excinfo:
        check_requested_status(current, requested)

    assert set(excinfo.value.message_dict) == {"status"}


@pytest.mark.parametrize(
    ("current", "requested"),
    [
        (None, CancellationStatus.DRAFT),
        (None, CancellationStatus.CONFIRMED),
        (CancellationStatus.COMPLETED, CancellationStatus.COMPLETED),
        (CancellationStatus.CONFIRMED, CancellationStatus.REVOKED),
    ],
)
def test_a_client_may_ask_for_the_rest(current, requested):
    check_requested_status(current, requested)  # raises nothing


def test_upsert_with_revoked_revokes_without_applying_the_plan(rebilly_order, reason):
    cancellation = writing.cancel_order(rebilly_order, reason=reason, actor=None, via=API)

    revoked, created = updating.upsert_cancellation(
        cancellation.pk,
        order=rebilly_order,
        status=CancellationStatus.REVOKED,
        actor=None,
        via=API,
        reason=reason,
        description="not applied",
        audit=AuditInfo(comment="Customer stays"),
    )

    assert not created
    assert revoked.status == CancellationStatus.REVOKED
    assert revoked.revoke_comment == "Customer stays"
    assert revoked.description == ""


def test_upsert_creates_once_then_updates_the_same_id(rebilly_order, reason):
    first, created = updating.upsert_cancellation(
        "cnl-one", order=rebilly_order, actor=None, via=API, reason=reason
    )
    again, created_again = updating.upsert_cancellation(
        "cnl-one", order=rebilly_order, actor=None, via=API, reason=reason, description="later"
    )

    assert (created, created_again) == (True, False)
    assert again.pk == first.pk == "cnl-one"
    assert again.description == "later"


def test_upsert_with_replay_returns_what_the_same_request_made(rebilly_order, reason):
    made, created = updating.upsert_cancellation(
        None, order=rebilly_order, actor=None, via=API, reason=reason, request_fingerprint="f1"
    )

    again, created_again = updating.upsert_cancellation(
        None,
        order=rebilly_order,
        actor=None,
        via=API,
        reason=reason,
        request_fingerprint="f1",
        replay=True,
    )

    assert (created, created_again) == (True, False)
    assert again.pk == made.pk
    assert rebilly_order.cancellations.count() == 1


def test_upsert_refuses_to_move_a_cancellation_to_another_order(rebilly_order, reason):
    other = OrderFactory()
    OrderItemFactory(order=other)
    updating.upsert_cancellation(
        "cnl-here", order=rebilly_order, actor=None, via=API, reason=reason
    )

    with pytest.raises(CancellationError) as excinfo:
        updating.upsert_cancellation("cnl-here", order=other, actor=None, via=API, reason=reason)

    assert set(excinfo.value.message_dict) == {"order"}
