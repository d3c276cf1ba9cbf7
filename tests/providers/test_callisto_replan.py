"""A re-planned cancellation reaches Callisto only as the contract shows it: a Delete of the
cancellation Callisto holds (its old CancelDate), then an Add of the new plan. Whether the real
Callisto refuses or replaces an Add over an existing cancellation is unknown
(docs/contracts/callisto/GUESSES.md), so every test runs against the fake in both modes."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from cancellations.models import AuditEntry
from cancellations.services import updating, writing
from providers import dispatch
from providers.base import Action, Outcome, ProviderConfig
from providers.callisto import DELIVERED, CallistoAdapter
from providers.fakes.callisto import CallistoFake
from providers.models import Delivery, ProviderSetting
from providers.states import DeliveryStatus
from tests.factories import (
    CancellationFactory,
    CancellationReasonFactory,
    OrderFactory,
    OrderItemFactory,
)

SALESFORCE_ID = "005000000000001AAA"
ZONE = ZoneInfo("Europe/Berlin")


@pytest.fixture(scope="module")
def server():
    with CallistoFake(known_ids={4711}) as running:
        yield running


@pytest.fixture(params=["refuse", "replace"])
def fake(server, request):
    server.reset()
    server.known_ids = {4711}
    server.existing_add = request.param
    return server


def adapter_for(fake):
    config = ProviderConfig(
        kind="callisto",
        base_url=fake.url,
        username=fake.username,
        password=fake.password,
        timeout=2.0,
    )
    return CallistoAdapter(config)


@pytest.fixture
def cancellation(db):
    return CancellationFactory(
        order=OrderFactory(external_ids={"callisto": "4711"}),
        reason__subject="Zu teuer",
        churn_time=datetime(2030, 3, 1, 10, tzinfo=UTC),
        canceled_time=datetime(2030, 2, 20, 10, tzinfo=UTC),
        external_user_id=SALESFORCE_ID,
    )


def delivered_then_moved(adapter, cancellation):
    """Deliver the add, then move the plan to 1 April: the references an update starts from."""
    first = adapter.deliver(cancellation, Action.ADD)
    cancellation.churn_time = datetime(2030, 4, 1, 10, tzinfo=UTC)
    return first.references


def test_a_delivered_add_stores_what_callisto_now_holds(cancellation, fake):
    result = adapter_for(fake).deliver(cancellation, Action.ADD)

    assert result.references == {
        DELIVERED: {
            "Id": 4711,
            "CancelDate": "2030-03-01",
            "CancelTimestamp": "2030-02-20 11:00:00",
            "CancelReason": "Zu teuer",
            "UserId": SALESFORCE_ID,
        }
    }


def test_a_new_date_is_a_delete_of_the_old_one_then_an_add(cancellation, fake):
    adapter = adapter_for(fake)
    references = delivered_then_moved(adapter, cancellation)

    result = adapter.deliver_again(cancellation, references)

    delete, add = fake.received[-2:]
    assert result.outcome == Outcome.DELIVERED
    assert (delete.method, delete.json()["Action"]) == ("DELETE", "Delete")
    assert delete.json()["CancelDate"] == "2030-03-01"
    assert (add.method, add.json()["Action"], add.json()["CancelDate"]) == (
        "PUT",
        "Add",
        "2030-04-01",
    )
    assert fake.effects(4711) == ["Add", "Delete", "Add"]
    assert fake.orders[4711]["CancelDate"] == "2030-04-01"
    assert result.references[DELIVERED]["CancelDate"] == "2030-04-01"
    assert result.request_excerpt.startswith("DELETE ")
    assert "\n\nPUT " in result.request_excerpt


def test_an_unchanged_plan_sends_nothing(cancellation, fake):
    adapter = adapter_for(fake)
    references = adapter.deliver(cancellation, Action.ADD).references

    result = adapter.deliver_again(cancellation, references)

    assert result.outcome == Outcome.DELIVERED
    assert fake.received_count(4711) == 1


def test_a_new_reason_on_the_same_day_is_a_delete_and_an_add_too(cancellation, fake):
    adapter = adapter_for(fake)
    references = adapter.deliver(cancellation, Action.ADD).references
    cancellation.reason = CancellationReasonFactory(subject="Lieferung zu spät")

    result = adapter.deliver_again(cancellation, references)

    assert result.outcome == Outcome.DELIVERED
    assert fake.effects(4711) == ["Add", "Delete", "Add"]
    assert fake.orders[4711]["CancelReason"] == "Lieferung zu spät"


def fail_second_request(monkeypatch, fake, status=503):
    """Let the next request through and answer the one after it with `status`."""
    original, seen = fake.handle_api, []

    def handle(request):
        seen.append(request.method)
        if len(seen) == 2:
            return fake.error_response(status, "Injected fault.")
        return original(request)

    monkeypatch.setattr(fake, "handle_api", handle)


def test_an_add_that_fails_after_the_delete_is_retried_as_an_add_only(
    cancellation, fake, monkeypatch
):
    adapter = adapter_for(fake)
    references = delivered_then_moved(adapter, cancellation)
    fail_second_request(monkeypatch, fake)

    result = adapter.deliver_again(cancellation, references)

    assert result.outcome == Outcome.RETRY
    assert result.references == {DELIVERED: None}
    assert "removed" in result.message
    assert not fake.is_cancelled(4711)
    monkeypatch.undo()

    again = adapter.deliver_again(cancellation, result.references)

    assert again.outcome == Outcome.DELIVERED
    assert fake.received[-1].method == "PUT"
    assert fake.effects(4711) == ["Add", "Delete", "Add"]
    assert fake.orders[4711]["CancelDate"] == "2030-04-01"


def test_a_delete_whose_answer_was_lost_is_repeated_before_the_add(cancellation, fake):
    adapter = adapter_for(fake)
    references = delivered_then_moved(adapter, cancellation)
    fake.drop_next(1)  # Callisto deletes, the answer is lost

    first = adapter.deliver_again(cancellation, references)
    second = adapter.deliver_again(cancellation, {**references, **first.references})

    assert first.outcome == Outcome.RETRY
    assert second.outcome == Outcome.DELIVERED
    assert fake.effects(4711) == ["Add", "Delete", "Add"]
    assert fake.orders[4711]["CancelDate"] == "2030-04-01"


def test_a_refused_delete_fails_and_adds_nothing(cancellation, fake):
    adapter = adapter_for(fake)
    references = delivered_then_moved(adapter, cancellation)
    fake.fail_next(1, status=403)

    result = adapter.deliver_again(cancellation, references)

    assert result.outcome == Outcome.FAILED
    assert result.credentials_problem
    assert "2030-03-01" in result.message
    assert fake.orders[4711]["CancelDate"] == "2030-03-01"
    assert fake.received[-1].method == "DELETE"


def test_a_delete_answered_404_counts_as_gone_and_the_add_follows(cancellation, fake):
    adapter = adapter_for(fake)
    references = adapter.deliver(cancellation, Action.ADD).references
    adapter.deliver(cancellation, Action.REVOKE)  # removed at Callisto by someone else
    cancellation.churn_time = datetime(2030, 4, 1, 10, tzinfo=UTC)
    fake.fail_next(1, status=404)  # the answer to a Delete of nothing may be 404 (GUESSES.md)

    result = adapter.deliver_again(cancellation, references)

    assert result.outcome == Outcome.DELIVERED
    assert fake.received[-1].json()["CancelDate"] == "2030-04-01"


def test_an_add_over_another_cancellation_is_delivered_or_fails_with_callistos_words(
    cancellation, fake
):
    adapter = adapter_for(fake)
    adapter.deliver(cancellation, Action.ADD)
    cancellation.churn_time = datetime(2030, 4, 1, 10, tzinfo=UTC)

    # No references (an old answer was lost): the adapter can only send the Add.
    result = adapter.deliver(cancellation, Action.ADD)

    if fake.existing_add == "replace":
        assert result.outcome == Outcome.DELIVERED
        assert fake.orders[4711]["CancelDate"] == "2030-04-01"
    else:
        assert result.outcome == Outcome.FAILED
        assert "A record matching the input was found" in result.message
        assert fake.orders[4711]["CancelDate"] == "2030-03-01"


# --- through the services, the outbox and the dispatcher ---------------------------------------


@pytest.fixture
def enabled(fake, db, monkeypatch):
    monkeypatch.setenv("CALLISTO_USERNAME", fake.username)
    monkeypatch.setenv("CALLISTO_PASSWORD", fake.password)
    ProviderSetting.objects.create(kind="callisto", base_url=fake.url, timeout_seconds=2)
    return fake


def test_rescheduling_a_delivered_cancellation_moves_it_at_callisto(enabled):
    order = OrderFactory(external_ids={"callisto": "4711"})
    OrderItemFactory(order=order)
    reason = CancellationReasonFactory()
    first_day = timezone.now() + timedelta(days=10)
    cancellation = writing.cancel_order(
        order,
        reason=reason,
        actor=None,
        via=AuditEntry.Via.API,
        churn_time=first_day,
        external_user_id=SALESFORCE_ID,
    )
    dispatch.deliver_due()

    updating.update_cancellation(
        cancellation,
        order=order,
        reason=reason,
        actor=None,
        via=AuditEntry.Via.API,
        churn_time=first_day + timedelta(days=5),
        external_user_id=SALESFORCE_ID,
    )
    dispatch.deliver_due()

    delivery = Delivery.objects.get(provider="callisto")
    assert delivery.status == DeliveryStatus.DELIVERED
    assert enabled.effects(4711) == ["Add", "Delete", "Add"]
    new_day = (first_day + timedelta(days=5)).astimezone(ZONE).date().isoformat()
    assert enabled.orders[4711]["CancelDate"] == new_day
    assert delivery.references[DELIVERED]["CancelDate"] == new_day
