"""Running a bulk cancellation job (the Celery task body, cancellations.tasks): snapshot the
orders, then cancel them batch by batch (cancellations.bulk_batch); resumable.

Exactly once: when the job starts, its orders are written down as targets (pending). A batch
claims pending targets (SELECT … FOR UPDATE SKIP LOCKED), cancels their orders and settles the
targets in one transaction. Several runners share a job (BULK_CANCELLATION_RUNNERS Celery
tasks; on PostgreSQL they use both cores) and never take the same targets. A runner that dies
mid-batch leaves its batch pending and nothing of it written; its lock goes with its
connection and another runner takes the batch, or, when all died, the beat restarts the job
once its lease has run out (stalled_bulk_cancellations). And a second cancellation of an
order by the same job would collide on the primary key, since its id is made from the job
and the order.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from providers.outbox import kick_sweep

from .bulk_batch import BatchRunner, order_filter_of
from .models import (
    BulkCancellation,
    BulkCancellationStatus,
    BulkCancellationTarget,
    TargetOutcome,
)

logger = logging.getLogger(__name__)


def lease_seconds() -> int:
    return getattr(settings, "BULK_CANCELLATION_LEASE_SECONDS", 120)


def _worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _join(job_id: int, worker: str) -> BulkCancellation | None:
    """Join the job's runners (None when it is finished)."""
    now = timezone.now()
    joined = BulkCancellation.objects.filter(
        pk=job_id,
        status__in=[BulkCancellationStatus.QUEUED, BulkCancellationStatus.RUNNING],
    ).update(
        status=BulkCancellationStatus.RUNNING,
        worker=worker,
        lease_until=now + timedelta(seconds=lease_seconds()),
        started_at=Coalesce(F("started_at"), Value(now)),
    )
    if not joined:
        return None
    return BulkCancellation.objects.select_related("reason", "created_by").get(pk=job_id)


def _renew_lease(job: BulkCancellation) -> None:
    """Any runner's batch keeps the job alive; when none renews it, the beat restarts it."""
    BulkCancellation.objects.filter(pk=job.pk).update(
        lease_until=timezone.now() + timedelta(seconds=lease_seconds())
    )


def _write_targets(job: BulkCancellation) -> None:
    """Write down the orders the job takes, once: all of them or (on a crash) none. One
    INSERT … SELECT over the filter's query: the order ids never travel through Python."""
    order_filter = order_filter_of(job)
    orders = order_filter.queryset(now=job.created_at).order_by("pk")
    with transaction.atomic():
        locked = BulkCancellation.objects.select_for_update().get(pk=job.pk)
        if locked.targets_ready:
            return
        total = _insert_targets(job, orders)
        missing = []
        if order_filter.by_order_refs:
            missing = order_filter.missing_order_refs(orders.only("pk", "number"))
        BulkCancellation.objects.filter(pk=job.pk).update(
            targets_ready=True, total=total, missing_order_refs=missing
        )
    job.targets_ready, job.total, job.missing_order_refs = True, total, missing


def _insert_targets(job: BulkCancellation, orders) -> int:
    """A pending target per order of the queryset; returns how many."""
    ops = connection.ops
    # An alias of our own: SQLite names a subquery's bare column differently than PostgreSQL.
    chosen = orders.annotate(chosen_order=F("pk")).values_list("chosen_order", flat=True)
    select, params = chosen.query.sql_with_params()
    table = BulkCancellationTarget._meta
    columns = ", ".join(
        ops.quote_name(table.get_field(name).column)
        for name in (
            "bulk_cancellation",
            "order",
            "outcome",
            "message",
            "message_code",
            "message_params",
            "processed_at",
        )
    )
    no_params = table.get_field("message_params").get_db_prep_save({}, connection)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {ops.quote_name(table.db_table)} ({columns}) "  # noqa: S608 - model names
            f"SELECT %s, chosen.chosen_order, %s, '', '', %s, NULL FROM ({select}) chosen",
            [job.pk, TargetOutcome.PENDING.value, no_params, *params],
        )
        return cursor.rowcount


def run_bulk_cancellation(job_id: int, *, worker: str = "") -> BulkCancellation | None:
    """One runner of the job: take batches of pending targets until none is left. Several
    runners (BULK_CANCELLATION_RUNNERS, each a Celery task) share a job: each batch is claimed
    with SKIP LOCKED, so they never take the same orders. Returns the job, or None when it
    was finished already."""
    worker = worker or _worker_name()
    job = _join(job_id, worker)
    if job is None:
        return None
    if not job.targets_ready:
        _write_targets(job)
    runner = BatchRunner(job)
    last_kick = 0.0
    while True:
        due = runner.run_next()
        if due is None:
            break
        _renew_lease(job)
        # One sweep request now and then, not one message per delivery.
        if due and time.monotonic() - last_kick > 5:
            last_kick = time.monotonic()
            kick_sweep()
    # Nothing left to claim. Targets another runner holds locked still read as pending here:
    # then that runner, when it runs dry, is the one to finish the job.
    if not job.targets.filter(outcome=TargetOutcome.PENDING).exists():
        BulkCancellation.objects.filter(pk=job.pk, status=BulkCancellationStatus.RUNNING).update(
            status=BulkCancellationStatus.FINISHED, finished_at=timezone.now(), lease_until=None
        )
        kick_sweep()
    job.refresh_from_db()
    return job


def stalled_bulk_cancellations(*, now=None) -> list[int]:
    """The jobs that should be running and aren't: queued for over a minute (the message was
    lost) or running with an expired lease (the worker died)."""
    now = now or timezone.now()
    return list(
        BulkCancellation.objects.filter(
            Q(status=BulkCancellationStatus.QUEUED, created_at__lt=now - timedelta(minutes=1))
            | Q(status=BulkCancellationStatus.RUNNING, lease_until__lt=now)
        ).values_list("pk", flat=True)
    )
