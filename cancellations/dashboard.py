"""The dashboard's figures: read-only aggregations, one SQL query per panel.

Every function takes a DashboardFilter (a period of whole days in the user's time zone and an
optional channel) and returns plain data (dataclasses, lists, dicts), so the page, the CSV
export and the tests share them. Counting happens in the database (GROUP BY), never by looping
over rows in Python; the queries run unchanged on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from decimal import Decimal

from django.db.models import Count, Q, QuerySet
from django.db.models.functions import TruncDate
from django.utils import timezone

from providers.models import Delivery, provider_kind_choices
from providers.selectors import open_failures, open_staff_tasks
from providers.states import DeliveryStatus
from reasons.models import CancellationReason

from . import selectors
from .models import Cancellation, Order
from .states import CancellationStatus

DEFAULT_PERIOD_DAYS = 30
MAX_PERIOD_DAYS = 366
UPCOMING_SHOWN = 10


@dataclass(frozen=True)
class DashboardFilter:
    """Whole days from date_from to date_to (both included) in `zone`; channel "" = all."""

    date_from: date
    date_to: date
    zone: tzinfo
    channel: str = ""

    @classmethod
    def last_days(cls, *, zone: tzinfo, days: int = DEFAULT_PERIOD_DAYS, channel: str = ""):
        """The `days` days up to and including today in `zone`."""
        today = timezone.localdate(timezone=zone)
        return cls(today - timedelta(days=days - 1), today, zone, channel)

    @property
    def start(self) -> datetime:
        """The first moment of the period (inclusive)."""
        return _start_of_day(self.date_from, self.zone)

    @property
    def end(self) -> datetime:
        """The first moment after the period (exclusive)."""
        return _start_of_day(self.date_to + timedelta(days=1), self.zone)

    @property
    def days(self) -> list[date]:
        count = (self.date_to - self.date_from).days + 1
        return [self.date_from + timedelta(days=offset) for offset in range(count)]

    def as_query(self) -> dict[str, str]:
        """The filter as the dashboard form's GET parameters."""
        query = {"date_from": self.date_from.isoformat(), "date_to": self.date_to.isoformat()}
        if self.channel:
            query["channel"] = self.channel
        return query


def _start_of_day(day: date, zone: tzinfo) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min), zone)


def channels() -> list[str]:
    """Every channel some order was placed in, for the filter's select."""
    return selectors.order_channels()


def cancellations_created(flt: DashboardFilter) -> QuerySet[Cancellation]:
    """Cancellations made in the period (any status), in the filter's channel."""
    cancellations = Cancellation.objects.filter(
        created_time__gte=flt.start, created_time__lt=flt.end
    )
    if flt.channel:
        cancellations = cancellations.filter(order__channel=flt.channel)
    return cancellations


def _counted_cancellations(flt: DashboardFilter) -> QuerySet[Cancellation]:
    """The ones the figures count: an undone (revoked) cancellation cancelled nothing."""
    return cancellations_created(flt).exclude(status=CancellationStatus.REVOKED)


# --- cancellations per day and reason ----------------------------------------------------------


@dataclass(frozen=True)
class ReasonColumn:
    id: int
    label: str
    total: int


@dataclass(frozen=True)
class DayRow:
    day: date
    counts: list[int]  # one per ReasonColumn, same order
    total: int


@dataclass(frozen=True)
class DailyByReason:
    reasons: list[ReasonColumn]
    rows: list[DayRow]  # every day of the period, days without cancellations included
    total: int

    def chart_data(self) -> dict:
        """What static/js/dashboard.js draws: one stacked dataset per reason."""
        return {
            "labels": [row.day.isoformat() for row in self.rows],
            "datasets": [
                {"label": reason.label, "data": [row.counts[index] for row in self.rows]}
                for index, reason in enumerate(self.reasons)
            ],
        }


def daily_by_reason(flt: DashboardFilter) -> DailyByReason:
    """Cancellations per day (in the filter's zone) and reason; one query."""
    grouped = (
        _counted_cancellations(flt)
        .annotate(day=TruncDate("created_time", tzinfo=flt.zone))
        .values(
            "day",
            "reason_id",
            "reason__subject",
            "reason__subject_de",
            "reason__subject_en",
            "reason__subject_tr",
        )
        .annotate(count=Count("id"))
        .order_by("day", "reason_id")
    )
    counts: dict[tuple[date, int], int] = {}
    labels: dict[int, str] = {}
    totals: dict[int, int] = {}
    for group in grouped:
        key = (group["day"], group["reason_id"])
        counts[key] = counts.get(key, 0) + group["count"]
        totals[group["reason_id"]] = totals.get(group["reason_id"], 0) + group["count"]
        labels[group["reason_id"]] = CancellationReason(
            subject=group["reason__subject"],
            subject_de=group["reason__subject_de"],
            subject_en=group["reason__subject_en"],
            subject_tr=group["reason__subject_tr"],
        ).localized_subject()
    # The most frequent reason first: the bottom of each stacked bar, the first table column.
    reason_ids = sorted(totals, key=lambda reason_id: (-totals[reason_id], labels[reason_id]))
    rows = []
    for day in flt.days:
        day_counts = [counts.get((day, reason_id), 0) for reason_id in reason_ids]
        rows.append(DayRow(day=day, counts=day_counts, total=sum(day_counts)))
    return DailyByReason(
        reasons=[ReasonColumn(id=r, label=labels[r], total=totals[r]) for r in reason_ids],
        rows=rows,
        total=sum(totals.values()),
    )


# --- cancellation rate per channel --------------------------------------------------------------


@dataclass(frozen=True)
class ChannelRate:
    channel: str
    orders_placed: int
    orders_cancelled: int

    @property
    def rate_percent(self) -> Decimal | None:
        """Cancelled orders per 100 orders placed; None without orders placed."""
        if not self.orders_placed:
            return None
        rate = Decimal(self.orders_cancelled * 100) / Decimal(self.orders_placed)
        return rate.quantize(Decimal("0.1"))


def rate_by_channel(flt: DashboardFilter) -> list[ChannelRate]:
    """Per channel: orders placed in the period, and orders with a cancellation made in the
    period that was not undone (whenever the order was placed). Two queries."""
    orders = Order.objects.filter(placed_at__gte=flt.start, placed_at__lt=flt.end)
    if flt.channel:
        orders = orders.filter(channel=flt.channel)
    placed = dict(
        orders.values("channel").annotate(count=Count("id")).values_list("channel", "count")
    )
    cancelled = dict(
        _counted_cancellations(flt)
        .values("order__channel")
        .annotate(count=Count("order_id", distinct=True))
        .values_list("order__channel", "count")
    )
    return [
        ChannelRate(channel, placed.get(channel, 0), cancelled.get(channel, 0))
        for channel in sorted(placed.keys() | cancelled.keys())
    ]


# --- deliveries that need attention --------------------------------------------------------------


@dataclass(frozen=True)
class ProviderDeliveries:
    provider: str
    label: str
    failed: int
    retrying: int


def retrying_deliveries() -> Q:
    """Pending again after at least one try: waiting for the next attempt."""
    return Q(status=DeliveryStatus.PENDING, attempts__gt=0)


def failed_deliveries() -> Q:
    """Failed for good and still needing someone: a failure staff resolved, or one an undo
    made moot, is not counted."""
    return open_failures()


def deliveries_by_provider() -> list[ProviderDeliveries]:
    """Failed and retrying deliveries per provider, right now (whatever the period: a failure
    from before it still needs someone). One query."""
    grouped = (
        Delivery.objects.filter(failed_deliveries() | retrying_deliveries())
        .values("provider")
        .annotate(
            failed=Count("id", filter=failed_deliveries()),
            retrying=Count("id", filter=retrying_deliveries()),
        )
        .order_by("provider")
    )
    labels = dict(provider_kind_choices())
    return [
        ProviderDeliveries(
            provider=group["provider"],
            label=str(labels.get(group["provider"], group["provider"])),
            failed=group["failed"],
            retrying=group["retrying"],
        )
        for group in grouped
    ]


STAFF_TASKS_SHOWN = 20


@dataclass(frozen=True)
class StaffTasks:
    """Changes a provider couldn't be told, for staff to make there by hand: apart from the
    failures (a task is a skipped delivery, never failed or retried)."""

    count: int
    oldest: list[Delivery]


def staff_tasks(shown: int = STAFF_TASKS_SHOWN) -> StaffTasks:
    """The open tasks right now (whatever the period), oldest first. Two queries."""
    tasks = open_staff_tasks()
    return StaffTasks(count=tasks.count(), oldest=list(tasks[:shown]))


# --- scheduled cancellations ----------------------------------------------------------------------


@dataclass(frozen=True)
class UpcomingCancellation:
    id: str
    order_id: int
    order_number: str
    channel: str
    reason: str
    is_whole_order: bool
    churn_time: datetime


def upcoming_cancellations(
    flt: DashboardFilter, *, now: datetime | None = None, limit: int = UPCOMING_SHOWN
) -> list[UpcomingCancellation]:
    """The next scheduled cancellations (confirmed, effective in the future), soonest first,
    in the filter's channel, whatever the period. One query."""
    scheduled = Cancellation.objects.filter(
        status=CancellationStatus.CONFIRMED, churn_time__gt=now or timezone.now()
    )
    if flt.channel:
        scheduled = scheduled.filter(order__channel=flt.channel)
    scheduled = scheduled.select_related("order", "reason").order_by("churn_time", "id")[:limit]
    return [
        UpcomingCancellation(
            id=cancellation.pk,
            order_id=cancellation.order_id,
            order_number=cancellation.order.number,
            channel=cancellation.order.channel,
            reason=str(cancellation.reason),
            is_whole_order=cancellation.is_whole_order,
            churn_time=cancellation.churn_time,
        )
        for cancellation in scheduled
    ]


# --- CSV export ----------------------------------------------------------------------------------

CSV_COLUMNS = [
    "id",
    "order_number",
    "channel",
    "reason_code",
    "reason_subject",
    "status",
    "whole_order",
    "created",
    "effective",
    "prorated_credit",
    "line_item_subtotal",
    "currency",
    "created_by",
]
# A cell starting with one of these is a formula to spreadsheet programs.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class _CsvRowMaker:
    zone: tzinfo

    def text(self, value: str) -> str:
        return f"'{value}" if value.startswith(_FORMULA_STARTS) else value

    def moment(self, value: datetime | None) -> str:
        return timezone.localtime(value, self.zone).isoformat() if value else ""

    def row(self, cancellation: Cancellation) -> list[str]:
        reason = cancellation.reason
        creator = cancellation.created_by
        return [
            self.text(cancellation.pk),
            self.text(cancellation.order.number),
            self.text(cancellation.order.channel),
            "" if reason.omnitron_id is None else str(reason.omnitron_id),
            self.text(reason.subject),
            cancellation.status,
            "true" if cancellation.is_whole_order else "false",
            self.moment(cancellation.created_time),
            self.moment(cancellation.churn_time),
            str(cancellation.prorated_credit_amount),
            str(cancellation.line_item_subtotal_amount),
            cancellation.currency,
            self.text(creator.get_username()) if creator else "",
        ]


def export_rows(flt: DashboardFilter) -> Iterator[list[str]]:
    """The CSV export: a header, then every cancellation made in the period in the channel,
    undone ones included (their status says so), oldest first. One query, read in chunks;
    times in ISO 8601 with the filter zone's offset."""
    yield CSV_COLUMNS
    maker = _CsvRowMaker(flt.zone)
    cancellations = (
        cancellations_created(flt)
        .select_related("order", "reason", "created_by")
        .order_by("created_time", "id")
    )
    for cancellation in cancellations.iterator(chunk_size=1000):
        yield maker.row(cancellation)
