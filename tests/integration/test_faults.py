"""Faults: what Storno does when its database, its broker or a provider misbehaves.

- The database connection drops mid-request: a 503 with Retry-After (a problem object under
  /api/, the 503 page for staff), and nothing half written.
- The broker refuses connections or hangs: cancellations are still accepted, and the beat's
  sweep delivers them when it is back.
- A provider answers slower than its timeout: the attempt is recorded as a timeout and retried
  later, and the sweep carries on with the next delivery.
- 50 concurrent cancels of one order through the API: one cancellation, 49 clean refusals.

The tests that kill real database sessions or need real row locks run on PostgreSQL only (CI
runs the suite on PostgreSQL too: .ci/run); the rest run everywhere:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/storno_faults \\
        .venv/bin/pytest tests/integration/test_faults.py
"""

from __future__ import annotations

import socket
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import pytest
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, InterfaceError, OperationalError, connection, connections
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from backoffice.celery import app
from cancellations.models import AuditEntry, Cancellation
from cancellations.states import OrderStatus
from providers import dispatch, outbox
from providers.fakes.callisto import CallistoFake
from providers.fakes.rebilly import RebillyFake
from providers.models import AttemptOutcome, Delivery, ProviderSetting
from providers.states import DeliveryStatus
from providers.tasks import deliver_due
from tests.cancellations.test_views import cancel_data
from tests.factories import OrderFactory, OrderItemFactory

LIST = "/api/v1/order-cancellations/"
SALESFORCE_ID = "005000000000001AAA"
# The orders the strict Callisto fake knows (it answers 404 for any other Id).
KNOWN_CALLISTO_IDS = {4711, 4712, 4713}
PROBLEM = "application/problem+json"

postgresql_only = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="kills real database sessions and needs real row locks (CI runs this on PostgreSQL)",
)


@pytest.fixture
def api(agent):
    client = APIClient()
    client.force_authenticate(agent)
    return client


def new_order(callisto_id: int = 4711):
    order = OrderFactory(
        external_ids={"callisto": str(callisto_id), "rebilly": f"ord_{callisto_id}"}
    )
    OrderItemFactory(order=order, quantity=2)
    return order


def post_cancellation(client, order, reason, **headers):
    body = {"orderId": order.pk, "reasonId": reason.pk, "externalUserId": SALESFORCE_ID}
    return client.post(LIST, body, format="json", headers=headers)


def rows_written() -> tuple[int, int, int]:
    return Cancellation.objects.count(), AuditEntry.objects.count(), Delivery.objects.count()


def raising(error: type[Exception]):
    def service(*args, **kwargs):
        raise error("server closed the connection unexpectedly")

    return service


# --- the database drops the connection: 503 -----------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("error", [OperationalError, InterfaceError])
def test_an_api_request_that_loses_the_database_is_a_503_problem(
    api, order_with_items, reason, monkeypatch, error
):
    monkeypatch.setattr("cancellations.services.writing.cancel_order", raising(error))

    response = post_cancellation(api, order_with_items, reason)

    assert response.status_code == 503
    assert response["Content-Type"] == PROBLEM
    assert int(response["Retry-After"]) > 0
    body = response.json()
    assert body["type"] == "urn:storno:problem:service-unavailable"
    assert (body["title"], body["status"]) == ("Service unavailable", 503)
    assert "database" in body["detail"]


@pytest.mark.django_db
@pytest.mark.parametrize("error", [OperationalError, InterfaceError])
def test_a_staff_page_that_loses_the_database_is_the_503_page(
    client, agent, order_with_items, reason, monkeypatch, error
):
    client.force_login(agent)
    monkeypatch.setattr("cancellations.services.writing.cancel_order", raising(error))
    url = reverse("staff:order-cancel", args=[order_with_items.pk])

    response = client.post(url, cancel_data(order_with_items, reason))

    assert response.status_code == 503
    assert response["Content-Type"].startswith("text/html")
    assert int(response["Retry-After"]) > 0
    page = response.content.decode()
    assert "<h1>Temporarily unavailable</h1>" in page
    assert f'href="{url}"' in page  # try again


@pytest.mark.django_db
def test_a_database_lost_before_the_view_runs_is_a_503_too(agent, monkeypatch):
    """The Idempotency-Key middleware queries before any view: Django's handler500 answers."""
    monkeypatch.setattr("backoffice.idempotency.claim_key", raising(OperationalError))
    client = Client(raise_request_exception=False)

    response = client.post(
        LIST,
        {},
        content_type="application/json",
        headers={"Authorization": "Token not-checked-yet", "Idempotency-Key": "retry-1"},
    )

    assert response.status_code == 503
    assert response["Content-Type"] == PROBLEM
    assert response.json()["status"] == 503


@pytest.mark.django_db
def test_other_errors_outside_a_view_stay_server_errors(monkeypatch):
    monkeypatch.setattr("backoffice.idempotency.claim_key", raising(RuntimeError))
    client = Client(raise_request_exception=False)

    response = client.post(
        LIST,
        {},
        content_type="application/json",
        headers={"Authorization": "Token not-checked-yet", "Idempotency-Key": "retry-1"},
    )

    assert response.status_code == 500


def kill_this_database_session() -> None:
    """End this thread's PostgreSQL session from a second connection, as a failover or an
    administrator's pg_terminate_backend would: the next statement on it fails."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()
    killer = connections.create_connection(DEFAULT_DB_ALIAS)
    try:
        with killer.cursor() as cursor:
            # The second argument waits (ms) until the session is really gone.
            cursor.execute("SELECT pg_terminate_backend(%s, 5000)", [pid])
            assert cursor.fetchone() == (True,)
    finally:
        killer.close()


@pytest.fixture
def connection_killed_mid_cancellation(monkeypatch):
    """The next cancellation loses its database session after writing the cancellation, its
    lines and its audit entry, just before its outbox rows."""
    real_enqueue = outbox.enqueue_deliveries
    kills = [kill_this_database_session]

    def enqueue_deliveries(cancellation, action):
        if kills:
            kills.pop()()
        return real_enqueue(cancellation, action)

    monkeypatch.setattr("cancellations.services.writing.enqueue_deliveries", enqueue_deliveries)
    return kills


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_an_api_cancellation_whose_connection_is_killed_is_a_503_and_writes_nothing(
    api, reason, connection_killed_mid_cancellation
):
    order = new_order()

    response = post_cancellation(api, order, reason, **{"Idempotency-Key": "cancel-4711"})

    assert not connection_killed_mid_cancellation  # it did happen mid-request
    assert response.status_code == 503
    assert response["Content-Type"] == PROBLEM
    assert int(response["Retry-After"]) > 0
    connection.close()  # the test client skips Django's end-of-request cleanup
    assert rows_written() == (0, 0, 0)
    order.refresh_from_db()
    assert order.status == OrderStatus.OPEN
    assert order.items.get().cancelled_quantity == 0
    # Rolled back and not remembered: the client's retry with the same key goes through.
    retry = post_cancellation(api, order, reason, **{"Idempotency-Key": "cancel-4711"})
    assert retry.status_code == 201
    assert Cancellation.objects.filter(order=order).count() == 1


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_a_staff_cancellation_whose_connection_is_killed_is_the_503_page_and_writes_nothing(
    client, agent, reason, connection_killed_mid_cancellation
):
    client.force_login(agent)
    order = new_order()

    response = client.post(
        reverse("staff:order-cancel", args=[order.pk]), cancel_data(order, reason)
    )

    assert not connection_killed_mid_cancellation
    assert response.status_code == 503
    assert "<h1>Temporarily unavailable</h1>" in response.content.decode()
    connection.close()
    assert rows_written() == (0, 0, 0)
    assert order.items.get().cancelled_quantity == 0


# --- the broker is down or hangs: accepted now, delivered by the sweep ---------------------------


@pytest.fixture
def fakes(db, monkeypatch):
    # Rebilly knows the orders new_order makes.
    rebilly_orders = [f"ord_{n}" for n in KNOWN_CALLISTO_IDS]
    with (
        CallistoFake(known_ids=KNOWN_CALLISTO_IDS) as callisto,
        RebillyFake(orders=rebilly_orders) as rebilly,
    ):
        monkeypatch.setenv("CALLISTO_USERNAME", callisto.username)
        monkeypatch.setenv("CALLISTO_PASSWORD", callisto.password)
        monkeypatch.setenv("REBILLY_API_KEY", rebilly.api_key)
        ProviderSetting.objects.create(kind="callisto", base_url=callisto.url, timeout_seconds=2)
        ProviderSetting.objects.create(kind="rebilly", base_url=rebilly.base_url, timeout_seconds=2)
        yield callisto, rebilly


def forget_broker_connections() -> None:
    # Celery keeps the connection and producer pools of the broker it met first.
    app._pool = None
    app.amqp._producer_pool = None


@contextmanager
def broker_at(url: str):
    """This process publishes its Celery messages to `url` (not eagerly), with the transport
    options the settings give such a broker."""
    keys = ("broker_url", "broker_transport_options", "task_always_eager")
    saved = {key: app.conf[key] for key in keys}
    is_redis = url.startswith("redis://")
    app.conf.update(
        broker_url=url,
        broker_transport_options=dict(settings.BROKER_REDIS_TIMEOUTS) if is_redis else {},
        task_always_eager=False,
    )
    forget_broker_connections()
    try:
        with pytest.MonkeyPatch.context() as env:
            # Celery reads these before its configuration (CI sets CELERY_BROKER_URL).
            env.setenv("CELERY_BROKER_URL", url)
            env.delenv("CELERY_BROKER_WRITE_URL", raising=False)
            yield
    finally:
        app.conf.update(saved)
        forget_broker_connections()


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def silent_broker():
    """A port that accepts TCP connections (the kernel completes them) but never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield listener


def connections_waiting(listener) -> int:
    listener.setblocking(False)
    count = 0
    while True:
        try:
            accepted, _address = listener.accept()
        except BlockingIOError:
            return count
        accepted.close()
        count += 1


def run_to_the_end(work, *, guard_seconds: float = 60):
    """work() in its own thread with its own database connection. The guard only turns a
    regression (a request stuck on the broker) into a failure instead of a hung CI job."""
    outcome = {}

    def run():
        try:
            outcome["result"] = work()
        finally:
            connection.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(guard_seconds)
    assert not thread.is_alive(), "the request is stuck on the broker"
    return outcome["result"]


def assert_pending_and_untried():
    deliveries = list(Delivery.objects.order_by("provider"))
    assert [d.provider for d in deliveries] == ["callisto", "rebilly"]
    assert {(d.status, d.attempts) for d in deliveries} == {(DeliveryStatus.PENDING, 0)}


def assert_delivered_once_each(callisto, rebilly, cancellation_id):
    assert set(Delivery.objects.values_list("status", flat=True)) == {DeliveryStatus.DELIVERED}
    assert callisto.effects(4711) == ["Add"]
    assert rebilly.effects(cancellation_id) == ["created"]


@pytest.mark.django_db(transaction=True)
def test_cancellations_are_accepted_while_the_broker_is_down_and_delivered_when_it_returns(
    api, reason, fakes, caplog
):
    callisto, rebilly = fakes
    order = new_order()

    with broker_at(f"redis://127.0.0.1:{closed_port()}/0"):
        response = post_cancellation(api, order, reason)

    assert response.status_code == 201
    assert "the sweep will pick it up" in caplog.text  # the kick was tried, and failed
    assert_pending_and_untried()
    assert callisto.received == [] and rebilly.received == []

    assert deliver_due() == 2  # the beat's sweep, with the broker back

    assert_delivered_once_each(callisto, rebilly, response.json()["id"])


def timed_publish(publish, calls: list[list[float]]):
    """publish, noting into the last list of `calls` how long each call took."""

    def publish_timed(*args, **kwargs):
        started = time.monotonic()
        try:
            return publish(*args, **kwargs)
        finally:
            calls[-1].append(time.monotonic() - started)

    return publish_timed


def timed(work):
    """work() and the seconds it took (a behaviour bound, not a benchmark)."""
    started = time.monotonic()
    result = work()
    return result, time.monotonic() - started


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("scheme", ["redis", "amqp"])
def test_a_broker_that_never_answers_costs_one_request_its_timeout_and_the_next_ones_nothing(
    api, reason, fakes, caplog, scheme, monkeypatch
):
    callisto, rebilly = fakes
    orders = [new_order(callisto_id) for callisto_id in sorted(KNOWN_CALLISTO_IDS)]
    # What the broker costs each request: the time its publishes take (the rest of a request
    # is the cancellation's own work, which a loaded machine stretches).
    publishes: list[list[float]] = []
    monkeypatch.setattr(outbox, "publish", timed_publish(outbox.publish, publishes))

    with silent_broker() as listener:
        host = f"127.0.0.1:{listener.getsockname()[1]}"
        url = f"redis://{host}/0" if scheme == "redis" else f"amqp://guest:guest@{host}//"
        with broker_at(url):
            answers = []
            for order in orders:
                publishes.append([])
                answers.append(
                    run_to_the_end(
                        lambda order=order: timed(lambda: post_cancellation(api, order, reason))
                    )
                )
        assert connections_waiting(listener) >= 1  # the first publish did reach the silent broker

    assert [response.status_code for response, _seconds in answers] == [201] * len(orders)
    # The first request pays the broker's timeout (bounded: test below); the ones after it,
    # within BROKER_BACKOFF_SECONDS, don't try the broker at all: their publishes give up at
    # once, well within the 100 ms a hung broker may cost a request.
    assert answers[0][1] < 10
    assert all(publishes[1:]), publishes  # they did ask to publish, and were refused
    later = [sum(seconds) for seconds in publishes[1:]]
    assert max(later) <= 0.1, later
    assert "the sweep will pick it up" in caplog.text
    assert set(Delivery.objects.values_list("status", "attempts")) == {(DeliveryStatus.PENDING, 0)}

    assert deliver_due() == 2 * len(orders)  # the beat's sweep delivers what waited

    assert set(Delivery.objects.values_list("status", flat=True)) == {DeliveryStatus.DELIVERED}
    assert all(callisto.effects(callisto_id) == ["Add"] for callisto_id in KNOWN_CALLISTO_IDS)
    ids = [response.json()["id"] for response, _seconds in answers]
    assert all(rebilly.effects(cancellation_id) == ["created"] for cancellation_id in ids)


def test_publishing_gives_up_after_a_bounded_time():
    """What keeps a hanging broker from holding a request (see the test above)."""
    assert 0 < app.conf.broker_connection_timeout <= 5
    assert 0 < settings.BROKER_REDIS_TIMEOUTS["socket_connect_timeout"] <= 5
    assert 0 < settings.BROKER_REDIS_TIMEOUTS["socket_timeout"] <= 5
    assert app.conf.task_publish_retry_policy["max_retries"] <= 1


# --- a provider slower than its timeout -----------------------------------------------------------


@pytest.fixture
def slow_callisto(db, monkeypatch):
    """Callisto alone, with a one-second timeout."""
    with CallistoFake(known_ids=KNOWN_CALLISTO_IDS) as callisto:
        monkeypatch.setenv("CALLISTO_USERNAME", callisto.username)
        monkeypatch.setenv("CALLISTO_PASSWORD", callisto.password)
        ProviderSetting.objects.create(kind="callisto", base_url=callisto.url, timeout_seconds=1)
        yield callisto


def cancel_through_the_service(order, reason):
    from cancellations.services import writing

    return writing.cancel_order(
        order, reason=reason, actor=None, via=AuditEntry.Via.API, external_user_id=SALESFORCE_ID
    )


def test_a_provider_slower_than_its_timeout_is_retried_later_and_holds_up_nothing(
    slow_callisto, reason
):
    first = cancel_through_the_service(new_order(4711), reason)
    second = cancel_through_the_service(new_order(4712), reason)
    slow_callisto.delay_next(1, seconds=5)  # the first request is answered long after 1 s

    assert dispatch.deliver_due() == 2  # one sweep: the slow one, then the next

    slow = Delivery.objects.get(cancellation=first)
    assert slow.status == DeliveryStatus.PENDING
    assert slow.next_attempt_at > timezone.now()
    attempt = slow.attempt_log.get()
    assert attempt.outcome == AttemptOutcome.RETRY
    assert "No answer within the timeout" in attempt.error
    assert Delivery.objects.get(cancellation=second).status == DeliveryStatus.DELIVERED
    assert slow_callisto.effects(4712) == ["Add"]

    Delivery.objects.filter(pk=slow.pk).update(next_attempt_at=timezone.now())
    dispatch.deliver_due()  # the retry, once its backoff is over

    slow.refresh_from_db()
    assert (slow.status, slow.attempts) == (DeliveryStatus.DELIVERED, 2)
    assert slow_callisto.effects(4711) == ["Add"]  # the late first one counted; the repeat no-op


# --- 50 concurrent cancels of one order -----------------------------------------------------------


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_fifty_concurrent_api_cancels_of_one_order_make_one_cancellation(agent, reason):
    order = new_order()
    clients = 50
    start = threading.Barrier(clients, timeout=60)

    def cancel_in_own_connection():
        client = APIClient()
        client.force_authenticate(agent)
        start.wait()
        try:
            response = post_cancellation(client, order, reason)
            return response.status_code, response["Content-Type"]
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=clients) as pool:
        futures = [pool.submit(cancel_in_own_connection) for _ in range(clients)]
        answers = [future.result(timeout=120) for future in futures]

    statuses = Counter(status for status, _type in answers)
    assert statuses[201] == 1
    refused = [(status, kind) for status, kind in answers if status != 201]
    assert len(refused) == 49
    assert all(status in (400, 409) and kind == PROBLEM for status, kind in refused), statuses
    assert Cancellation.objects.filter(order=order).count() == 1
    assert order.items.get().cancelled_quantity == 2
