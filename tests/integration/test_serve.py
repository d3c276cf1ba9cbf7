"""`make serve`: the Procfile's web (gunicorn), worker and beat under honcho, on PostgreSQL and
Redis from the environment (#17). A cancellation through the API reaches the provider fakes,
/readyz says ready, /metrics shows the counters of the worker through the web process, and
SIGTERM stops every process within a few seconds.

Run with STORNO_INTEGRATION=1 on PostgreSQL with Redis (see test_worker_delivery.py).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from django.conf import settings
from django.db import connection
from prometheus_client.parser import text_string_to_metric_families
from rest_framework.authtoken.models import Token

from providers.models import ProviderSetting
from tests.backoffice.test_idempotency import make_agent
from tests.backoffice.test_rundemo import descendants, free_port, running_processes
from tests.factories import CancellationReasonFactory
from tests.integration.test_worker_delivery import (  # noqa: F401 - fixtures
    BROKER_URL,
    SALESFORCE_ID,
    all_delivered,
    broker,
    fakes,
    new_order,
    wait_for,
    worker_database_url,
)

METRICS_TOKEN = "serve-test-metrics-token"
STOPPED_WITHIN = 10  # seconds: honcho's SIGTERM, then its SIGKILL after 5 s at the latest

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


def serve_environment(provider_fakes, port: int, var_dir: Path) -> dict[str, str]:
    callisto, rebilly = provider_fakes
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"CELERY_BROKER_WRITE_URL", "CACHE_REDIS_URL", "CELERY_TASK_ALWAYS_EAGER"}
    }
    env.update(
        DJANGO_SETTINGS_MODULE="backoffice.settings",
        SECRET_KEY="integration-test-secret-key-0123456789abcdefghijklmnop",
        DEBUG="0",
        SECURE_SSL_REDIRECT="0",
        ALLOWED_HOSTS="127.0.0.1",
        DATABASE_URL=worker_database_url(),
        CELERY_BROKER_URL=BROKER_URL,
        PORT=str(port),
        WEB_CONCURRENCY="2",
        METRICS_TOKEN=METRICS_TOKEN,
        STORNO_VAR_DIR=str(var_dir),
        PYTHONUNBUFFERED="1",
        CALLISTO_BASE_URL=callisto.url,
        CALLISTO_USERNAME=callisto.username,
        CALLISTO_PASSWORD=callisto.password,
        REBILLY_BASE_URL=rebilly.base_url,
        REBILLY_API_KEY=rebilly.api_key,
    )
    return env


def make_serve(env: dict, log: Path, metrics_dir: Path) -> subprocess.Popen:
    """`make serve` with this test run's virtualenv, which is installed already."""
    venv = Path(sys.executable).parent.parent
    with log.open("wb") as out:
        return subprocess.Popen(
            [
                shutil.which("make") or "make",
                "--no-print-directory",
                "-o",
                f"{venv}/.installed",  # don't reinstall the requirements
                "-o",
                "static/vendor/chart.umd.min.js",  # nor fetch Chart.js: make test did
                "serve",
                f"VENV={venv}",
                f"METRICS_DIR={metrics_dir}",
            ],
            cwd=settings.BASE_DIR,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def answers(url: str, **kwargs) -> requests.Response | None:
    try:
        return requests.get(url, timeout=15, **kwargs)
    except requests.RequestException:  # not listening yet, or a worker still booting
        return None


def metric_values(text: str) -> dict:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def wait_until_ready(process: subprocess.Popen, url: str, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        ready = answers(url + "/readyz")
        if ready is not None and ready.status_code == 200:
            return
        time.sleep(0.25)
    pytest.fail(
        f"/readyz did not answer 200 within {timeout} s; make serve said:\n{log.read_text()}"
    )


@pytest.fixture
def served(fakes, broker, transactional_db, tmp_path):  # noqa: F811 - imported fixtures
    for fake in fakes:
        fake.reset()
    for kind in ("callisto", "rebilly"):
        ProviderSetting.objects.create(kind=kind, timeout_seconds=5)
    port = free_port()
    log = tmp_path / "serve.log"
    process = make_serve(serve_environment(fakes, port, tmp_path / "var"), log, tmp_path / "m")
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(process, url, log)
        yield process, url, log
    finally:
        if process.poll() is None:
            for pid in descendants(process.pid) | {process.pid}:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            process.wait(timeout=10)


def test_make_serve_runs_storno_in_production_and_stops_on_sigterm(served, fakes):  # noqa: F811
    process, url, log = served
    callisto, rebilly = fakes
    order = new_order(4711)
    token = Token.objects.create(user=make_agent())

    created = requests.post(
        url + "/api/v1/order-cancellations/",
        json={
            "orderId": order.pk,
            "reasonId": CancellationReasonFactory().pk,
            "externalUserId": SALESFORCE_ID,
        },
        headers={"Authorization": f"Token {token.key}", "X-Request-ID": "serve-test-1"},
        timeout=30,
    )

    assert created.status_code == 201, created.content
    assert created.headers["X-Request-ID"] == "serve-test-1"
    wait_for(all_delivered(2), timeout=30, what="both deliveries, sent by the worker")
    assert callisto.effects(4711) == ["Add"]
    assert len(rebilly.received) == 1

    assert answers(url + "/metrics").status_code == 401  # METRICS_TOKEN is set
    scraped = answers(url + "/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    values = metric_values(scraped.text)
    for provider in ("callisto", "rebilly"):  # counted in the worker, read through the web
        labels = (("outcome", "delivered"), ("provider", provider))
        assert values[("storno_deliveries_total", labels)] == 1
        assert values[("storno_outbox_pending_deliveries", (("provider", provider),))] == 0
    assert values[("storno_cancellations_total", (("scope", "order"), ("via", "api")))] == 1

    every_process = descendants(process.pid)
    assert len(every_process) >= 6  # honcho, gunicorn and 2 workers, celery and its pool, beat
    stopping = time.monotonic()
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=STOPPED_WITHIN)
    while every_process & running_processes().keys() and (
        time.monotonic() - stopping < STOPPED_WITHIN
    ):
        time.sleep(0.1)

    assert every_process & running_processes().keys() == set(), log.read_text()
