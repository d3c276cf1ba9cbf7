"""Bulk cancellation: every order a JOC-style filter selects (cancellations.order_filter),
previewed first, then cancelled by a Celery job that reports its progress.

    preview_bulk_cancellation   count and sample of what a filter would hit; writes nothing
    start_bulk_cancellation     validate everything, write the job, queue it after the commit
    run_bulk_cancellation       the job (Celery task body): snapshot the orders, then cancel
                                them batch by batch; resumable
    resume_stalled_bulk_cancellations   beat: restart jobs whose worker or message was lost

Each order is cancelled by the rules of writing.cancel_order: the same quote
(quoting.quote_cancellation) decides what is cancelled or why not, and the same row
constructors, audit entries and outbox rows are written. What differs is only how they are
written: a batch of orders shares one transaction and one INSERT per table, because one
transaction per order is two orders of magnitude slower. If a batch fails in the database,
its orders are cancelled one by one through cancel_order itself, so one bad order never takes
the others down with it.

Exactly once: when the job starts, its orders are written down as targets (pending). A batch
claims pending targets (SELECT … FOR UPDATE SKIP LOCKED), cancels their orders and settles the
targets in one transaction. Several runners share a job (BULK_CANCELLATION_RUNNERS Celery
tasks; on PostgreSQL they use both cores) and never take the same targets. A runner that dies
mid-batch leaves its batch pending and nothing of it written; its lock goes with its
connection and another runner takes the batch, or, when all died, the beat restarts the job
once its lease has run out. And a second cancellation of an order by the same job would
collide on the primary key, since its id is made from the job and the order.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import DatabaseError, transaction
from django.db.models import CharField, Count, F, OuterRef, Q, Subquery, Sum, Value
from django.db.models.functions import Cast, Coalesce, Concat
from django.utils import timezone
from django.utils.translation import gettext as _

from backoffice.bulk_insert import insert_rows
from providers.outbox import enabled_adapters, enqueue_new_adds, kick_sweep, undeliverable

from . import audit as audit_log
from .audit import AuditInfo
from .errors import CancellationError
from .models import (
    AuditEntry,
    BulkCancellation,
    BulkCancellationStatus,
    BulkCancellationTarget,
    CanceledBy,
    Cancellation,
    CancellationItem,
    Order,
    OrderItem,
    SettlementItem,
    TargetOutcome,
)
from .order_filter import OrderFilter, parse_order_filter
from .services import quoting, writing
from .states import CancellationStatus, OrderStatus, check_order_transition

logger = logging.getLogger(__name__)

SAMPLE_SIZE = 20
MESSAGE_MAX = BulkCancellationTarget._meta.get_field("message").max_length


def batch_size() -> int:
    return getattr(settings, "BULK_CANCELLATION_BATCH_SIZE", 500)


def lease_seconds() -> int:
    return getattr(settings, "BULK_CANCELLATION_LEASE_SECONDS", 120)


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
    to_cancel = sum(
        n
        for status, n in by_status.items()
        if status in OrderStatus.cancellable
        and (order_filter.kill or status != OrderStatus.IN_PROGRESS)
    )
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
        transaction.on_commit(lambda: _queue(job.pk, runners=runner_count()))
    return job


def runner_count() -> int:
    return max(1, getattr(settings, "BULK_CANCELLATION_RUNNERS", 2))


def _queue(job_id: int, *, runners: int = 1) -> None:
    from .tasks import run_bulk_cancellation as task

    try:
        for _runner in range(runners):
            task.delay(job_id)
    except Exception:
        # The job row is the truth; the beat's resume_stalled_bulk_cancellations starts it.
        logger.exception("Could not queue bulk cancellation %s; the beat will start it.", job_id)


# --- running -----------------------------------------------------------------------------------


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


def order_filter_of(job: BulkCancellation) -> OrderFilter:
    return parse_order_filter(job.filter, now=job.created_at)


def _write_targets(job: BulkCancellation) -> None:
    """Write down the orders the job takes, once: all of them or (on a crash) none."""
    order_filter = order_filter_of(job)
    orders = order_filter.queryset(now=job.created_at).order_by("pk")
    with transaction.atomic():
        locked = BulkCancellation.objects.select_for_update().get(pk=job.pk)
        if locked.targets_ready:
            return
        chunk: list[BulkCancellationTarget] = []
        total = 0
        for order_id in orders.values_list("pk", flat=True).iterator(chunk_size=5000):
            chunk.append(BulkCancellationTarget(bulk_cancellation=job, order_id=order_id))
            if len(chunk) >= 5000:
                BulkCancellationTarget.objects.bulk_create(chunk)
                total += len(chunk)
                chunk = []
        BulkCancellationTarget.objects.bulk_create(chunk)
        total += len(chunk)
        missing = []
        if order_filter.by_order_refs:
            missing = order_filter.missing_order_refs(orders.only("pk", "number"))
        BulkCancellation.objects.filter(pk=job.pk).update(
            targets_ready=True, total=total, missing_order_refs=missing
        )
    job.targets_ready, job.total, job.missing_order_refs = True, total, missing


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
    runner = _BatchRunner(job)
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


def resume_stalled_bulk_cancellations(*, now=None) -> int:
    """Beat: queue jobs that should be running and aren't: queued for over a minute (the
    message was lost) or running with an expired lease (the worker died)."""
    now = now or timezone.now()
    stalled = BulkCancellation.objects.filter(
        Q(status=BulkCancellationStatus.QUEUED, created_at__lt=now - timedelta(minutes=1))
        | Q(status=BulkCancellationStatus.RUNNING, lease_until__lt=now)
    ).values_list("pk", flat=True)
    count = 0
    for job_id in stalled:
        _queue(job_id, runners=runner_count())
        count += 1
    return count


@dataclass
class _Planned:
    order: Order
    quote: quoting.CancellationQuote
    cancellation: Cancellation


class _BatchRunner:
    """Cancels one batch of a job's orders in one transaction (see the module docstring)."""

    def __init__(self, job: BulkCancellation):
        self.job = job
        self.adapters = enabled_adapters()  # once per run, not once per order
        self.audit = AuditInfo(job.audit_comment, job.audit_time_spent, job.audit_ticket_link)
        self.order_filter = order_filter_of(job)
        self.actor = job.created_by
        self.id_prefix = bulk_cancellation_id_prefix(job.pk)

    def run_next(self) -> int | None:
        """Claim the next batch and cancel its orders. Returns how many deliveries became due,
        or None when no pending target is left to claim."""
        order_ids: list[int] = []
        try:
            with transaction.atomic():
                targets = list(
                    BulkCancellationTarget.objects.select_for_update(skip_locked=True)
                    .filter(bulk_cancellation=self.job, outcome=TargetOutcome.PENDING)
                    .order_by("order_id")[: batch_size()]
                )
                if not targets:
                    return None
                order_ids = [target.order_id for target in targets]
                return self.run(targets)
        except DatabaseError:
            if not order_ids:
                raise
            logger.exception("Bulk cancellation %s: a batch failed; going one by one.", self.job.pk)
            for order_id in order_ids:
                self._run_one(order_id)  # cancel_order asks for its own deliveries
            return 0

    def run(self, targets: list[BulkCancellationTarget]) -> int:
        """Cancel the orders of these claimed (locked) targets in the caller's transaction."""
        return self._run_batch({target.order_id: target for target in targets})

    # -- the fast path: one transaction, one INSERT per table ---------------------------------

    def _run_batch(self, targets: dict[int, BulkCancellationTarget]) -> int:
        job, now = self.job, timezone.now()
        orders = list(
            Order.objects.select_for_update()
            .filter(pk__in=list(targets))
            .order_by("pk")
            .prefetch_related("items")
        )
        reserved = self._reserved_quantities(orders)
        blocked = quoting.blocking_settlements(orders)

        planned: list[_Planned] = []
        settled: dict[str, list[BulkCancellationTarget]] = defaultdict(list)
        for order in orders:
            target = targets[order.pk]
            why = self.order_filter.skip_reason(order) or _nothing_left(
                order, reserved.get(order.pk, {})
            )
            if why:
                settled[TargetOutcome.SKIPPED].append(_settle(target, TargetOutcome.SKIPPED, why))
                continue
            try:
                quote = quoting.quote_cancellation(
                    order,
                    reason=job.reason,
                    churn_time=job.churn_time,
                    prorated=job.prorated,
                    description=job.description,
                    now=now,
                    reserved=reserved.get(order.pk, {}),
                    blocked=blocked,
                )
            except CancellationError as exc:
                outcome = _outcome_of(exc)
                settled[outcome].append(_settle(target, outcome, exc.text()))
                continue
            cancellation = writing.new_cancellation(
                order,
                quote,
                reason=job.reason,
                description=job.description,
                canceled_by=job.canceled_by,
                churn_time_policy="",
                actor=self.actor,
                external_user_id="",
                audit=self.audit,
                now=now,
                kill_running=self.order_filter.kill,
                bulk_cancellation=job,
            )
            cancellation.id = self.id_prefix + str(order.pk)
            planned.append(_Planned(order, quote, cancellation))
        # A provider that will be told but can't take it (Callisto without a Salesforce user):
        # the order fails here, as a single cancellation would be refused when it is made.
        refused = undeliverable([plan.cancellation for plan in planned], self.adapters)
        for plan in planned:
            target = targets[plan.order.pk]
            if plan.cancellation.pk in refused:
                outcome, message = TargetOutcome.FAILED, refused[plan.cancellation.pk]
            else:
                outcome, message = TargetOutcome.CANCELLED, plan.cancellation.pk
            settled[outcome].append(_settle(target, outcome, message))
        planned = [plan for plan in planned if plan.cancellation.pk not in refused]
        # Orders gone since the snapshot (deleted): nothing to cancel.
        for order_id in set(targets) - {order.pk for order in orders}:
            settled[TargetOutcome.SKIPPED].append(
                _settle(targets[order_id], TargetOutcome.SKIPPED, _("The order no longer exists."))
            )

        due = self._write(planned, now) if planned else 0
        self._settle_targets(settled, now)
        return due

    @staticmethod
    def _reserved_quantities(orders) -> dict[int, dict[int, int]]:
        reserved: dict[int, dict[int, int]] = defaultdict(dict)
        rows = (
            CancellationItem.objects.filter(
                cancellation__order__in=orders, cancellation__status=CancellationStatus.CONFIRMED
            )
            .values("cancellation__order_id", "order_item_id")
            .annotate(total=Sum("quantity"))
        )
        for row in rows:
            reserved[row["cancellation__order_id"]][row["order_item_id"]] = row["total"]
        return reserved

    def _write(self, planned: list[_Planned], now) -> int:
        job, via = self.job, job_via(self.job)
        entries: list[AuditEntry] = []
        for plan in planned:
            entries.append(
                self._entry(
                    "cancellation.created",
                    plan,
                    data=writing.plan_summary(plan.cancellation, plan.quote),
                )
            )
        effective = [plan for plan in planned if not plan.quote.is_scheduled]
        for plan in effective:
            plan.cancellation.status = CancellationStatus.COMPLETED
            plan.cancellation.completed_time = now
        insert_rows(Cancellation, [plan.cancellation for plan in planned])
        insert_rows(
            CancellationItem,
            (
                row
                for plan in planned
                for row in writing.cancellation_item_rows(plan.cancellation, plan.quote)
            ),
        )
        if effective:
            entries += self._make_effective(effective, now)
        insert_rows(AuditEntry, entries)
        logger.debug("Bulk cancellation %s: %s orders via %s", job.pk, len(planned), via)
        return enqueue_new_adds([plan.cancellation for plan in planned], self.adapters)

    def _make_effective(self, effective: list[_Planned], now) -> list[AuditEntry]:
        """What effect.take_effect does for one cancellation, for many: quantities off,
        settlement items of fully cancelled items removed, orders moved on."""
        whole, partial = [], []
        for plan in effective:
            for quoted in plan.quote.items:
                item = quoted.order_item
                if quoted.quantity == item.open_quantity:
                    whole.append(item.pk)
                else:
                    partial.append(item)
                item.cancelled_quantity += quoted.quantity
        OrderItem.objects.filter(pk__in=whole).update(cancelled_quantity=F("quantity"))
        OrderItem.objects.bulk_update(partial, ["cancelled_quantity"])
        # Each settlement item goes with its order's cancellation, whose id follows from the
        # order: one UPDATE instead of one per row.
        order_of_item = OrderItem.objects.filter(pk=OuterRef("order_item_id")).values("order_id")
        SettlementItem.objects.present().filter(order_item__in=whole).update(
            removed_at=now,
            removed_by_cancellation_id=Concat(
                Value(self.id_prefix), Cast(Subquery(order_of_item), CharField())
            ),
        )

        entries, moves = [], defaultdict(list)
        for plan in effective:
            entries.append(self._entry("cancellation.completed", plan))
            order = plan.order
            items = list(order.items.all())  # prefetched, quantities updated above
            quantity = sum(item.quantity for item in items)
            cancelled = sum(item.cancelled_quantity for item in items)
            status = order.status
            if quantity and cancelled == quantity:
                status = OrderStatus.CANCELLED
            elif cancelled:
                status = OrderStatus.PARTIALLY_CANCELLED
            if status == order.status:
                continue
            check_order_transition(order.status, status)
            entries.append(
                self._entry("order.status_changed", plan, data={"from": order.status, "to": status})
            )
            moves[status].append(order.pk)
            order.status = status
        for status, pks in moves.items():
            Order.objects.filter(pk__in=pks).update(status=status, updated_at=now)
        return entries

    def _entry(self, action: str, plan: _Planned, data=None) -> AuditEntry:
        return audit_log.entry(
            action,
            order=plan.order,
            cancellation=plan.cancellation,
            actor=self.actor,
            via=job_via(self.job),
            data=data,
            audit=self.audit,
        )

    def _settle_targets(self, settled: dict[str, list[BulkCancellationTarget]], now) -> None:
        counts = {outcome: len(rows) for outcome, rows in settled.items()}
        targets = BulkCancellationTarget.objects
        cancelled = [row.pk for row in settled.get(TargetOutcome.CANCELLED, ())]
        if cancelled:
            # A cancelled target's message is its cancellation's id, which follows from the order.
            targets.filter(pk__in=cancelled).update(
                outcome=TargetOutcome.CANCELLED,
                message=Concat(Value(self.id_prefix), Cast("order_id", CharField())),
                processed_at=now,
            )
        # The others share a handful of messages ("The order is completed…"): one UPDATE each.
        by_message = defaultdict(list)
        for outcome, rows in settled.items():
            if outcome != TargetOutcome.CANCELLED:
                for row in rows:
                    by_message[(outcome, row.message)].append(row.pk)
        for (outcome, message), pks in by_message.items():
            targets.filter(pk__in=pks).update(outcome=outcome, message=message, processed_at=now)
        BulkCancellation.objects.filter(pk=self.job.pk).update(
            cancelled_count=F("cancelled_count") + counts.get(TargetOutcome.CANCELLED, 0),
            skipped_count=F("skipped_count") + counts.get(TargetOutcome.SKIPPED, 0),
            failed_count=F("failed_count") + counts.get(TargetOutcome.FAILED, 0),
        )

    # -- the careful path: one order, one transaction, through cancel_order ---------------------

    def _run_one(self, order_id: int) -> None:
        job = self.job
        try:
            with transaction.atomic():
                target = (
                    BulkCancellationTarget.objects.select_for_update()
                    .filter(bulk_cancellation=job, order_id=order_id, outcome=TargetOutcome.PENDING)
                    .first()
                )
                if target is None:
                    return
                order = Order.objects.filter(pk=order_id).first()
                why = (
                    self.order_filter.skip_reason(order)
                    if order
                    else _("The order no longer exists.")
                )
                if why:
                    self._settle_one(target, TargetOutcome.SKIPPED, why)
                    return
                try:
                    with transaction.atomic():
                        cancellation = writing.cancel_order(
                            order,
                            reason=job.reason,
                            actor=self.actor,
                            via=job_via(job),
                            churn_time=job.churn_time,
                            prorated=job.prorated,
                            description=job.description,
                            canceled_by=job.canceled_by,
                            audit=self.audit,
                            kill_running=self.order_filter.kill,
                            bulk_cancellation=job,
                            cancellation_id=self.id_prefix + str(order.pk),
                        )
                except CancellationError as exc:
                    self._settle_one(target, _outcome_of(exc), exc.text())
                    return
                self._settle_one(target, TargetOutcome.CANCELLED, cancellation.pk)
        except DatabaseError as exc:
            logger.exception("Bulk cancellation %s: order %s failed.", job.pk, order_id)
            with transaction.atomic():
                target = BulkCancellationTarget.objects.select_for_update().get(
                    bulk_cancellation=job, order_id=order_id
                )
                if target.outcome == TargetOutcome.PENDING:
                    self._settle_one(
                        target,
                        TargetOutcome.FAILED,
                        _("Database error: %(error)s") % {"error": exc},
                    )

    def _settle_one(self, target, outcome, message) -> None:
        self._settle_targets({outcome: [_settle(target, outcome, message)]}, timezone.now())


def bulk_cancellation_id_prefix(job_id: int) -> str:
    """A job's cancellations are named after it and their order: `cnl_bulk12_4711`. So the id
    is known before the row exists (one UPDATE settles a batch), and a second cancellation of
    one order by one job would collide on the primary key."""
    return f"cnl_bulk{job_id}_"


def _nothing_left(order: Order, reserved: dict[int, int]) -> str:
    """quote_cancellation refuses such an order too; here it is skipped, not failed."""
    if quoting.open_to_cancel(order.items.all(), reserved):
        return ""
    return quoting.nothing_left_message()


def _outcome_of(error: CancellationError) -> str:
    """An order the filter may pick but no cancellation can take is skipped; anything else
    (a settled billing item, say) needs someone to look: failed."""
    return TargetOutcome.SKIPPED if error.codes == {"not_cancellable"} else TargetOutcome.FAILED


def _settle(target: BulkCancellationTarget, outcome: str, message: str) -> BulkCancellationTarget:
    target.outcome = outcome
    target.message = str(message)[:MESSAGE_MAX]
    target.processed_at = timezone.now()
    return target


def job_via(job: BulkCancellation) -> str:
    return job.via or AuditEntry.Via.TASK
