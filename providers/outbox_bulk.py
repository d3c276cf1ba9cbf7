"""The outbox for many new cancellations at once (a bulk job's batch, through the batch
writer): which of them a provider can't take, and their ADD rows written by one statement.
The single path (providers.outbox) writes each row with its adapter's full verdict; here the
adapters are asked once for the whole batch (applicable), as a bulk job only cancels whole
orders, which every provider that concerns them takes."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from django.db import connection
from django.utils import timezone

from backoffice.bulk_insert import insert_select, insert_values

from . import messages
from .base import Action, ProviderAdapter
from .models import Delivery
from .outbox import has_plan_rules
from .states import DeliveryStatus

if TYPE_CHECKING:
    from cancellations.models import Cancellation


def undeliverable(
    cancellations: Sequence[Cancellation], adapters: list[ProviderAdapter]
) -> dict[str, str]:
    """{pk: message} for those of many planned cancellations that a provider which will be told
    can't take (plan_problems), for a bulk job to fail them one by one instead of writing them.
    Only adapters that have such rules are asked which cancellations concern them."""
    found: dict[str, str] = {}
    for adapter in adapters:
        if not has_plan_rules(adapter):
            continue
        applicable = adapter.applicable(cancellations)
        for cancellation in cancellations:
            if cancellation.pk in applicable and cancellation.pk not in found:
                problems = adapter.plan_problems(cancellation)
                if problems:
                    found[cancellation.pk] = " ".join(str(text) for text in problems.values())
    return found


def enqueue_new_adds(cancellations: Sequence[Cancellation], adapters: list[ProviderAdapter]) -> int:
    """The ADD rows for many new cancellations at once (a bulk job): no earlier rows to look
    at, and the adapters are loaded once by the caller. Returns how many rows are due; the
    caller asks for a sweep (kick_sweep) instead of one message per row."""
    now = timezone.now()
    ids = [cancellation.pk for cancellation in cancellations]
    applicable = {adapter.kind: adapter.applicable(cancellations) for adapter in adapters}
    skipped = {kind: [pk for pk in ids if pk not in found] for kind, found in applicable.items()}
    why = messages.render(messages.NOT_APPLICABLE)
    if adapters and ids:
        if connection.vendor == "postgresql":
            _insert_adds_server_side(ids, skipped, why, now)
        else:
            insert_values(Delivery, _add_rows(ids, skipped, why, now))
    return sum(len(ids) - len(pks) for pks in skipped.values())


def _add_rows(
    ids: list[str], skipped: dict[str, list[str]], why: str, now: datetime
) -> Iterator[dict]:
    """The rows _new_add makes, as plain values, provider by provider."""
    pending = {"status": DeliveryStatus.PENDING.value, "last_error": "", "message_code": ""}
    skip = {
        "status": DeliveryStatus.SKIPPED.value,
        "last_error": why,
        "message_code": messages.NOT_APPLICABLE,
    }
    for kind, skipped_pks in skipped.items():
        passed = set(skipped_pks)
        for pk in ids:
            yield {
                "cancellation_id": pk,
                "provider": kind,
                "action": Action.ADD.value,
                "next_attempt_at": now,
                **(skip if pk in passed else pending),
            }


def _insert_adds_server_side(
    ids: list[str], skipped: dict[str, list[str]], why: str, now: datetime
) -> None:
    """_add_rows, made by PostgreSQL from one array of ids: one statement for every provider,
    the rows in the same order."""
    kinds = ", ".join("(%s, %s, %s::text[])" for _kind in skipped)
    kind_params = [value for n, kind in enumerate(skipped) for value in (n, kind, skipped[kind])]
    select = (
        "SELECT c.id AS cancellation_id, k.kind AS provider, %s AS action, "  # noqa: S608
        "CASE WHEN c.id = ANY(k.skipped) THEN %s ELSE %s END AS status, "
        "CASE WHEN c.id = ANY(k.skipped) THEN %s ELSE '' END AS last_error, "
        "CASE WHEN c.id = ANY(k.skipped) THEN %s ELSE '' END AS message_code, "
        "%s AS next_attempt_at "
        f"FROM (VALUES {kinds}) AS k(n, kind, skipped) "
        "CROSS JOIN unnest(%s::text[]) WITH ORDINALITY AS c(id, n) ORDER BY k.n, c.n"
    )
    params = [
        Action.ADD.value,
        DeliveryStatus.SKIPPED.value,
        DeliveryStatus.PENDING.value,
        why,
        messages.NOT_APPLICABLE,
        now,
        *kind_params,
        ids,
    ]
    given = ["cancellation_id", "provider", "action", "status", "last_error", "message_code"]
    given.append("next_attempt_at")
    insert_select(Delivery, given, select, params)
