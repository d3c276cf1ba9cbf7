"""Prometheus metrics at GET /metrics (#17).

Counters and histograms are counted where things happen (deliveries in providers.outcomes,
cancellations in the services, requests in RequestMetricsMiddleware, tasks by Celery's
signals). With PROMETHEUS_MULTIPROC_DIR set (`make serve`, the Procfile) every gunicorn worker
and Celery process writes its values to files there and a scrape adds them up, so /metrics
tells the same from whichever web process answers. Without it (runserver, tests) each process
counts for itself.

Gauges of the outbox are not counted but read from the database at scrape time
(providers.metrics, added through add_scrape_collector), so they are the same everywhere too.

Who may read: with METRICS_TOKEN set, a request with `Authorization: Bearer <METRICS_TOKEN>`;
without it, only a request from this machine (loopback) that came through no proxy.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import time

from celery.signals import task_postrun
from django.conf import settings
from django.http import HttpResponse
from django.views.decorators.http import require_safe
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

DELIVERIES = Counter(
    "storno_deliveries",
    "Delivery attempts by provider and outcome (delivered, retry, failed, skipped, abandoned).",
    ["provider", "outcome"],
)
DELIVERY_SECONDS = Histogram(
    "storno_delivery_seconds",
    "How long one delivery attempt took, request and answer, by provider.",
    ["provider"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
CANCELLATIONS = Counter(
    "storno_cancellations",
    "Cancellations made, by channel (api, web, admin, callisto, task…) and scope "
    "(order: the whole order; items: some of its items).",
    ["via", "scope"],
)
BULK_ORDERS = Counter(
    "storno_bulk_orders",
    "Orders a bulk cancellation settled, by outcome (cancelled, skipped, failed).",
    ["outcome"],
)
REQUEST_SECONDS = Histogram(
    "storno_http_request_seconds",
    "Time to answer a request, by view (its URL name), method and status class.",
    ["view", "method", "status"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
TASKS = Counter(
    "storno_celery_tasks",
    "Celery tasks run, by task and state (SUCCESS, FAILURE, RETRY…).",
    ["task", "state"],
)

METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
UNRESOLVED = "<unresolved>"

_scrape_collectors: list = []


def add_scrape_collector(collector) -> None:
    """A collector asked at each scrape (providers.metrics' outbox gauges)."""
    if collector not in _scrape_collectors:
        _scrape_collectors.append(collector)


def count_cancellations(*, via: str, scope: str, count: int = 1) -> None:
    if count:
        CANCELLATIONS.labels(via=via or "unknown", scope=scope).inc(count)


def count_bulk_orders(counts: dict[str, int]) -> None:
    for outcome, count in counts.items():
        if count:
            BULK_ORDERS.labels(outcome=outcome).inc(count)


def observe_delivery(*, provider: str, outcome: str, seconds: float | None) -> None:
    DELIVERIES.labels(provider=provider, outcome=outcome).inc()
    if seconds is not None:
        DELIVERY_SECONDS.labels(provider=provider).observe(seconds)


@task_postrun.connect(dispatch_uid="storno-metrics-task")
def count_task(sender=None, state=None, **_kwargs) -> None:
    name = getattr(sender, "name", None)
    if name:
        TASKS.labels(task=name, state=state or "UNKNOWN").inc()


class RequestMetricsMiddleware:
    """Right after RequestIdMiddleware: the latency of everything below it, labelled with the
    URL name of the view that answered (a fixed set, unlike paths) or <unresolved>."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        REQUEST_SECONDS.labels(
            view=(match.view_name if match is not None else "") or UNRESOLVED,
            method=request.method if request.method in METHODS else "other",
            status=f"{response.status_code // 100}xx",
        ).observe(time.perf_counter() - started)
        return response


class _ThisProcess:
    """The default registry's metrics (this process's counters, Python's process metrics)."""

    def collect(self):
        return REGISTRY.collect()


def scrape_registry() -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=True)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(_ThisProcess())
    for collector in _scrape_collectors:
        registry.register(collector)
    return registry


def _from_loopback(request) -> bool:
    if "HTTP_X_FORWARDED_FOR" in request.META or "HTTP_FORWARDED" in request.META:
        return False  # a proxy on this machine passed it on: it came from elsewhere
    try:
        return ipaddress.ip_address(request.META.get("REMOTE_ADDR", "")).is_loopback
    except ValueError:
        return False


def refusal(request) -> HttpResponse | None:
    """None when the request may read the metrics, else the 401 or 403 to answer."""
    token = getattr(settings, "METRICS_TOKEN", "")
    if not token:
        if _from_loopback(request):
            return None
        return HttpResponse(
            "Forbidden: set METRICS_TOKEN to read the metrics from another machine.\n",
            status=403,
            content_type="text/plain",
        )
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode()):
        return None
    response = HttpResponse("Unauthorized\n", status=401, content_type="text/plain")
    response["WWW-Authenticate"] = 'Bearer realm="metrics"'
    return response


@require_safe
def metrics_view(request):
    refused = refusal(request)
    if refused is not None:
        return refused
    response = HttpResponse(generate_latest(scrape_registry()), content_type=CONTENT_TYPE_LATEST)
    response["Cache-Control"] = "no-store"
    return response
