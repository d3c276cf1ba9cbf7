"""A real gunicorn worker killed mid-request (its --timeout), then the client's retry with the
same Idempotency-Key: one cancellation, and an answer at once (backoffice/idempotency.py).

- Killed after the commit, while the after-commit kick hangs on a broker that accepts connections
  and never answers: the retry replays the committed 201.
- Killed inside the transaction, while the cancellation waits for a row lock: nothing was
  committed, so the retry runs, once.

Run with STORNO_INTEGRATION=1 and DATABASE_URL pointing at PostgreSQL, e.g.

    STORNO_INTEGRATION=1 DATABASE_URL=postgres://postgres@127.0.0.1:5432/storno_idem \\
        .venv/bin/pytest tests/integration/test_idempotency_crash.py

gunicorn serves the test database (pytest-django's test_<name>, committed data:
transactional_db) with backoffice.settings, one sync worker and a 2-second timeout.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
import requests
from django.conf import settings
from django.db import connection, transaction
from rest_framework.authtoken.models import Token

from backoffice.models import IdempotencyKey
from cancellations.models import Cancellation, Order
from providers.models import Delivery, ProviderSetting
from tests.backoffice.test_idempotency import make_agent
from tests.factories import CancellationReasonFactory, OrderFactory, OrderItemFactory
from tests.integration.test_faults import connections_waiting, silent_broker
from tests.integration.test_worker_delivery import worker_database_url

LIST = "/api/v1/order-cancellations/"
WORKER_TIMEOUT = 2  # seconds: gunicorn's --timeout; the silent broker holds a publish ≥ 3 s
PROMPTLY = 10  # seconds: a retry's answer, a new worker's boot included

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        os.environ.get("STORNO_INTEGRATION") != "1", reason="set STORNO_INTEGRATION=1 to run"
    ),
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="needs PostgreSQL (set DATABASE_URL)"
    ),
    pytest.mark.django_db(transaction=True),
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Gunicorn:
    """One gunicorn master and its worker, started and stopped by the master's process group."""

    def __init__(self, env: dict, log_path):
        self.url = f"http://127.0.0.1:{free_port()}"
        self.log = log_path
        with log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "gunicorn",
                    "backoffice.wsgi:application",
                    "--bind",
                    self.url.removeprefix("http://"),
                    "--workers=1",
                    f"--timeout={WORKER_TIMEOUT}",
                    "--graceful-timeout=1",
                    # Django is loaded once in the master: a new worker is serving at once
                    # (and a slow boot is not taken for a timeout).
                    "--preload",
                ],
                cwd=settings.BASE_DIR,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_until_serving(self, headers: dict, timeout: float = 30) -> None:
        """Until a GET of the API answers 200 (which also loads the URLconf in the worker)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited:\n{self.log.read_text()}")
            try:
                if requests.get(self.url + LIST, headers=headers, timeout=5).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"gunicorn not serving after {timeout}s:\n{self.log.read_text()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)

    def timeouts(self) -> int:
        return self.log.read_text().count("WORKER TIMEOUT")


@pytest.fixture
def client_and_body(transactional_db):
    """An API client's token and a cancellation body for an order Callisto knows."""
    order = OrderFactory(external_ids={"callisto": "4711"})
    OrderItemFactory(order=order, quantity=2)
    token = Token.objects.create(user=make_agent())
    headers = {"Authorization": f"Token {token.key}"}
    body = {
        "orderId": order.pk,
        "reasonId": CancellationReasonFactory().pk,
        "externalUserId": "005000000000001AAA",  # Callisto needs a Salesforce user
    }
    return headers, body


@pytest.fixture
def callisto_enabled(transactional_db):
    """The cancellation gets a delivery, so its commit kicks a worker through the broker."""
    ProviderSetting.objects.create(kind="callisto", base_url="http://127.0.0.1:9/")


@pytest.fixture
def broker():
    with silent_broker() as listener:
        yield listener


@pytest.fixture
def gunicorn(client_and_body, broker, tmp_path):
    headers, _body = client_and_body
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "backoffice.settings",
        "SECRET_KEY": "integration-test-secret-key-0123456789abcdefghijklmnop",
        "DEBUG": "0",
        "SECURE_SSL_REDIRECT": "0",
        "ALLOWED_HOSTS": "127.0.0.1",
        "DATABASE_URL": worker_database_url(),
        "CELERY_BROKER_URL": f"redis://127.0.0.1:{broker.getsockname()[1]}/0",
        "CELERY_TASK_ALWAYS_EAGER": "0",
        "CALLISTO_USERNAME": "storno",
        "CALLISTO_PASSWORD": "not-used",
    }
    env.pop("CELERY_BROKER_WRITE_URL", None)
    env.pop("CACHE_REDIS_URL", None)
    # The database cache (the throttles' counts): its table isn't made for the test settings'.
    manage = [sys.executable, "manage.py", "createcachetable"]
    subprocess.run(manage, cwd=settings.BASE_DIR, env=env, check=True, capture_output=True)
    server = Gunicorn(env, tmp_path / "gunicorn.log")
    try:
        server.wait_until_serving(headers)
        yield server
    finally:
        server.stop()


def post(server, headers, body, key):
    return requests.post(
        server.url + LIST,
        json=body,
        headers={**headers, "Idempotency-Key": key},
        timeout=30,
    )


def assert_killed(server, send, *args) -> None:
    """The request got no answer the client could use: gunicorn aborted its worker (SIGABRT, a
    SystemExit in the worker, which may still write a 500) or killed it (no answer at all)."""
    earlier = server.timeouts()
    try:
        response = send(server, *args)
    except requests.ConnectionError:
        pass
    else:
        assert response.status_code == 500, response.content
    assert server.timeouts() == earlier + 1, server.log.read_text()


def retry_promptly(server, headers, body, key):
    started = time.monotonic()
    response = post(server, headers, body, key)
    assert time.monotonic() - started < PROMPTLY
    return response


def test_a_worker_killed_after_the_commit_leaves_an_answer_the_retry_replays(
    callisto_enabled, gunicorn, client_and_body, broker
):
    headers, body = client_and_body

    assert_killed(gunicorn, post, headers, body, "killed-after-commit")

    assert connections_waiting(broker) >= 1  # it was killed while publishing the kick
    [cancellation] = Cancellation.objects.all()
    assert Delivery.objects.get().cancellation == cancellation
    assert IdempotencyKey.objects.get().state == IdempotencyKey.State.DONE

    retried = retry_promptly(gunicorn, headers, body, "killed-after-commit")

    assert retried.status_code == 201
    assert retried.headers["Idempotent-Replayed"] == "true"
    assert retried.json()["id"] == cancellation.pk
    assert retried.headers["Location"].endswith(f"{LIST}{cancellation.pk}")
    assert Cancellation.objects.count() == 1


class OrderLock(threading.Thread):
    """Another transaction holds the order's row lock until released."""

    def __init__(self, order_id: int):
        super().__init__(daemon=True)
        self.order_id = order_id
        self.locked = threading.Event()
        self.release = threading.Event()

    def run(self):
        try:
            with transaction.atomic():
                Order.objects.select_for_update().get(pk=self.order_id)
                self.locked.set()
                self.release.wait(60)
        finally:
            connection.close()


def test_a_worker_killed_inside_the_transaction_leaves_nothing_and_the_retry_runs_once(
    gunicorn, client_and_body
):
    """No provider is enabled here: the retry has no kick to hang on."""
    headers, body = client_and_body
    lock = OrderLock(body["orderId"])
    lock.start()
    assert lock.locked.wait(10)
    try:
        assert_killed(gunicorn, post, headers, body, "killed-inside")
    finally:
        lock.release.set()
        lock.join(10)

    assert not Cancellation.objects.exists()
    assert not IdempotencyKey.objects.exists()

    retried = retry_promptly(gunicorn, headers, body, "killed-inside")

    assert retried.status_code == 201, retried.content
    assert "Idempotent-Replayed" not in retried.headers
    assert Cancellation.objects.count() == 1
    assert IdempotencyKey.objects.get().state == IdempotencyKey.State.DONE
