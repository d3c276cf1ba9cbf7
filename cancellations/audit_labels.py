"""What staff read for an audit entry's action code: one translated label per code.

The codes stay as they are in the database and the API (AuditEntry.action); pages and the admin
show describe(entry) instead. A new code gets its label here, in ACTION_LABELS, and where its
data allows a fuller sentence also in DETAILED_LABELS. A code without a label still reads as
words (`reason_mapping.deleted` → "Reason mapping: deleted")."""

from collections.abc import Callable, Mapping

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from providers.models import provider_kind_choices

from .models import SettlementState
from .states import OrderStatus

ACTION_LABELS: dict[str, Promise] = {
    "order.created": _("Order created"),
    "order.updated": _("Order details changed"),
    "order.status_changed": _("Order status changed"),
    "cancellation.created": _("Cancellation created"),
    "cancellation.updated": _("Cancellation changed"),
    "cancellation.confirmed": _("Cancellation confirmed"),
    "cancellation.completed": _("Cancellation completed"),
    "cancellation.completion_failed": _("Cancellation could not be completed"),
    "cancellation.revoked": _("Cancellation undone"),
    "settlement_item.created": _("Settlement item created"),
    "settlement_item.state_changed": _("Settlement item changed"),
    "delivery.retried": _("Delivery sent again"),
    "delivery.task_resolved": _("Staff task marked done"),
    "delivery.failure_resolved": _("Failed delivery marked resolved"),
    "bulk_cancellation.started": _("Bulk cancellation started"),
    "reason.created": _("Cancellation reason added"),
    "reason.changed": _("Cancellation reason changed"),
    "reason.deleted": _("Cancellation reason deleted"),
    "reason_mapping.created": _("Reason mapping added"),
    "reason_mapping.changed": _("Reason mapping changed"),
    "reason_mapping.deleted": _("Reason mapping deleted"),
    "reason_catalog.pulled": _("Reason catalog pulled from Omnitron"),
}


def _choices(choices) -> Callable[[object], str]:
    def label(value) -> str:
        labels = dict(choices() if callable(choices) else choices)
        return str(labels.get(value, value))

    return label


def _plain(value) -> str:
    return str(value)


# The fuller sentence when the entry's data has every value it names: data key → how a value
# reads (its choice label).
DETAILED_LABELS: dict[str, tuple[Promise, dict[str, Callable[[object], str]]]] = {
    "order.status_changed": (
        _("Order status changed from %(from)s to %(to)s"),
        {"from": _choices(OrderStatus.choices), "to": _choices(OrderStatus.choices)},
    ),
    "settlement_item.state_changed": (
        _("Settlement item %(settlementItem)s changed from %(from)s to %(to)s"),
        {
            "settlementItem": _plain,
            "from": _choices(SettlementState.choices),
            "to": _choices(SettlementState.choices),
        },
    ),
    "delivery.retried": (
        _("Delivery to %(provider)s sent again"),
        {"provider": _choices(provider_kind_choices)},
    ),
    "delivery.task_resolved": (
        _("Staff task at %(provider)s marked done"),
        {"provider": _choices(provider_kind_choices)},
    ),
    "delivery.failure_resolved": (
        _("Failed delivery to %(provider)s marked resolved"),
        {"provider": _choices(provider_kind_choices)},
    ),
    "bulk_cancellation.started": (
        _("Bulk cancellation #%(bulkCancellation)s started"),
        {"bulkCancellation": _plain},
    ),
}


def describe(action: str, data: Mapping | None = None) -> str:
    """The entry's label in the active language, as full as its data allows."""
    detailed = DETAILED_LABELS.get(action)
    if detailed is not None and isinstance(data, Mapping):
        template, readers = detailed
        if all(data.get(key) not in (None, "") for key in readers):
            return str(template) % {key: read(data[key]) for key, read in readers.items()}
    label = ACTION_LABELS.get(action)
    if label is not None:
        return str(label)
    return fallback_label(action)


def fallback_label(action: str) -> str:
    """A code nobody labelled yet, as words: `reason_mapping.deleted` → "Reason mapping:
    deleted"."""
    words = [part.replace("_", " ").strip() for part in str(action).split(".") if part.strip()]
    if not words:
        return str(action)
    text = ": ".join(words)
    return text[:1].upper() + text[1:]


def action_choices() -> list[tuple[str, str]]:
    """(code, label) of every labelled code, by label: the admin's filter."""
    return sorted(((code, str(label)) for code, label in ACTION_LABELS.items()), key=lambda c: c[1])
