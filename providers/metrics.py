"""The outbox's gauges, read from the database at each scrape of /metrics (backoffice.metrics),
so that every web process tells the same, whichever one Prometheus asks:

    storno_outbox_pending_deliveries{provider}          not yet settled (pending or in flight)
    storno_outbox_oldest_pending_age_seconds{provider}  how long the oldest of them has waited

Every provider with a setting is reported, 0 when nothing waits, so an alert on the age never
sees a series vanish. Two queries; the unsettled rows are few and indexed by status.
"""

from __future__ import annotations

import logging

from django.db import DatabaseError
from django.db.models import Count, Min
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily

from .models import Delivery, ProviderSetting
from .states import DeliveryStatus

logger = logging.getLogger(__name__)
UNSETTLED = (DeliveryStatus.PENDING, DeliveryStatus.IN_FLIGHT)


def unsettled_by_provider() -> dict[str, tuple[int, float]]:
    """{provider: (unsettled deliveries, age of the oldest in seconds)}."""
    now = timezone.now()
    found = dict.fromkeys(ProviderSetting.objects.values_list("kind", flat=True), (0, 0.0))
    rows = (
        Delivery.objects.filter(status__in=UNSETTLED)
        .order_by()
        .values("provider")
        .annotate(count=Count("id"), oldest=Min("created_at"))
    )
    for row in rows:
        found[row["provider"]] = (row["count"], max((now - row["oldest"]).total_seconds(), 0.0))
    return found


class OutboxCollector:
    def collect(self):
        pending = GaugeMetricFamily(
            "storno_outbox_pending_deliveries",
            "Deliveries not yet settled (pending or in flight), by provider.",
            labels=["provider"],
        )
        oldest = GaugeMetricFamily(
            "storno_outbox_oldest_pending_age_seconds",
            "Seconds since the oldest unsettled delivery was written, by provider (0: none).",
            labels=["provider"],
        )
        try:
            found = unsettled_by_provider()
        except DatabaseError:
            # No gauge rather than a wrong one: an alert on its absence says the rest.
            logger.warning("Outbox gauges: the database did not answer.", exc_info=True)
            return
        for provider, (count, age) in sorted(found.items()):
            pending.add_metric([provider], count)
            oldest.add_metric([provider], age)
        yield pending
        yield oldest
