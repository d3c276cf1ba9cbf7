"""Idempotency-Key in the request's transaction (backoffice/idempotency.py): the key, the effect
and the answer commit together or not at all; a crash leaves nothing, so the retry runs once and
at once; a request with a key another one holds waits for it (PostgreSQL) and replays.

A real gunicorn worker killed mid-request: tests/integration/test_idempotency_crash.py."""

import base64
import json
import threading
import time
from datetime import timedelta

import pytest
from django.db import OperationalError, connection, transaction
from django.utils import timezone
from rest_framework.test import APIClient

from backoffice import idempotency
from backoffice.models import IdempotencyKey
from cancellations.models import BulkCancellation, BulkCancellationStatus, Cancellation
from cancellations.services import writing
from tests.backoffice.test_idempotency import (
    LIST,
    make_agent,
    post,
    session_client,
    token_client,
)
from tests.cancellations.test_api_bulk import CANCEL, RUN, shop_order
from tests.factories import (
    CancellationReasonFactory,
    OrderFactory,
    OrderItemFactory,
    UserFactory,
)
from tests.integration.test_faults import connection_killed_mid_cancellation  # noqa: F401

postgresql_only = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="needs a second connection holding a row lock (CI runs this on PostgreSQL)",
)


def body_for_one_unit() -> dict:
    order = OrderFactory()
    OrderItemFactory(order=order, quantity=5)
    reason = CancellationReasonFactory()
    return {
        "orderId": order.pk,
        "reasonId": reason.pk,
        "items": [{"itemId": order.items.get().pk, "quantity": 1}],
    }


@pytest.fixture
def one_unit(db):
    return body_for_one_unit()


@pytest.fixture
def agent(db):
    return make_agent()


def crash_after_cancelling(monkeypatch, error: BaseException) -> None:
    """The cancellation is written (its service's transaction is done), then `error` comes, as
    a crash between the effect and the answer would."""
    real_cancel_order = writing.cancel_order

    def cancel_then_crash(*args, **kwargs):
        real_cancel_order(*args, **kwargs)
        raise error

    monkeypatch.setattr("cancellations.services.writing.cancel_order", cancel_then_crash)


def assert_the_retry_runs_once(client, body, key):
    retried = post(client, body, key=key)
    assert retried.status_code == 201
    assert "Idempotent-Replayed" not in retried
    assert Cancellation.objects.count() == 1
    assert IdempotencyKey.objects.get().state == IdempotencyKey.State.DONE
    return retried


# --- a crash between the effect and the answer ---------------------------------------------------


def test_a_server_error_after_the_effect_rolls_the_effect_back_with_the_key(
    agent, one_unit, monkeypatch
):
    api = session_client(agent, raise_request_exception=False)
    with monkeypatch.context() as patch:
        crash_after_cancelling(patch, RuntimeError("bug after the commit"))
        failed = post(api, one_unit, key="crash-1")

    assert failed.status_code == 500
    assert not Cancellation.objects.exists()
    assert not IdempotencyKey.objects.exists()
    assert_the_retry_runs_once(api, one_unit, "crash-1")


def test_a_worker_killed_after_the_effect_leaves_nothing_and_the_retry_runs_once(
    agent, one_unit, monkeypatch
):
    """gunicorn stops a timed-out worker with SIGABRT: a SystemExit wherever it is."""
    api = session_client(agent)
    with monkeypatch.context() as patch:
        crash_after_cancelling(patch, SystemExit(1))
        with pytest.raises(SystemExit):
            post(api, one_unit, key="killed-1")

    assert not Cancellation.objects.exists()
    assert not IdempotencyKey.objects.exists()
    assert_the_retry_runs_once(api, one_unit, "killed-1")


def test_a_response_that_cannot_be_recorded_is_a_503_and_the_effect_is_rolled_back(
    agent, one_unit, monkeypatch
):
    api = session_client(agent, raise_request_exception=False)

    def connection_lost(row, response):
        raise OperationalError("server closed the connection unexpectedly")

    with monkeypatch.context() as patch:
        patch.setattr("backoffice.idempotency.record_response", connection_lost)
        failed = post(api, one_unit, key="lost-1")

    # Not the 201 the view made: that cancellation was never committed.
    assert failed.status_code == 503
    assert failed["Content-Type"] == "application/problem+json"
    assert int(failed["Retry-After"]) > 0
    assert not Cancellation.objects.exists()
    assert not IdempotencyKey.objects.exists()
    assert_the_retry_runs_once(api, one_unit, "lost-1")


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_a_request_that_loses_its_database_connection_keeps_nothing_and_the_retry_runs_once(
    connection_killed_mid_cancellation,  # noqa: F811
):
    body = body_for_one_unit()
    api = session_client(make_agent())

    lost = post(api, body, key="lost-connection")

    assert not connection_killed_mid_cancellation  # it did happen mid-request
    assert lost.status_code == 503
    connection.close()  # the test client skips Django's end-of-request cleanup
    assert not Cancellation.objects.exists()
    assert not IdempotencyKey.objects.exists()
    assert_the_retry_runs_once(api, body, "lost-connection")


def test_a_throttled_request_keeps_no_key(agent, one_unit, monkeypatch):
    api = session_client(agent)
    throttle = "rest_framework.throttling.UserRateThrottle"
    monkeypatch.setattr(f"{throttle}.allow_request", lambda *args: False)
    monkeypatch.setattr(f"{throttle}.wait", lambda self: 30)

    throttled = post(api, one_unit, key="throttled-1")

    assert throttled.status_code == 429
    assert not IdempotencyKey.objects.exists()


# --- after the commit ----------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_work_queued_for_after_the_commit_runs_once_the_answer_is_committed(monkeypatch):
    """The broker kick of new deliveries (on_commit) may hang or the worker die there: by then
    the key's response is committed, so a retry replays it."""
    body = body_for_one_unit()
    api = session_client(make_agent())
    seen = []
    real_enqueue = writing.enqueue_deliveries

    def enqueue_deliveries(cancellation, action):
        def after_commit():
            row = IdempotencyKey.objects.get()
            seen.append((connection.in_atomic_block, row.state, row.response_status))

        transaction.on_commit(after_commit)
        return real_enqueue(cancellation, action)

    monkeypatch.setattr("cancellations.services.writing.enqueue_deliveries", enqueue_deliveries)

    created = post(api, body, key="kick-1")

    assert created.status_code == 201
    assert seen == [(False, IdempotencyKey.State.DONE, 201)]
    assert post(api, body, key="kick-1")["Idempotent-Replayed"] == "true"


def test_a_bulk_job_queued_with_a_key_runs_once_and_its_202_is_replayed(
    db, django_capture_on_commit_callbacks
):
    orders = [shop_order(), shop_order()]
    api = token_client(UserFactory(permissions=[RUN]))
    body = {
        "controllerId": "storno",
        "folders": [{"folder": "/shop/de"}],
        "dateFrom": "1d",
        "reasonId": CancellationReasonFactory().pk,
    }

    with django_capture_on_commit_callbacks(execute=True) as queued:
        accepted = post(api, body, key="bulk-1", path=CANCEL)
    replayed = post(api, body, key="bulk-1", path=CANCEL)

    assert accepted.status_code == 202, accepted.content
    assert queued  # the job is queued after the commit
    job = BulkCancellation.objects.get()
    assert job.status == BulkCancellationStatus.FINISHED
    assert Cancellation.objects.filter(order__in=orders).count() == 2
    assert replayed.status_code == 202
    assert replayed["Idempotent-Replayed"] == "true"
    assert (replayed.content, replayed["Location"]) == (accepted.content, accepted["Location"])


# --- refused credentials write no key ------------------------------------------------------------


@pytest.mark.parametrize(
    "authorization",
    [
        "Token 0123456789abcdef0123456789abcdef01234567",
        "Basic " + base64.b64encode(b"nobody:wrong-password").decode(),
    ],
    ids=["token", "basic"],
)
def test_a_request_with_refused_credentials_is_a_401_and_leaves_no_key(one_unit, authorization):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=authorization)

    response = post(client, one_unit, key="intruder")

    assert response.status_code == 401
    assert not IdempotencyKey.objects.exists()
    assert not Cancellation.objects.exists()


def test_a_session_request_failing_its_csrf_check_leaves_no_key(agent, one_unit):
    api = session_client(agent, enforce_csrf_checks=True)

    response = post(api, one_unit, key="no-csrf")

    assert response.status_code == 403
    assert not IdempotencyKey.objects.exists()


# --- a request with a key another one holds (PostgreSQL) ---------------------------------------


class KeyHolder(threading.Thread):
    """Another request's transaction: it inserts the key's row and holds it, uncommitted,
    until told to commit (with a response to replay) or roll back."""

    def __init__(self, scope: str, key: str, fingerprint: str):
        super().__init__(daemon=True)
        self.row = {"scope": scope, "key": key, "request_fingerprint": fingerprint}
        self.inserted = threading.Event()
        self.finish = threading.Event()
        self.commit = False

    def run(self):
        try:
            with transaction.atomic():
                now = timezone.now()
                IdempotencyKey.objects.create(
                    **self.row, created_at=now, expires_at=now + timedelta(hours=1)
                )
                self.inserted.set()
                self.finish.wait(30)
                if not self.commit:
                    transaction.set_rollback(True)
                    return
                IdempotencyKey.objects.filter(key=self.row["key"]).update(
                    state=IdempotencyKey.State.DONE,
                    response_status=201,
                    response_body=b'{"held": true}',
                    response_headers={"Content-Type": "application/json"},
                )
        finally:
            connection.close()

    def end(self, *, commit: bool, after: float = 0) -> None:
        def later():
            time.sleep(after)
            self.commit = commit
            self.finish.set()

        threading.Thread(target=later, daemon=True).start()


@pytest.fixture
def key_holder(transactional_db):
    body = body_for_one_unit()
    agent = make_agent()
    fingerprint = idempotency.request_fingerprint("POST", LIST, json.dumps(body).encode())
    holder = KeyHolder(f"user:{agent.pk}", "held", fingerprint)
    holder.start()
    assert holder.inserted.wait(10)
    yield session_client(agent), body, holder
    holder.end(commit=False)
    holder.join(10)


@postgresql_only
def test_a_request_waits_for_the_one_holding_its_key_and_replays_its_answer(key_holder):
    api, body, holder = key_holder
    holder.end(commit=True, after=1)
    started = time.monotonic()

    response = post(api, body, key="held")

    assert time.monotonic() - started >= 0.9  # it waited
    assert response.status_code == 201
    assert response.content == b'{"held": true}'
    assert response["Idempotent-Replayed"] == "true"
    assert not Cancellation.objects.exists()


@postgresql_only
def test_a_request_runs_once_the_one_holding_its_key_rolled_back(key_holder):
    api, body, holder = key_holder
    holder.end(commit=False, after=0.5)

    response = post(api, body, key="held")

    assert response.status_code == 201
    assert "Idempotent-Replayed" not in response
    assert Cancellation.objects.count() == 1


@postgresql_only
def test_a_request_whose_key_stays_held_too_long_is_a_409(key_holder, monkeypatch):
    api, body, _holder = key_holder
    monkeypatch.setattr("backoffice.idempotency.CLAIM_WAIT_SECONDS", 1)
    started = time.monotonic()

    response = post(api, body, key="held")

    assert time.monotonic() - started < 5
    assert response.status_code == 409
    assert response["Retry-After"] == "1"
    assert response.json()["type"] == "urn:storno:problem:idempotency-key-in-use"
    assert "still in progress" in response.json()["detail"]
    assert not Cancellation.objects.exists()
