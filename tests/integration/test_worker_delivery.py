"""The outbox end to end: PostgreSQL, a Redis broker, real `celery -A backoffice worker`
processes and the strict provider fakes over HTTP.

Run with STORNO_INTEGRATION=1 and DATABASE_URL pointing at PostgreSQL, e.g.

    STORNO_INTEGRATION=1 DATABASE_URL=postgres://postgres@127.0.0.1:5432/storno_outbox \
        .venv/bin/pytest tests/integration/test_worker_delivery.py

The worker processes use the test database (pytest-django's test_<name>, with committed data:
transactional_db) and reach the fakes, which run in this process on ephemeral ports, through
CALLISTO_BASE_URL / REBILLY_BASE_URL. Beat is played by the test: it sends deliver_due through
the broker, as beat does every minute.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from django.conf import settings
from django.db import close_old_connections, connection

from backoffice.celery import app
from cancellations.models import AuditEntry
from cancellations.services import writing
from providers.fakes.callisto import CallistoFake
from providers.fakes.rebilly import RebillyFake
from providers.models import AttemptOutcome, Delivery, ProviderSetting
from providers.states import DeliveryStatus
from providers.tasks import deliver_due
from tests.factories import CancellationReasonFactory, OrderFactory, OrderItemFactory

# The broker the suite was configured with (CI: Redis), so that what the test process publishes
# and what the worker consumes are one queue; Redis db 5 when the suite runs on the embedded one.
_configured = os.environ.get("CELERY_BROKER_URL", "")
BROKER_URL = os.environ.get("STORNO_INTEGRATION_BROKER_URL") or (
    _configured if _configured.startswith(("redis://", "amqp://")) else "redis://127.0.0.1:6379/5"
)
SALESFORCE_ID = "005000000000001AAA"
# The orders the strict Callisto fake knows (it answers 404 for any other Id).
KNOWN_CALLISTO_IDS = {4711, 4712, *range(5000, 5050)}
PROVIDER_TIMEOUT = 5  # seconds, per request
CLAIM_MARGIN = 2  # seconds: a dead worker's delivery is taken over after timeout + margin

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


def worker_database_url() -> str:
    db = connection.settings_dict  # after django_db_setup: the test database
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or 5432
    return f"postgres://{db['USER']}{password}@{host}:{port}/{db['NAME']}"


class Worker:
    """One `celery -A backoffice worker` process group, started and killed by its id."""

    def __init__(self, env: dict, log_dir: Path):
        self.name = f"outbox-{uuid.uuid4().hex[:8]}@localhost"
        self.log = log_dir / f"{self.name}.log"
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "backoffice",
                    "worker",
                    "--loglevel=INFO",
                    "--concurrency=4",
                    "--without-gossip",
                    "--without-mingle",
                    "--without-heartbeat",
                    "-Q",
                    settings.CELERY_WORKER_QUEUES,
                    "-n",
                    self.name,
                ],
                cwd=settings.BASE_DIR,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: kill takes the children too
            )
        self.wait_until_ready()

    def wait_until_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"worker exited:\n{self.log.read_text()}")
            if b" ready." in self.log.read_bytes():
                return
            time.sleep(0.2)
        raise RuntimeError(f"worker not ready after {timeout}s:\n{self.log.read_text()}")

    def kill(self) -> None:
        """SIGKILL: no warm shutdown, no acks, no cleanup — like a lost host."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture(scope="module")
def fakes():
    # Rebilly knows the orders new_order makes (4711, 4712, 5000…5049).
    rebilly_orders = [f"ord_{n}" for n in (4711, 4712, *range(5000, 5050))]
    with (
        CallistoFake(known_ids=KNOWN_CALLISTO_IDS) as callisto,
        RebillyFake(orders=rebilly_orders) as rebilly,
    ):
        yield callisto, rebilly


@pytest.fixture(scope="module")
def broker():
    """This process sends its Celery messages through Redis, not eagerly."""
    saved = {key: app.conf[key] for key in ("broker_url", "task_always_eager")}
    app.conf.update(broker_url=BROKER_URL, task_always_eager=False)
    app.control.purge()  # messages left over by an earlier run
    yield
    app.conf.update(saved)


@pytest.fixture
def start_worker(transactional_db, fakes, broker, tmp_path):
    callisto, rebilly = fakes
    callisto.reset()
    rebilly.reset()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "backoffice.settings",
        "SECRET_KEY": "integration-test-secret-key-0123456789abcdefghijklmnop",
        "DEBUG": "0",
        "DATABASE_URL": worker_database_url(),
        "CELERY_BROKER_URL": BROKER_URL,
        "CALLISTO_BASE_URL": callisto.url,
        "CALLISTO_USERNAME": callisto.username,
        "CALLISTO_PASSWORD": callisto.password,
        "REBILLY_BASE_URL": rebilly.base_url,
        "REBILLY_API_KEY": rebilly.api_key,
        "DELIVERY_CLAIM_MARGIN_SECONDS": str(CLAIM_MARGIN),
        "DELIVERY_BACKOFF_BASE_SECONDS": "1",
    }
    for kind in ("callisto", "rebilly"):
        ProviderSetting.objects.create(kind=kind, timeout_seconds=PROVIDER_TIMEOUT)
    workers = []

    def start() -> Worker:
        workers.append(Worker(env, tmp_path))
        return workers[-1]

    yield start
    for worker in workers:
        worker.stop()


def new_order(callisto_id: int):
    order = OrderFactory(
        external_ids={"callisto": str(callisto_id), "rebilly": f"ord_{callisto_id}"}
    )
    OrderItemFactory(order=order)
    return order


def cancel(order, reason=None):
    """Through the service, as the API does: its commit kicks the worker through Redis."""
    return writing.cancel_order(
        order,
        reason=reason or CancellationReasonFactory(),
        actor=None,
        via=AuditEntry.Via.API,
        external_user_id=SALESFORCE_ID,
    )


def wait_for(condition, *, timeout: float, sweep: bool = False, what: str = "") -> None:
    """Poll until condition() holds; with sweep=True, play beat: a deliver_due every second."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        if sweep:
            deliver_due.delay()
        time.sleep(1 if sweep else 0.1)
    states = list(Delivery.objects.values_list("provider", "action", "status", "attempts"))
    raise AssertionError(f"timed out waiting for {what}; deliveries: {states}")


def all_delivered(count: int):
    return lambda: Delivery.objects.filter(status=DeliveryStatus.DELIVERED).count() == count


def test_a_cancellation_reaches_both_providers_exactly_once(start_worker, fakes):
    callisto, rebilly = fakes
    start_worker()

    cancellation = cancel(new_order(4711))

    wait_for(all_delivered(2), timeout=20, what="both deliveries")
    assert callisto.received_count(4711) == 1
    assert callisto.effects(4711) == ["Add"]
    assert rebilly.effects(cancellation.pk) == ["created"]


def test_a_retry_goes_at_its_next_try_without_waiting_for_a_sweep(start_worker, fakes):
    _callisto, rebilly = fakes
    rebilly.fail_next(1, status=503)  # the first try fails; the backoff is 0.5–1 s here
    start_worker()

    cancellation = cancel(new_order(4712))

    # No sweep is played: only the message scheduled for its next_attempt_at can send it.
    wait_for(all_delivered(2), timeout=20, what="the retried delivery")
    retried = Delivery.objects.get(provider="rebilly")
    assert list(retried.attempt_log.order_by("number").values_list("outcome", flat=True)) == [
        AttemptOutcome.RETRY,
        AttemptOutcome.DELIVERED,
    ]
    assert rebilly.effects(cancellation.pk) == ["created"]


def test_a_worker_killed_mid_delivery_loses_nothing_and_doubles_no_effect(start_worker, fakes):
    callisto, rebilly = fakes
    callisto.delay_next(1, seconds=4)  # the fakes act at once but answer late
    rebilly.delay_next(1, seconds=4)
    worker = start_worker()
    cancellation = cancel(new_order(4712))
    wait_for(
        lambda: callisto.received_count(4712) == 1 and len(rebilly.received) == 1,
        timeout=20,
        what="both requests to be in the air",
    )

    worker.kill()

    assert set(Delivery.objects.values_list("status", flat=True)) == {DeliveryStatus.IN_FLIGHT}
    start_worker()
    wait_for(all_delivered(2), timeout=PROVIDER_TIMEOUT + CLAIM_MARGIN + 30, sweep=True)
    assert callisto.received_count(4712) == 2  # sent again after the lease ran out…
    assert callisto.effects(4712) == ["Add"]  # …and the repeat changed nothing
    assert [e for e in rebilly.effects(cancellation.pk) if e != "unchanged"] == ["created"]
    for delivery in Delivery.objects.all():
        outcomes = list(delivery.attempt_log.values_list("outcome", flat=True))
        assert outcomes == [AttemptOutcome.ABANDONED, AttemptOutcome.DELIVERED]


def test_fifty_concurrent_cancellations_are_all_delivered_once(start_worker, fakes):
    callisto, rebilly = fakes
    start_worker()
    ids = range(5000, 5050)
    orders = [new_order(callisto_id) for callisto_id in ids]
    reason = CancellationReasonFactory()

    def cancel_in_own_connection(order):
        close_old_connections()
        try:
            return cancel(order, reason).pk
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=10) as pool:
        cancellation_ids = list(pool.map(cancel_in_own_connection, orders))

    wait_for(all_delivered(100), timeout=60, what="100 deliveries")
    assert all(callisto.received_count(i) == 1 and callisto.effects(i) == ["Add"] for i in ids)
    assert all(rebilly.effects(pk) == ["created"] for pk in cancellation_ids)
    assert len(callisto.received) == len(rebilly.received) == 50
