"""The dispatcher: claiming, sending outside any transaction, recording attempts, backoff,
permanent failures, abandoned claims — with a scripted adapter, and over HTTP with the fakes."""

import random
import threading
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test import override_settings
from django.utils import timezone

from providers import dispatch
from providers.base import Outcome, Result
from providers.fakes.callisto import CallistoFake
from providers.fakes.rebilly import RebillyFake
from providers.models import AttemptOutcome, Delivery, DeliveryAttempt, ProviderSetting
from providers.states import DeliveryStatus
from providers.tasks import deliver_due, deliver_one
from tests.factories import OrderFactory, OrderItemFactory
from tests.providers.outbox_support import (
    cancel,
    make_provider_fixture,  # noqa: F401 - the fixture
    revoke,
)

pytestmark = pytest.mark.django_db


def the_add(provider="alpha"):
    return Delivery.objects.get(provider=provider, action="add")


def make_due(**filters):
    Delivery.objects.filter(**filters).update(next_attempt_at=timezone.now())


# --- claiming ----------------------------------------------------------------------------------


def test_a_claim_marks_the_delivery_in_flight_with_a_lease(make_provider):
    make_provider("alpha", timeout_seconds=10)
    cancel()

    with override_settings(DELIVERY_CLAIM_MARGIN_SECONDS=60):
        claimed = dispatch.claim(worker="host:1")

    delivery = the_add()
    assert delivery.status == DeliveryStatus.IN_FLIGHT
    assert (delivery.attempts, delivery.claimed_by) == (1, "host:1")
    lease = (delivery.next_attempt_at - delivery.claimed_at).total_seconds()
    assert lease == pytest.approx(70)
    assert claimed.attempt.outcome == ""  # open until the answer is recorded


def test_a_delivery_in_flight_is_not_claimed_twice(make_provider):
    make_provider("alpha")
    cancel()

    assert dispatch.claim() is not None
    assert dispatch.claim() is None


def test_the_longest_waiting_delivery_is_claimed_first(make_provider):
    make_provider("alpha")
    first, second = cancel(), cancel()
    Delivery.objects.filter(cancellation=second).update(
        next_attempt_at=timezone.now() - timedelta(minutes=5)
    )

    assert dispatch.claim().delivery.cancellation_id == second.pk
    assert dispatch.claim().delivery.cancellation_id == first.pk


def test_a_delivery_waiting_out_its_backoff_is_not_claimed(make_provider):
    make_provider("alpha")
    cancel()
    Delivery.objects.update(next_attempt_at=timezone.now() + timedelta(minutes=1))

    assert dispatch.claim() is None


def test_deliveries_of_a_disabled_provider_wait(make_provider):
    make_provider("alpha")
    cancel()
    ProviderSetting.objects.filter(kind="alpha").update(enabled=False)

    assert dispatch.claim() is None


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="SKIP LOCKED needs real row locks (SQLite serialises whole transactions instead)",
)
def test_a_claim_skips_rows_locked_by_another_worker_instead_of_waiting(make_provider, monkeypatch):
    # In a transactional test the after-commit kick runs (eagerly) and would deliver both rows
    # before we claim; this test is about claiming only.
    monkeypatch.setattr("providers.outbox.kick", lambda delivery_ids: None)
    make_provider("alpha")
    locked, free = cancel(), cancel()
    holding, release = threading.Event(), threading.Event()

    def other_worker():
        with transaction.atomic():
            Delivery.objects.select_for_update().get(cancellation=locked)
            holding.set()
            release.wait(10)
        connection.close()

    thread = threading.Thread(target=other_worker)
    thread.start()
    holding.wait(10)
    try:
        claimed = dispatch.claim()
    finally:
        release.set()
        thread.join()

    assert claimed.delivery.cancellation_id == free.pk


def test_a_batch_claim_takes_at_most_its_size_and_the_next_claim_gets_the_others(make_provider):
    make_provider("alpha")
    cancellations = [cancel() for _ in range(5)]

    first = dispatch.claim_batch(2, worker="one:1")
    second = dispatch.claim_batch(10, worker="two:2")

    assert len(first) == 2
    assert len(second) == 3
    claimed = [c.delivery.cancellation_id for c in first + second]
    assert sorted(claimed) == sorted(c.pk for c in cancellations)
    assert dispatch.claim_batch(10) == []
    workers = dict(Delivery.objects.values_list("cancellation_id", "claimed_by"))
    assert {workers[c.delivery.cancellation_id] for c in first} == {"one:1"}
    assert DeliveryAttempt.objects.count() == 5  # one open attempt per claimed row


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="SKIP LOCKED needs real row locks (SQLite serialises whole transactions instead)",
)
def test_a_batch_claim_leaves_the_rows_another_worker_holds_to_it(make_provider, monkeypatch):
    monkeypatch.setattr("providers.outbox.kick", lambda delivery_ids: None)
    make_provider("alpha")
    held = [cancel() for _ in range(2)]
    free = [cancel() for _ in range(3)]
    holding, release = threading.Event(), threading.Event()

    def other_worker():  # holds its batch's row locks, as during its claim transaction
        with transaction.atomic():
            list(Delivery.objects.select_for_update().filter(cancellation__in=held))
            holding.set()
            release.wait(10)
        connection.close()

    thread = threading.Thread(target=other_worker)
    thread.start()
    holding.wait(10)
    try:
        claims = dispatch.claim_batch(10)
    finally:
        release.set()
        thread.join()

    assert sorted(c.delivery.cancellation_id for c in claims) == sorted(c.pk for c in free)


def test_a_row_whose_turn_comes_after_its_lease_allows_is_handed_back_unsent(make_provider):
    alpha = make_provider("alpha")
    cancellations = [cancel() for _ in range(3)]
    claims = dispatch.claim_batch(3)
    for late in claims[1:]:
        late.send_by = 0.0  # as if the first send had used up the claim's margin

    dispatch.finish_batch(dispatch.send_batch(claims))

    assert alpha.calls == [(claims[0].delivery.cancellation_id, "add")]
    rows = {row.cancellation_id: row for row in Delivery.objects.all()}
    handed_back = [rows[c.delivery.cancellation_id] for c in claims[1:]]
    assert [(row.status, row.attempts) for row in handed_back] == [(DeliveryStatus.PENDING, 0)] * 2
    assert all(row.next_attempt_at <= timezone.now() for row in handed_back)
    assert DeliveryAttempt.objects.count() == 1  # the unsent ones leave no attempt behind
    dispatch.deliver_due()
    assert {row.status for row in Delivery.objects.all()} == {DeliveryStatus.DELIVERED}
    assert len(cancellations) == len(alpha.calls)


# --- outcomes ----------------------------------------------------------------------------------


def test_a_delivered_answer_is_recorded_with_its_attempt(make_provider):
    make_provider("alpha")
    cancellation = cancel()

    dispatch.deliver()

    delivery = the_add()
    assert delivery.status == DeliveryStatus.DELIVERED
    assert delivery.delivered_at is not None
    assert (delivery.last_status_code, delivery.last_error) == (200, "")
    assert delivery.references == {"id": f"alpha-{cancellation.pk}"}
    attempt = delivery.attempt_log.get()
    assert (attempt.number, attempt.outcome, attempt.status_code) == (1, "delivered", 200)
    assert attempt.duration_ms == 7
    assert attempt.request_excerpt == f"PUT /alpha/{cancellation.pk}"
    assert attempt.response_excerpt == "HTTP 200"


def test_a_delivered_answers_note_is_kept_for_staff(make_provider):
    alpha = make_provider("alpha")
    alpha.script.append(Result(Outcome.DELIVERED, 420, message="JS7 had no such orders"))
    cancel()

    dispatch.deliver()

    delivery = the_add()
    assert delivery.status == DeliveryStatus.DELIVERED
    assert delivery.last_error == "JS7 had no such orders"


def test_the_provider_is_called_outside_any_transaction(make_provider, transactional_db):
    alpha = make_provider("alpha")
    cancel()

    dispatch.deliver_due()

    assert alpha.in_transaction == [False]


def test_a_transient_failure_is_retried_after_a_backoff(make_provider):
    alpha = make_provider("alpha")
    alpha.script.append(Outcome.RETRY)
    cancel()
    before = timezone.now()

    with override_settings(DELIVERY_BACKOFF_BASE_SECONDS=30):
        dispatch.deliver()

    delivery = the_add()
    assert delivery.status == DeliveryStatus.PENDING
    assert (delivery.attempts, delivery.last_status_code) == (1, 503)
    assert delivery.last_error == "alpha said retry"
    wait = (delivery.next_attempt_at - before).total_seconds()
    assert 15 <= wait <= 31


def test_a_providers_not_before_later_than_the_backoff_is_waited_for(make_provider):
    alpha = make_provider("alpha")
    not_before = timezone.now() + timedelta(minutes=15)
    alpha.script.append(Result(Outcome.RETRY, status_code=429, retry_after=not_before))
    cancel()

    with override_settings(DELIVERY_BACKOFF_BASE_SECONDS=30):
        dispatch.deliver()

    assert the_add().next_attempt_at == not_before


def test_a_providers_not_before_earlier_than_the_backoff_is_not_sooner(make_provider):
    alpha = make_provider("alpha")
    before = timezone.now()
    alpha.script.append(Result(Outcome.RETRY, status_code=429, retry_after=before))
    cancel()

    with override_settings(DELIVERY_BACKOFF_BASE_SECONDS=30):
        dispatch.deliver()

    assert (the_add().next_attempt_at - before).total_seconds() >= 15


def test_a_retried_delivery_is_delivered_on_the_next_try(make_provider):
    alpha = make_provider("alpha")
    alpha.script.append(Outcome.RETRY)
    cancel()
    dispatch.deliver()
    make_due()

    dispatch.deliver()

    delivery = the_add()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.DELIVERED, 2)
    assert list(delivery.attempt_log.values_list("outcome", flat=True)) == ["retry", "delivered"]


def test_a_permanent_failure_fails_at_once_with_the_providers_message(make_provider):
    alpha = make_provider("alpha")
    alpha.script.append(Outcome.FAILED)
    cancel()

    dispatch.deliver()

    delivery = the_add()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.FAILED, 1)
    assert delivery.last_error == "alpha said failed"


def test_a_credentials_problem_is_flagged(make_provider):
    alpha = make_provider("alpha")
    alpha.script.append(
        dispatch.Result(Outcome.FAILED, status_code=401, message="no", credentials_problem=True)
    )
    cancel()

    dispatch.deliver()

    assert the_add().credentials_problem


@override_settings(DELIVERY_MAX_ATTEMPTS=3)
def test_it_gives_up_after_the_maximum_number_of_attempts(make_provider):
    alpha = make_provider("alpha")
    alpha.script.extend([Outcome.RETRY] * 5)
    cancel()

    for _ in range(5):
        make_due()
        dispatch.deliver()

    delivery = the_add()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.FAILED, 3)
    assert "3 attempts" in delivery.last_error
    assert len(alpha.calls) == 3


def test_an_adapter_that_raises_is_retried_later(make_provider):
    alpha = make_provider("alpha")
    alpha.script.append(ValueError("adapter bug"))
    cancel()

    dispatch.deliver()

    delivery = the_add()
    assert delivery.status == DeliveryStatus.PENDING
    assert "ValueError: adapter bug" in delivery.last_error


def test_a_provider_without_a_base_url_is_retried_and_flagged(make_provider):
    make_provider("alpha")
    ProviderSetting.objects.filter(kind="alpha").update(base_url="")
    cancel()

    dispatch.deliver()

    delivery = the_add()
    assert delivery.status == DeliveryStatus.PENDING
    assert delivery.credentials_problem


def test_an_adapter_may_skip(make_provider):
    alpha = make_provider("alpha")
    alpha.script.append(dispatch.Result(Outcome.SKIPPED, message="nothing there"))
    cancel()

    dispatch.deliver()

    assert (the_add().status, the_add().last_error) == (DeliveryStatus.SKIPPED, "nothing there")


# --- backoff -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("attempts", "ceiling"), [(1, 30), (2, 60), (3, 120), (5, 480)])
@override_settings(DELIVERY_BACKOFF_BASE_SECONDS=30, DELIVERY_BACKOFF_MAX_SECONDS=3600)
def test_the_backoff_doubles_with_each_attempt_and_jitters_within_its_upper_half(attempts, ceiling):
    rng = random.Random(4)
    waits = [dispatch.backoff_seconds(attempts, rng=rng) for _ in range(200)]

    assert all(ceiling / 2 <= wait <= ceiling for wait in waits)
    assert max(waits) - min(waits) > ceiling / 4  # jittered, not one fixed value


@override_settings(DELIVERY_BACKOFF_BASE_SECONDS=30, DELIVERY_BACKOFF_MAX_SECONDS=3600)
def test_the_backoff_is_capped():
    assert dispatch.backoff_seconds(30, rng=random.Random(1)) <= 3600


# --- abandoned claims --------------------------------------------------------------------------


def test_a_delivery_whose_worker_died_is_claimed_again_after_its_lease(make_provider):
    make_provider("alpha")
    cancel()
    dispatch.claim(worker="dead:1")
    Delivery.objects.update(next_attempt_at=timezone.now() - timedelta(seconds=1))

    dispatch.deliver(worker="alive:2")

    delivery = the_add()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.DELIVERED, 2)
    outcomes = list(delivery.attempt_log.values_list("worker", "outcome"))
    assert outcomes == [("dead:1", AttemptOutcome.ABANDONED), ("alive:2", "delivered")]


def test_a_delivery_in_flight_within_its_lease_is_left_alone(make_provider):
    make_provider("alpha")
    cancel()
    dispatch.claim(worker="slow:1")

    assert dispatch.deliver(worker="other:2") is None


@override_settings(DELIVERY_MAX_ATTEMPTS=2)
def test_an_abandoned_delivery_out_of_attempts_fails(make_provider):
    make_provider("alpha")
    cancel()
    Delivery.objects.update(attempts=1)
    dispatch.claim(worker="dead:1")
    Delivery.objects.update(next_attempt_at=timezone.now() - timedelta(seconds=1))

    assert dispatch.deliver() is None

    assert the_add().status == DeliveryStatus.FAILED


def test_a_late_answer_from_an_expired_claim_does_not_overwrite_the_new_outcome(make_provider):
    make_provider("alpha")
    cancel()
    slow = dispatch.claim(worker="slow:1")
    Delivery.objects.update(next_attempt_at=timezone.now() - timedelta(seconds=1))
    dispatch.deliver(worker="fast:2")

    dispatch.finish(slow, dispatch.Result(Outcome.FAILED, message="late"), 9000)

    delivery = the_add()
    assert delivery.status == DeliveryStatus.DELIVERED
    late = DeliveryAttempt.objects.get(worker="slow:1")
    assert late.outcome == "failed"
    assert "expired" in late.error


# --- revokes -----------------------------------------------------------------------------------


def test_a_revoke_is_not_due_until_its_add_is_delivered(make_provider):
    alpha = make_provider("alpha")
    alpha.script.append(Outcome.RETRY)
    cancellation = cancel()
    dispatch.deliver()
    revoke(cancellation)
    revoke_row = Delivery.objects.get(action="revoke")

    assert dispatch.deliver(revoke_row.pk) is None
    assert Delivery.objects.get(action="revoke").status == DeliveryStatus.PENDING


def test_delivering_the_add_asks_for_the_waiting_revoke(
    make_provider, django_capture_on_commit_callbacks
):
    alpha = make_provider("alpha")
    alpha.script.append(Outcome.RETRY)
    cancellation = cancel()
    dispatch.deliver()
    revoke(cancellation)
    make_due(action="add")

    with django_capture_on_commit_callbacks(execute=True):
        deliver_one(the_add().pk)

    assert Delivery.objects.get(action="revoke").status == DeliveryStatus.DELIVERED
    assert alpha.calls[-1] == (cancellation.pk, "revoke")


# --- tasks -------------------------------------------------------------------------------------


def test_deliver_one_does_nothing_for_a_delivery_that_is_settled(make_provider):
    alpha = make_provider("alpha")
    cancel()
    dispatch.deliver()

    assert deliver_one(the_add().pk) is None  # a hint that arrives twice or late
    assert len(alpha.calls) == 1


def test_the_sweep_delivers_everything_due(make_provider):
    make_provider("alpha")
    make_provider("beta")
    for _ in range(3):
        cancel()

    assert deliver_due() == 6

    assert set(Delivery.objects.values_list("status", flat=True)) == {DeliveryStatus.DELIVERED}


# --- over HTTP, with the strict fakes ----------------------------------------------------------


@pytest.fixture
def fakes(db, monkeypatch):
    with CallistoFake(known_ids={4711}) as callisto, RebillyFake(orders=["ord_1"]) as rebilly:
        monkeypatch.setenv("CALLISTO_USERNAME", callisto.username)
        monkeypatch.setenv("CALLISTO_PASSWORD", callisto.password)
        monkeypatch.setenv("REBILLY_API_KEY", rebilly.api_key)
        ProviderSetting.objects.create(kind="callisto", base_url=callisto.url, timeout_seconds=2)
        ProviderSetting.objects.create(kind="rebilly", base_url=rebilly.base_url, timeout_seconds=2)
        yield callisto, rebilly


def cancel_order_known_to_both():
    order = OrderFactory(external_ids={"callisto": "4711", "rebilly": "ord_1"})
    OrderItemFactory(order=order)
    return cancel(order, external_user_id="005000000000001AAA")


def test_a_cancellation_reaches_both_providers_once(fakes, django_capture_on_commit_callbacks):
    callisto, rebilly = fakes

    with django_capture_on_commit_callbacks(execute=True):
        cancellation = cancel_order_known_to_both()

    assert set(Delivery.objects.values_list("status", flat=True)) == {DeliveryStatus.DELIVERED}
    assert callisto.effects(4711) == ["Add"]
    assert rebilly.effects(cancellation.pk) == ["created"]
    assert Delivery.objects.get(provider="rebilly").references["id"] == cancellation.pk


def test_a_provider_outage_is_retried_until_it_is_delivered(fakes):
    _callisto, rebilly = fakes
    rebilly.fail_next(1, status=503)
    cancellation = cancel_order_known_to_both()
    dispatch.deliver_due()
    make_due()

    dispatch.deliver_due()

    delivery = Delivery.objects.get(provider="rebilly")
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.DELIVERED, 2)
    assert rebilly.effects(cancellation.pk) == ["created"]


def test_a_timeout_is_retried_and_the_repeat_changes_nothing_twice(fakes):
    callisto, _rebilly = fakes
    callisto.delay_next(1, seconds=3)  # the fake cancels, but answers after our 2 s timeout
    cancel_order_known_to_both()
    dispatch.deliver_due()
    assert Delivery.objects.get(provider="callisto").status == DeliveryStatus.PENDING
    make_due()

    dispatch.deliver_due()

    assert Delivery.objects.get(provider="callisto").status == DeliveryStatus.DELIVERED
    assert callisto.received_count(4711) == 2
    assert callisto.effects(4711) == ["Add"]


def test_a_revoke_reaches_both_providers_after_the_add(fakes):
    callisto, rebilly = fakes
    cancellation = cancel_order_known_to_both()
    dispatch.deliver_due()

    revoke(cancellation)
    dispatch.deliver_due()

    assert callisto.effects(4711) == ["Add", "Delete"]
    # Effective at once, so Rebilly had completed it: the revoke reactivates the order.
    assert [r["cancellationId"] for r in rebilly.reactivations.values()] == [cancellation.pk]
    assert set(Delivery.objects.values_list("status", flat=True)) == {DeliveryStatus.DELIVERED}


def cancel_orders_known_to_both(count):
    orders = []
    for n in range(count):
        order = OrderFactory(external_ids={"callisto": str(5000 + n), "rebilly": f"ord_{n}"})
        OrderItemFactory(order=order)
        orders.append(order)
    return orders


@pytest.fixture
def many_fakes(db, monkeypatch):
    ids = range(5000, 5030)
    with CallistoFake(known_ids=ids) as callisto, RebillyFake() as rebilly:
        rebilly.add_orders([f"ord_{n}" for n in range(30)])
        monkeypatch.setenv("CALLISTO_USERNAME", callisto.username)
        monkeypatch.setenv("CALLISTO_PASSWORD", callisto.password)
        monkeypatch.setenv("REBILLY_API_KEY", rebilly.api_key)
        ProviderSetting.objects.create(kind="callisto", base_url=callisto.url)
        ProviderSetting.objects.create(kind="rebilly", base_url=rebilly.base_url)
        yield callisto, rebilly


def deliver_one_batch(size):
    return dispatch.finish_batch(dispatch.send_batch(dispatch.claim_batch(size)))


def test_the_queries_of_a_batch_do_not_grow_with_its_size(
    many_fakes, django_assert_max_num_queries
):
    for order in cancel_orders_known_to_both(14):
        cancel(order, external_user_id="005000000000001AAA")

    # 11 queries (settings; claim: lock, update, open attempts; load: cancellations, lines,
    # reason mappings; record: lock, update deliveries, update attempts, waiting revokes) and
    # the savepoints of the test's own transaction around the claim and the record.
    with django_assert_max_num_queries(15) as small:
        assert len(deliver_one_batch(4)) == 4
    with django_assert_max_num_queries(len(small)):
        assert len(deliver_one_batch(24)) == 24

    assert set(Delivery.objects.values_list("status", flat=True)) == {DeliveryStatus.DELIVERED}


def test_one_worker_sends_its_deliveries_over_one_connection_per_provider(many_fakes):
    callisto, rebilly = many_fakes
    for order in cancel_orders_known_to_both(10):
        cancel(order, external_user_id="005000000000001AAA")

    assert dispatch.deliver_due(size=4) == 20

    assert (len(callisto.received), len(rebilly.received)) == (10, 10)
    assert (callisto.connections, rebilly.connections) == (1, 1)


def test_a_refusal_fails_with_the_providers_own_words(fakes):
    callisto, _rebilly = fakes
    callisto.known_ids = {1}
    cancel_order_known_to_both()

    dispatch.deliver_due()

    delivery = Delivery.objects.get(provider="callisto")
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.last_status_code == 404
    assert "Entity not found." in delivery.last_error


def test_a_batch_records_the_others_when_one_cancellation_was_deleted_meanwhile(make_provider):
    make_provider("alpha")
    gone, kept = cancel(), cancel()
    claims = dispatch.claim_batch(2)
    sent = dispatch.send_batch(claims)
    gone.delete()

    recorded = dispatch.finish_batch(sent)

    assert [row.cancellation_id for row in recorded] == [kept.pk]
    assert Delivery.objects.get().status == DeliveryStatus.DELIVERED
