"""GET /metrics: who may read it, what it counts, and that counts add up across processes
(#17)."""

import os
import subprocess
import sys
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from backoffice.tasks import purge_expired_idempotency_keys
from cancellations import bulk
from cancellations.errors import CancellationError
from cancellations.filter_parsing import parse_order_filter
from cancellations.models import AuditEntry
from cancellations.services.quoting import ItemPick
from providers import dispatch
from providers.models import Delivery, ProviderSetting
from tests.factories import CancellationReasonFactory, OrderFactory, OrderItemFactory
from tests.providers.outbox_support import (
    cancel,
    make_provider_fixture,  # noqa: F401 - the fixture
)

TOKEN = "metrics-test-token-0123456789"


def sample(name, **labels):
    return REGISTRY.get_sample_value(name, labels) or 0


def scraped(response) -> dict:
    """{(sample name, frozenset(labels)): value} of a /metrics answer."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(response.content.decode())
        for s in family.samples
    }


# --- who may read -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_without_a_token_this_machine_may_read_the_metrics(client):
    response = client.get("/metrics", REMOTE_ADDR="127.0.0.1")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    assert b"# TYPE storno_deliveries_total counter" in response.content


@pytest.mark.parametrize(
    "remote, headers",
    [
        ("10.1.2.3", {}),
        ("127.0.0.1", {"HTTP_X_FORWARDED_FOR": "203.0.113.9"}),  # a proxy on this machine
    ],
    ids=["another-machine", "through-a-local-proxy"],
)
def test_without_a_token_nobody_else_may(client, remote, headers):
    response = client.get("/metrics", REMOTE_ADDR=remote, **headers)

    assert response.status_code == 403
    assert b"METRICS_TOKEN" in response.content


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong-token", f"Basic {TOKEN}", f"Bearer {TOKEN}x"],
    ids=["none", "wrong", "not-bearer", "longer"],
)
def test_with_a_token_a_request_without_it_is_401(client, settings, authorization):
    settings.METRICS_TOKEN = TOKEN
    headers = {"HTTP_AUTHORIZATION": authorization} if authorization else {}

    response = client.get("/metrics", REMOTE_ADDR="127.0.0.1", **headers)

    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.django_db
def test_with_a_token_the_bearer_reads_from_anywhere(client, settings):
    settings.METRICS_TOKEN = TOKEN

    response = client.get("/metrics", REMOTE_ADDR="10.1.2.3", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")

    assert response.status_code == 200


# --- what it tells ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_outbox_gauges_count_unsettled_deliveries_and_the_oldest_ones_age(
    client, make_provider
):
    make_provider("alpha")
    make_provider("beta")
    ProviderSetting.objects.filter(kind="beta").update(enabled=False)
    cancel()
    cancel()
    Delivery.objects.filter(provider="alpha").update(
        created_at=timezone.now() - timedelta(minutes=20)
    )

    with_counts = scraped(client.get("/metrics", REMOTE_ADDR="127.0.0.1"))

    alpha, beta = frozenset({("provider", "alpha")}), frozenset({("provider", "beta")})
    assert with_counts[("storno_outbox_pending_deliveries", alpha)] == 2
    assert with_counts[("storno_outbox_oldest_pending_age_seconds", alpha)] >= 20 * 60
    assert with_counts[("storno_outbox_pending_deliveries", beta)] == 0
    assert with_counts[("storno_outbox_oldest_pending_age_seconds", beta)] == 0


@pytest.mark.django_db
def test_an_attempt_moves_the_delivery_counter_and_histogram(make_provider):
    make_provider("alpha")
    cancel()
    before = sample("storno_deliveries_total", provider="alpha", outcome="delivered")
    timed = sample("storno_delivery_seconds_count", provider="alpha")

    dispatch.deliver()

    assert sample("storno_deliveries_total", provider="alpha", outcome="delivered") == before + 1
    assert sample("storno_delivery_seconds_count", provider="alpha") == timed + 1


@pytest.mark.django_db
def test_a_cancellation_is_counted_by_channel_and_scope(make_provider, order_with_items):
    make_provider("alpha")
    whole = sample("storno_cancellations_total", via="api", scope="order")
    some = sample("storno_cancellations_total", via="api", scope="items")
    item = order_with_items.items.first()

    cancel()
    cancel(order_with_items, items=[ItemPick(order_item_id=item.pk, quantity=1)])

    assert sample("storno_cancellations_total", via="api", scope="order") == whole + 1
    assert sample("storno_cancellations_total", via="api", scope="items") == some + 1


@pytest.mark.django_db
def test_a_refused_cancellation_is_not_counted(make_provider):
    make_provider("alpha")
    whole = sample("storno_cancellations_total", via="api", scope="order")

    with pytest.raises(CancellationError):
        cancel(reason=None)

    assert sample("storno_cancellations_total", via="api", scope="order") == whole


@pytest.mark.django_db
def test_a_bulk_job_counts_its_orders_by_outcome(django_capture_on_commit_callbacks):
    for quantity in (1, 1, 0):
        OrderItemFactory(order=OrderFactory(channel="/shop/de"), quantity=quantity)
    before = {
        outcome: sample("storno_bulk_orders_total", outcome=outcome)
        for outcome in ("cancelled", "skipped")
    }
    by_bulk = sample("storno_cancellations_total", via="api", scope="order")

    with django_capture_on_commit_callbacks(execute=True):
        bulk.start_bulk_cancellation(
            parse_order_filter({"folders": [{"folder": "/shop/de"}]}),
            reason=CancellationReasonFactory(),
            actor=None,
            via=AuditEntry.Via.API,
        )

    assert sample("storno_bulk_orders_total", outcome="cancelled") == before["cancelled"] + 2
    assert sample("storno_bulk_orders_total", outcome="skipped") == before["skipped"] + 1
    assert sample("storno_cancellations_total", via="api", scope="order") == by_bulk + 2


@pytest.mark.django_db
def test_requests_are_timed_per_view_name(client):
    labels = {"view": "healthz", "method": "GET", "status": "2xx"}
    unresolved = {"view": "<unresolved>", "method": "GET", "status": "4xx"}
    before = sample("storno_http_request_seconds_count", **labels)
    missing = sample("storno_http_request_seconds_count", **unresolved)

    client.get("/healthz")
    client.get("/no/such/page/123")

    assert sample("storno_http_request_seconds_count", **labels) == before + 1
    assert sample("storno_http_request_seconds_count", **unresolved) == missing + 1


@pytest.mark.django_db
def test_celery_tasks_are_counted_by_name_and_state():
    name = purge_expired_idempotency_keys.name
    before = sample("storno_celery_tasks_total", task=name, state="SUCCESS")

    purge_expired_idempotency_keys.delay()

    assert sample("storno_celery_tasks_total", task=name, state="SUCCESS") == before + 1


# --- across processes -------------------------------------------------------------------------

COUNT_ONE = """
import django
django.setup()
from backoffice.metrics import observe_delivery
observe_delivery(provider="alpha", outcome="delivered", seconds=0.2)
"""
SCRAPE = """
import django
django.setup()
from prometheus_client import generate_latest
from backoffice.metrics import scrape_registry
print(generate_latest(scrape_registry()).decode())
"""


def test_counters_of_separate_processes_add_up_in_one_scrape(tmp_path):
    env = {
        **os.environ,
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "tests.settings",
    }

    def run(code):
        return subprocess.run(
            [sys.executable, "-c", code],
            env=env,
            cwd=settings.BASE_DIR,
            capture_output=True,
            text=True,
            check=True,
        ).stdout

    run(COUNT_ONE)  # a gunicorn worker
    run(COUNT_ONE)  # a Celery process
    exposition = run(SCRAPE)  # another gunicorn worker answers the scrape

    assert 'storno_deliveries_total{outcome="delivered",provider="alpha"} 2.0' in exposition
    assert 'storno_delivery_seconds_count{provider="alpha"} 2.0' in exposition
