"""Bulk cancellation: every order a JOC-style filter selects (cancellations.order_filter),
previewed first, then cancelled by a Celery job that reports its progress.

    preview_bulk_cancellation   count and sample of what a filter would hit; writes nothing
    start_bulk_cancellation     validate everything, write the job, queue it after the commit
                                (tasks.queue_bulk_cancellation)

The job itself runs in cancellations.bulk_runner (claiming, leases, resuming) and
cancellations.bulk_batch (one batch of orders in one transaction).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.db.models import Count
from django.utils import timezone
from django.utils.translation import gettext as _

from . import audit as audit_log
from . import tasks
from .errors import CancellationError
from .models import (
    BulkCancellation,
    CanceledBy,
    Order,
)
from .order_filter import OrderFilter
from .services import quoting

logger = logging.getLogger(__name__)

SAMPLE_SIZE = 20


# --- preview -----------------------------------------------------------------------------------


@dataclass
class BulkPreview:
    total: int  # orders the filter selects
    to_cancel: int  # of those, in a status the job cancels (it may still find nothing left)
    to_skip: int
    by_status: dict[str, int]
    sample: list[tuple[Order, str]]  # (order, why it is skipped or "")
    missing_order_refs: list


def preview_bulk_cancellation(order_filter: OrderFilter, *, now=None) -> BulkPreview:
    """What the filter would hit, counted in the database: a constant number of queries
    however many orders match."""
    orders = order_filter.queryset(now=now)
    by_status = {
        row["status"]: row["n"]
        for row in orders.order_by().values("status").annotate(n=Count("pk"))
    }
    to_cancel = sum(n for status, n in by_status.items() if order_filter.takes_status(status))
    total = sum(by_status.values())
    sample = [
        (order, order_filter.skip_reason(order))
        for order in orders.order_by("-placed_at", "-id")[:SAMPLE_SIZE]
    ]
    missing = []
    if order_filter.by_order_refs:
        missing = order_filter.missing_order_refs(
            orders.filter(order_filter.q(now)).only("pk", "number")
        )
    return BulkPreview(
        total=total,
        to_cancel=to_cancel,
        to_skip=total - to_cancel,
        by_status=by_status,
        sample=sample,
        missing_order_refs=missing,
    )


# --- starting ----------------------------------------------------------------------------------


def bulk_cancellation_errors(
    *, reason, description: str, churn_time: datetime | None, canceled_by: str, now: datetime
) -> dict[str, str]:
    """The cancellation fields' errors (field → message) as start_bulk_cancellation checks them;
    a dry run asks too, so that it refuses what the real run would refuse."""
    errors = quoting.reason_errors(reason, description)
    if len(description or "") > 255:
        errors["description"] = _("Use at most 255 characters.")
    errors.update(quoting.canceled_by_errors(canceled_by))
    if churn_time is not None and (error := quoting.churn_time_error(churn_time, now)):
        errors["churn_time"] = error
    return errors


def start_bulk_cancellation(
    order_filter: OrderFilter,
    *,
    reason,
    actor,
    via: str,
    description: str = "",
    churn_time: datetime | None = None,
    prorated: bool = False,
    canceled_by: str = CanceledBy.MERCHANT,
) -> BulkCancellation:
    """Check the cancellation fields as cancel_order would, write the job and queue it after
    the commit. Raises CancellationError (field → message) and writes nothing on bad input."""
    now = timezone.now()
    errors = bulk_cancellation_errors(
        reason=reason,
        description=description,
        churn_time=churn_time,
        canceled_by=canceled_by,
        now=now,
    )
    if errors:
        raise CancellationError(errors, code="invalid")
    if not order_filter.narrows:
        raise CancellationError(
            {
                "filter": _(
                    "Choose which orders: orderIds, folders, states, dateFrom or dateTo. "
                    "To cancel every order, choose the folder “/”."
                )
            },
            code="no_filter",
        )
    if not order_filter.queryset(now=now).exists():
        raise CancellationError({"filter": _("No order matches this filter.")}, code="no_match")

    with transaction.atomic():
        job = BulkCancellation.objects.create(
            filter=order_filter.to_dict(),
            reason=reason,
            description=(description or "").strip(),
            canceled_by=canceled_by,
            churn_time=churn_time,
            prorated=prorated,
            audit_comment=order_filter.audit.comment,
            audit_time_spent=order_filter.audit.time_spent,
            audit_ticket_link=order_filter.audit.ticket_link,
            created_by=actor if actor is not None and actor.pk else None,
            via=via,
            created_at=now,
        )
        audit_log.record(
            "bulk_cancellation.started",
            order=None,
            actor=actor,
            via=via,
            data={"bulkCancellation": job.pk, "filter": job.filter, "reason": reason.pk},
            audit=order_filter.audit,
        )
        transaction.on_commit(lambda: tasks.queue_bulk_cancellation(job.pk))
    return job
