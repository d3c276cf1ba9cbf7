"""The transactional outbox: which Delivery rows the cancellation services write, and when."""

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from cancellations.errors import CancellationError
from cancellations.models import AuditEntry, Cancellation
from cancellations.services import updating
from providers import dispatch
from providers.base import Outcome
from providers.models import Delivery
from providers.states import DeliveryStatus
from providers.tasks import deliver_one
from tests.factories import CancellationReasonFactory
from tests.providers.outbox_support import (
    cancel,
    make_provider_fixture,  # noqa: F401 - the fixture
    new_order,
    revoke,
)

pytestmark = pytest.mark.django_db


def rows(cancellation, action="add"):
    return {
        row.provider: row
        for row in Delivery.objects.filter(cancellation=cancellation, action=action)
    }


def add_for(cancellation, provider="alpha"):
    return Delivery.objects.get(cancellation=cancellation, provider=provider, action="add")


# --- cancel_order ------------------------------------------------------------------------------


def test_a_cancellation_writes_one_pending_add_per_enabled_provider(make_provider):
    make_provider("alpha")
    make_provider("beta")

    cancellation = cancel()

    adds = rows(cancellation)
    assert set(adds) == {"alpha", "beta"}
    assert {row.status for row in adds.values()} == {DeliveryStatus.PENDING}
    assert {row.attempts for row in adds.values()} == {0}


def test_a_disabled_provider_gets_no_delivery(make_provider):
    make_provider("alpha")
    make_provider("beta", enabled=False)

    cancellation = cancel()

    assert set(rows(cancellation)) == {"alpha"}


def test_the_add_is_skipped_when_the_provider_has_nothing_for_the_order(make_provider):
    make_provider("alpha", applies=False)

    cancellation = cancel()

    add = add_for(cancellation)
    assert add.status == DeliveryStatus.SKIPPED
    assert add.last_error


def test_the_rows_commit_with_the_cancellation_and_roll_back_with_it(make_provider):
    make_provider("alpha")
    order = new_order()

    with pytest.raises(RuntimeError), transaction.atomic():
        cancellation = cancel(order)
        assert Delivery.objects.filter(cancellation=cancellation).count() == 1
        raise RuntimeError("the caller's transaction fails after the service")

    assert not Cancellation.objects.filter(order=order).exists()
    assert not Delivery.objects.exists()


def test_a_refused_cancellation_writes_no_delivery(make_provider):
    make_provider("alpha")

    with pytest.raises(CancellationError):
        cancel(reason=None)

    assert not Delivery.objects.exists()


def test_the_worker_is_asked_only_after_the_commit(
    make_provider, django_capture_on_commit_callbacks
):
    alpha = make_provider("alpha")

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        cancellation = cancel()
        assert alpha.calls == []

    assert len(callbacks) == 1
    callbacks[0]()
    assert alpha.calls == [(cancellation.pk, "add")]
    assert add_for(cancellation).status == DeliveryStatus.DELIVERED


def test_a_broker_that_is_down_does_not_fail_the_cancellation(
    make_provider, monkeypatch, django_capture_on_commit_callbacks
):
    make_provider("alpha")

    def broker_down(*args, **kwargs):
        raise ConnectionError("broker unreachable")

    monkeypatch.setattr(deliver_one, "delay", broker_down)
    with django_capture_on_commit_callbacks(execute=True):
        cancellation = cancel()

    assert add_for(cancellation).status == DeliveryStatus.PENDING  # the sweep will send it


def test_a_scheduled_cancellation_is_delivered_at_once_too(make_provider):
    make_provider("alpha")

    cancellation = cancel(churn_time=timezone.now() + timedelta(days=3))

    assert cancellation.status == "confirmed"
    assert add_for(cancellation).status == DeliveryStatus.PENDING


# --- revoke_cancellation -----------------------------------------------------------------------


def test_a_revoke_before_the_add_was_ever_sent_skips_both(make_provider):
    alpha = make_provider("alpha")
    cancellation = cancel()

    revoke(cancellation)
    dispatch.deliver_due()

    assert add_for(cancellation).status == DeliveryStatus.SKIPPED
    assert rows(cancellation, "revoke")["alpha"].status == DeliveryStatus.SKIPPED
    assert alpha.calls == []


def test_a_revoke_after_the_add_was_delivered_is_sent(make_provider):
    alpha = make_provider("alpha")
    cancellation = cancel()
    dispatch.deliver_due()

    revoke(cancellation)
    dispatch.deliver_due()

    assert rows(cancellation, "revoke")["alpha"].status == DeliveryStatus.DELIVERED
    assert alpha.calls == [(cancellation.pk, "add"), (cancellation.pk, "revoke")]


def test_a_revoke_waits_while_its_add_is_being_retried(make_provider):
    alpha = make_provider("alpha")
    alpha.script.append(Outcome.RETRY)
    cancellation = cancel()
    dispatch.deliver_due()  # the add was tried once: it may have reached the provider

    revoke(cancellation)
    dispatch.deliver_due()

    assert rows(cancellation, "revoke")["alpha"].status == DeliveryStatus.PENDING
    assert alpha.calls == [(cancellation.pk, "add")]


def test_a_waiting_revoke_goes_out_once_its_add_is_delivered(make_provider):
    alpha = make_provider("alpha")
    alpha.script.append(Outcome.RETRY)
    cancellation = cancel()
    dispatch.deliver_due()
    revoke(cancellation)
    Delivery.objects.filter(action="add").update(next_attempt_at=timezone.now())

    dispatch.deliver_due()

    assert add_for(cancellation).status == DeliveryStatus.DELIVERED
    assert rows(cancellation, "revoke")["alpha"].status == DeliveryStatus.DELIVERED
    assert alpha.calls[-2:] == [(cancellation.pk, "add"), (cancellation.pk, "revoke")]


def test_a_waiting_revoke_is_skipped_when_its_add_fails_for_good(make_provider):
    alpha = make_provider("alpha")
    alpha.script.extend([Outcome.RETRY, Outcome.FAILED])
    cancellation = cancel()
    dispatch.deliver_due()
    revoke(cancellation)
    Delivery.objects.filter(action="add").update(next_attempt_at=timezone.now())

    dispatch.deliver_due()

    assert add_for(cancellation).status == DeliveryStatus.FAILED
    assert rows(cancellation, "revoke")["alpha"].status == DeliveryStatus.SKIPPED
    assert (cancellation.pk, "revoke") not in alpha.calls


def test_the_revoke_is_skipped_when_the_add_failed_for_good(make_provider):
    alpha = make_provider("alpha")
    alpha.script.append(Outcome.FAILED)
    cancellation = cancel()
    dispatch.deliver_due()

    revoke(cancellation)

    assert rows(cancellation, "revoke")["alpha"].status == DeliveryStatus.SKIPPED


def test_the_revoke_is_skipped_when_the_add_was_skipped(make_provider):
    make_provider("alpha", applies=False)
    cancellation = cancel()

    revoke(cancellation)

    assert rows(cancellation, "revoke")["alpha"].status == DeliveryStatus.SKIPPED


def test_the_revoke_is_skipped_for_a_provider_that_cannot_revoke(make_provider):
    make_provider("alpha", supports_revoke=False)
    cancellation = cancel()
    dispatch.deliver_due()

    revoke(cancellation)

    assert rows(cancellation, "revoke")["alpha"].status == DeliveryStatus.SKIPPED


# --- update_cancellation -----------------------------------------------------------------------


def replan(cancellation, **changes):
    changes.setdefault("reason", cancellation.reason)
    return updating.update_cancellation(
        cancellation,
        order=cancellation.order,
        actor=None,
        via=AuditEntry.Via.API,
        **changes,
    )[0]


def test_a_replan_sends_a_delivered_add_again_to_providers_that_take_updates(make_provider):
    alpha = make_provider("alpha")
    cancellation = cancel(churn_time=timezone.now() + timedelta(days=3))
    dispatch.deliver_due()

    replan(cancellation, churn_time=timezone.now() + timedelta(days=5))

    add = add_for(cancellation)
    assert (add.status, add.attempts) == (DeliveryStatus.PENDING, 0)
    dispatch.deliver_due()
    assert alpha.calls == [(cancellation.pk, "add"), (cancellation.pk, "add")]


def test_a_replan_tells_providers_without_updates_nothing_more(make_provider):
    alpha = make_provider("alpha", supports_update=False)
    cancellation = cancel(churn_time=timezone.now() + timedelta(days=3))
    dispatch.deliver_due()

    replan(cancellation, churn_time=timezone.now() + timedelta(days=5))
    dispatch.deliver_due()

    assert add_for(cancellation).status == DeliveryStatus.DELIVERED
    assert alpha.calls == [(cancellation.pk, "add")]


def test_a_replan_gives_a_failed_add_a_fresh_start(make_provider):
    alpha = make_provider("alpha")
    alpha.script.append(Outcome.FAILED)
    cancellation = cancel(churn_time=timezone.now() + timedelta(days=3))
    dispatch.deliver_due()

    replan(cancellation, churn_time=timezone.now() + timedelta(days=5))
    dispatch.deliver_due()

    assert add_for(cancellation).status == DeliveryStatus.DELIVERED


def test_a_replan_while_the_add_is_in_flight_sends_it_again_when_it_returns(make_provider):
    alpha = make_provider("alpha")
    cancellation = cancel(churn_time=timezone.now() + timedelta(days=3))
    claimed = dispatch.claim()

    replan(cancellation, churn_time=timezone.now() + timedelta(days=5))
    result, duration = dispatch.send(claimed)
    dispatch.finish(claimed, result, duration)

    assert add_for(cancellation).status == DeliveryStatus.PENDING
    dispatch.deliver_due()
    assert add_for(cancellation).status == DeliveryStatus.DELIVERED
    assert len(alpha.calls) == 2


def test_a_replan_adds_deliveries_for_providers_enabled_since(make_provider):
    make_provider("alpha")
    cancellation = cancel(churn_time=timezone.now() + timedelta(days=3))
    make_provider("beta")

    replan(cancellation, churn_time=timezone.now() + timedelta(days=5))

    assert set(rows(cancellation)) == {"alpha", "beta"}


def test_an_unchanged_repeat_of_an_update_writes_nothing(make_provider):
    make_provider("alpha")
    cancellation = cancel(churn_time=timezone.now() + timedelta(days=3), request_fingerprint="x")
    dispatch.deliver_due()

    updating.update_cancellation(
        cancellation,
        order=cancellation.order,
        reason=CancellationReasonFactory(),
        actor=None,
        via=AuditEntry.Via.API,
        request_fingerprint="x",
    )

    assert add_for(cancellation).status == DeliveryStatus.DELIVERED
