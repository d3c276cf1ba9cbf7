"""Writing planned cancellations, any number at once, in a fixed number of statements: the one
write path of new cancellations. writing.cancel_order writes a batch of one; the bulk job
(cancellations.bulk_batch) writes a batch of its orders.

A planned cancellation is its locked order (with its items locked: locks.lock_items, or
prefetched under the order's lock), the quote that decided it and the unsaved Cancellation
built from that quote (writing.new_cancellation), confirmed or a draft. What is written:

- the cancellations, their items and lines: one INSERT each;
- a cancellation that is due now and no draft takes effect at once (effect.take_effect): it
  is written completed in the first place;
- the audit entries, one INSERT: cancellation.created for each, then cancellation.completed
  and order.status_changed for those that took effect;
- the outbox rows of all but the drafts (providers.outbox), one INSERT.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.db.models import QuerySet

from backoffice.bulk_insert import insert_rows, insert_values
from providers.outbox_bulk import enqueue_new_adds
from providers.states import DeliveryStatus

from ..models import AuditEntry, Cancellation, CancellationItem, CancellationLine, Order
from ..states import CancellationStatus
from .effect import Acting, Taking, mark_completed, take_effect_of_all
from .quoting import CancellationQuote

if TYPE_CHECKING:
    from providers.base import ProviderAdapter
    from providers.models import Delivery


@dataclass
class Planned:
    """One cancellation to write: its locked order, its quote, the unsaved cancellation."""

    order: Order
    quote: CancellationQuote
    cancellation: Cancellation

    @property
    def is_draft(self) -> bool:
        return self.cancellation.status == CancellationStatus.DRAFT

    @property
    def is_effective(self) -> bool:
        """Written completed: its time has come and it is no draft."""
        return not self.is_draft and not self.quote.is_scheduled


def write_cancellations(
    planned: list[Planned],
    *,
    acting: Acting,
    now: datetime,
    adapters: list[ProviderAdapter] | None = None,
    tell: Callable[[Cancellation], list[Delivery]] | None = None,
) -> int:
    """Write the planned cancellations (see the module docstring) in the caller's transaction.
    Returns how many outbox rows are due.

    With `tell` (cancel_order: it writes a cancellation's outbox rows and asks for them to
    be delivered after the commit), every cancellation keeps its items, lines and deliveries
    as written (prefetched), for the caller to show without reading them back. Otherwise (a
    bulk job, which has loaded the `adapters` once and has already failed the cancellations a
    provider can't take: outbox_bulk.undeliverable) the rows are streamed (bulk_insert), the outbox
    rows written by the database (outbox_bulk.enqueue_new_adds), and the caller asks for a sweep."""
    keep = tell is not None
    effective = [plan for plan in planned if plan.is_effective]
    for plan in effective:
        mark_completed(plan.cancellation, now)
    entries = [
        acting.entry("cancellation.created", plan.order.pk, plan.cancellation.pk, _created(plan))
        for plan in planned
    ]
    items, lines = _write_plans(planned, keep=keep)
    takings = [Taking.of_quote(plan.cancellation, plan.order, plan.quote) for plan in effective]
    entries += take_effect_of_all(takings, acting=acting, now=now)
    told = [plan.cancellation for plan in planned if not plan.is_draft]
    if tell is None:
        insert_values(AuditEntry, entries)
        return enqueue_new_adds(told, adapters or []) if told else 0
    AuditEntry.objects.bulk_create(AuditEntry(**row) for row in entries)
    deliveries = [row for cancellation in told for row in tell(cancellation)]
    for plan in planned:
        _keep_written(plan.cancellation, items, lines, deliveries)
    return sum(1 for row in deliveries if row.status == DeliveryStatus.PENDING)


def plan_summary(cancellation: Cancellation, quote: CancellationQuote) -> dict:
    return {
        "reason": cancellation.reason_id,
        "wholeOrder": quote.is_whole_order,
        "items": [{"itemId": q.order_item.pk, "quantity": q.quantity} for q in quote.items],
        "lines": len(quote.lines),
        "effectiveAt": quote.effective_at.isoformat(),
        "proratedCredit": str(quote.prorated_credit),
        "lineItemSubtotal": str(quote.line_item_subtotal),
        "currency": quote.currency,
    }


def _created(plan: Planned) -> dict:
    """The data of a cancellation.created entry."""
    data = plan_summary(plan.cancellation, plan.quote)
    if plan.is_draft:
        data["draft"] = True
    return data


def _write_plans(
    planned: list[Planned], *, keep: bool
) -> tuple[list[CancellationItem], list[CancellationLine]]:
    """The cancellations, their items and their lines: one INSERT each. With `keep`, the items
    and lines come back as objects (each with its pk, cancellation and order item)."""
    cancellations = [plan.cancellation for plan in planned]
    if not keep:
        insert_rows(Cancellation, cancellations)
        insert_values(CancellationItem, _item_values(planned))
        insert_values(CancellationLine, _line_values(planned))
        return [], []
    Cancellation.objects.bulk_create(cancellations)
    items = CancellationItem.objects.bulk_create(
        CancellationItem(
            cancellation=plan.cancellation,
            order_item=quoted.order_item,
            quantity=quoted.quantity,
            prorated_credit_amount=quoted.prorated_credit,
        )
        for plan in planned
        for quoted in plan.quote.items
    )
    by_pk = {cancellation.pk: cancellation for cancellation in cancellations}
    lines = CancellationLine.objects.bulk_create(
        _with_cancellation(CancellationLine(**values), by_pk) for values in _line_values(planned)
    )
    return items, lines


def _item_values(planned: list[Planned]) -> Iterable[dict]:
    for plan in planned:
        for quoted in plan.quote.items:
            yield {
                "cancellation_id": plan.cancellation.pk,
                "order_item_id": quoted.order_item.pk,
                "quantity": quoted.quantity,
                "prorated_credit_amount": quoted.prorated_credit,
            }


def _line_values(planned: list[Planned]) -> Iterable[dict]:
    for plan in planned:
        for line in plan.quote.lines:
            yield {
                "cancellation_id": plan.cancellation.pk,
                "type": line.type,
                "description": line.description,
                "unit_price_amount": line.unit_price_amount,
                "unit_price_currency": line.unit_price_currency,
                "quantity": line.quantity,
                "period_start": line.period_start,
                "period_end": line.period_end,
            }


def _with_cancellation(line: CancellationLine, by_pk: dict[str, Cancellation]) -> CancellationLine:
    line.cancellation = by_pk[line.cancellation_id]
    return line


def _keep_written(
    cancellation: Cancellation,
    items: Iterable[CancellationItem],
    lines: Iterable[CancellationLine],
    deliveries: Iterable[Delivery],
) -> None:
    """Keep the rows just written (of this and maybe other cancellations) as the
    cancellation's prefetched items, lines and deliveries (what selectors.cancellation_list()
    reads), in the order that reads them."""
    # Django's prefetch cache (django-stubs doesn't declare it), emptied first so that .all()
    # below builds fresh querysets.
    prefetched: dict[str, QuerySet] = {}
    cancellation._prefetched_objects_cache = prefetched  # type: ignore[attr-defined]
    own: dict[str, list[Any]] = {
        name: [row for row in rows if row.cancellation_id == cancellation.pk]
        for name, rows in (("items", items), ("lines", lines), ("deliveries", deliveries))
    }
    own["deliveries"].sort(key=lambda row: (row.provider, row.action))
    for name, kept in own.items():
        queryset = getattr(cancellation, name).all()
        queryset._result_cache = kept
        queryset._prefetch_done = True
        prefetched[name] = queryset
