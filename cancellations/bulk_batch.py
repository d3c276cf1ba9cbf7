"""One batch of a bulk cancellation job's orders, cancelled in one transaction.

Each order is cancelled as writing.cancel_order cancels one: the same quote
(quoting.quote_cancellation) decides what is cancelled or why not, the same constructor
(writing.new_cancellation) makes the cancellation, and the same writer
(batch_writer.write_cancellations, of which cancel_order writes a batch of one) writes it,
its effect, audit entries and outbox rows. A batch of orders shares one transaction and one
statement per table, because one transaction per order is two orders of magnitude slower. If
a batch fails in the database, its orders are cancelled one by one through cancel_order
itself, so one bad order never takes the others down with it.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict

from django.conf import settings
from django.db import DatabaseError, transaction
from django.db.models import CharField, F, Sum, Value
from django.db.models.functions import Cast, Concat
from django.utils import timezone

from backoffice.metrics import count_bulk_orders, count_cancellations
from providers.outbox import enabled_adapters
from providers.outbox_bulk import undeliverable

from . import target_messages
from .audit import AuditInfo
from .errors import CancellationError
from .filter_parsing import parse_order_filter
from .models import (
    AuditEntry,
    BulkCancellation,
    BulkCancellationTarget,
    CancellationItem,
    Order,
    TargetOutcome,
)
from .order_filter import OrderFilter, skip_text
from .services import batch_writer, quoting, refusals, writing
from .services.effect import Acting
from .states import CancellationStatus

logger = logging.getLogger(__name__)

MESSAGE_MAX = BulkCancellationTarget._meta.get_field("message").max_length


def batch_size() -> int:
    return getattr(settings, "BULK_CANCELLATION_BATCH_SIZE", 500)


def order_filter_of(job: BulkCancellation) -> OrderFilter:
    return parse_order_filter(job.filter, now=job.created_at)


class BatchRunner:
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

        planned: list[batch_writer.Planned] = []
        settled: dict[str, list[BulkCancellationTarget]] = defaultdict(list)
        for order in orders:
            target = targets[order.pk]
            refused = self.order_filter.skip_refusal(order)
            if refused:
                settled[TargetOutcome.SKIPPED].append(_skip(target, refused))
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
                    kill=self.order_filter.kill,
                )
            except CancellationError as exc:
                outcome = _outcome_of(exc)
                settled[outcome].append(_settle(target, outcome, exc.text(), *_coded(exc)))
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
            planned.append(batch_writer.Planned(order, quote, cancellation))
        # A provider that will be told but can't take it (Callisto without a Salesforce user):
        # the order fails here, as a single cancellation would be refused when it is made.
        refused = undeliverable([plan.cancellation for plan in planned], self.adapters)
        for plan in planned:
            target = targets[plan.order.pk]
            if plan.cancellation.pk in refused:
                problem = refused[plan.cancellation.pk]  # the adapter's words
                row = _settle(target, TargetOutcome.FAILED, problem, target_messages.PLAN_PROBLEM)
            else:
                row = _settle(target, TargetOutcome.CANCELLED, plan.cancellation.pk)
            settled[row.outcome].append(row)
        planned = [plan for plan in planned if plan.cancellation.pk not in refused]
        # Orders gone since the snapshot (deleted): nothing to cancel.
        for order_id in set(targets) - {order.pk for order in orders}:
            settled[TargetOutcome.SKIPPED].append(_gone(targets[order_id]))

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

    def _write(self, planned: list[batch_writer.Planned], now) -> int:
        acting = Acting(self.actor, job_via(self.job), self.audit)
        logger.debug(
            "Bulk cancellation %s: %s orders via %s", self.job.pk, len(planned), acting.via
        )
        transaction.on_commit(
            lambda: count_cancellations(via=acting.via, scope="order", count=len(planned))
        )
        return batch_writer.write_cancellations(
            planned, acting=acting, now=now, adapters=self.adapters
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
                    params = json.dumps(row.message_params, sort_keys=True)
                    by_message[(outcome, row.message, row.message_code, params)].append(row.pk)
        for (outcome, message, code, params), pks in by_message.items():
            targets.filter(pk__in=pks).update(
                outcome=outcome,
                message=message,
                message_code=code,
                message_params=json.loads(params),
                processed_at=now,
            )
        BulkCancellation.objects.filter(pk=self.job.pk).update(
            cancelled_count=F("cancelled_count") + counts.get(TargetOutcome.CANCELLED, 0),
            skipped_count=F("skipped_count") + counts.get(TargetOutcome.SKIPPED, 0),
            failed_count=F("failed_count") + counts.get(TargetOutcome.FAILED, 0),
        )
        transaction.on_commit(lambda: count_bulk_orders(counts))

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
                if order is None:
                    self._settle_row(_gone(target))
                    return
                refused = self.order_filter.skip_refusal(order)
                if refused:
                    self._settle_row(_skip(target, refused))
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
                    self._settle_one(target, _outcome_of(exc), exc.text(), *_coded(exc))
                    return
                self._settle_one(target, TargetOutcome.CANCELLED, cancellation.pk)
        except DatabaseError as exc:
            logger.exception("Bulk cancellation %s: order %s failed.", job.pk, order_id)
            with transaction.atomic():
                target = BulkCancellationTarget.objects.select_for_update().get(
                    bulk_cancellation=job, order_id=order_id
                )
                if target.outcome == TargetOutcome.PENDING:
                    params = {"error": str(exc)}
                    text = target_messages.render(target_messages.DATABASE_ERROR, params)
                    code = target_messages.DATABASE_ERROR
                    self._settle_one(target, TargetOutcome.FAILED, text, code, params)

    def _settle_one(self, target, outcome, message, code="", params=None) -> None:
        self._settle_row(_settle(target, outcome, message, code, params))

    def _settle_row(self, row: BulkCancellationTarget) -> None:
        self._settle_targets({row.outcome: [row]}, timezone.now())


def bulk_cancellation_id_prefix(job_id: int) -> str:
    """A job's cancellations are named after it and their order: `cnl_bulk12_4711`. So the id
    is known before the row exists (one UPDATE settles a batch), and a second cancellation of
    one order by one job would collide on the primary key."""
    return f"cnl_bulk{job_id}_"


def _outcome_of(error: CancellationError) -> str:
    """An order the quote refuses as a whole (its status, nothing left) is skipped; anything
    else (a settled billing item, say) needs someone to look: failed."""
    if error.codes and error.codes <= refusals.ORDER_REFUSALS:
        return TargetOutcome.SKIPPED
    return TargetOutcome.FAILED


def _coded(error: CancellationError) -> tuple[str, dict]:
    """The refusal's code and params when the quote refused for one reason (the message is
    then shown in the reader's language); else none, and its text stands."""
    if hasattr(error, "error_dict"):
        found = [each for errors in error.error_dict.values() for each in errors]
    else:
        found = error.error_list
    if len(found) != 1 or not found[0].code:
        return "", {}
    return found[0].code, dict(found[0].params or {})


def _settle(
    target: BulkCancellationTarget,
    outcome: str,
    message: str,
    code: str = "",
    params: dict | None = None,
) -> BulkCancellationTarget:
    target.outcome = outcome
    target.message = str(message)[:MESSAGE_MAX]
    target.message_code, target.message_params = code, params or {}
    target.processed_at = timezone.now()
    return target


def _skip(target: BulkCancellationTarget, refused: refusals.Refused) -> BulkCancellationTarget:
    """Skipped for the quote's refusal of the whole order: JOC's words, and the code."""
    text = skip_text(refused)
    return _settle(target, TargetOutcome.SKIPPED, text, refused.code, refused.stored_params())


def _gone(target: BulkCancellationTarget) -> BulkCancellationTarget:
    text = target_messages.render(target_messages.ORDER_GONE)
    return _settle(target, TargetOutcome.SKIPPED, text, target_messages.ORDER_GONE)


def job_via(job: BulkCancellation) -> str:
    return job.via or AuditEntry.Via.TASK
