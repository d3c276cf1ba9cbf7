"""Writing the audit trail. Called by services inside their transaction."""

import functools
from dataclasses import dataclass

from django.utils import timezone

from .models import AuditEntry


@dataclass(frozen=True)
class AuditInfo:
    """The caller's note for the audit trail (JOC's auditLog): why, how long, which ticket."""

    comment: str = ""
    time_spent: int | None = None
    ticket_link: str = ""


SECRET_KEYS = ("password", "token", "secret", "apikey", "api_key", "authorization")


def mask_secrets(data):
    if isinstance(data, dict):
        return {
            key: "***" if _is_secret(key) else mask_secrets(value) for key, value in data.items()
        }
    if isinstance(data, list):
        return [mask_secrets(value) for value in data]
    return data


@functools.lru_cache(maxsize=1024)
def _is_secret(key) -> bool:
    # The same few keys come back for every entry (a bulk job writes tens of thousands).
    return any(s in str(key).lower() for s in SECRET_KEYS)


def actor_label(actor) -> str:
    if actor is None:
        return "system"
    return actor.get_username()


def record(action, *, order, actor, via, cancellation=None, data=None, audit=None, comment=None):
    """One audit row. `audit` carries the caller's comment / ticket link / time spent."""
    row = entry(
        action,
        order=order,
        actor=actor,
        via=via,
        cancellation=cancellation,
        data=data,
        audit=audit,
        comment=comment,
    )
    row.save()
    return row


class Trail:
    """The audit rows of one service call, written together with one INSERT at its end. Each
    row is made (and gets its time) when it is added, so the rows keep the order and the times
    they would have had if each had been written at once."""

    def __init__(self):
        self.entries: list[AuditEntry] = []

    def add(self, action, **kwargs) -> None:
        self.entries.append(entry(action, **kwargs))

    def write(self) -> None:
        AuditEntry.objects.bulk_create(self.entries)
        self.entries = []


def entry_values(action, *, order_id, cancellation_id, actor, via, data=None, audit=None) -> dict:
    """The row entry() makes, as {attname: value} for backoffice.bulk_insert.insert_values: a
    bulk job writes tens of thousands and never reads them back as objects."""
    return {
        "action": action,
        "order_id": order_id,
        "cancellation_id": cancellation_id,
        "actor_id": actor.pk if actor is not None and actor.pk else None,
        "actor_label": actor_label(actor),
        "via": via,
        "data": mask_secrets(data or {}),
        "comment": getattr(audit, "comment", "") or "",
        "ticket_link": getattr(audit, "ticket_link", "") or "",
        "time_spent": getattr(audit, "time_spent", None),
        "created_at": timezone.now(),  # each its own time, as entry() gives it
    }


def entry(action, *, order, actor, via, cancellation=None, data=None, audit=None, comment=None):
    """The audit row record() writes, unsaved, for callers that write many at once."""
    return AuditEntry(
        action=action,
        order=order,
        cancellation=cancellation,
        actor=actor if actor is not None and actor.pk else None,
        actor_label=actor_label(actor),
        via=via,
        data=mask_secrets(data or {}),
        comment=(comment if comment is not None else getattr(audit, "comment", "")) or "",
        ticket_link=getattr(audit, "ticket_link", "") or "",
        time_spent=getattr(audit, "time_spent", None),
    )


def record_catalog_change(sender, *, action, actor, via, data, **kwargs) -> None:
    """reasons.services.catalog_changed (connected in cancellations.apps): an edit of the
    reason catalog or a provider mapping, on no order ("reason.changed" with what changed)."""
    record(action, order=None, actor=actor, via=via, data=data)
