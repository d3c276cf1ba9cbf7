"""Every state change of the reason catalog made in Storno: reason managers' edits and the
provider mappings, and reading a reason in a provider's words. Pulling the catalog from
Omnitron is reasons.sync (it talks to the Omnitron adapter; this module talks to no provider).
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.dispatch import Signal
from django.utils import timezone
from django.utils.translation import gettext as _

from .models import (
    BILLING_REASON_MAX_LENGTH,
    REBILLY_DEFAULT_REASON,
    SUBJECT_LANGUAGES,
    CancellationReason,
    CancellationType,
    ProviderKind,
    ReasonMapping,
)

# The fields Omnitron is the master of (in Storno's names).
SYNCED_FIELDS = (
    "cancellation_type",
    "subject",
    "extra_information_needed",
    "ordering",
    "is_active",
    *(f"subject_{language}" for language in SUBJECT_LANGUAGES),
)
# What a reason manager may change in the admin (is_active/ordering are list-editable).
EDITABLE_FIELDS = (*SYNCED_FIELDS, "omnitron_id")


class ReasonError(ValidationError):
    """The one domain error of this app, naming the offending field."""


# Sent inside the edit's transaction for every change of the catalog, with `action`
# ("reason.changed"…), `actor`, `via` and `data` (what changed): the audit trail, a layer above
# this app (cancellations.audit), records each one. Nothing else should hang on it.
catalog_changed = Signal()
VIA_SYSTEM = "system"  # cancellations' AuditEntry.Via.SYSTEM, for callers that name none


def announce_change(action: str, *, actor, via: str, data: dict) -> None:
    catalog_changed.send(CancellationReason, action=action, actor=actor, via=via, data=data)


def _reason_data(reason: CancellationReason) -> dict:
    return {"reason": reason.pk, "subject": reason.subject}


def _mapping_data(mapping: ReasonMapping) -> dict:
    return {
        **_reason_data(mapping.reason),
        "provider": mapping.provider_kind,
        "value": mapping.value,
    }


# --- reason managers' edits --------------------------------------------------------------------


def save_reason(
    reason: CancellationReason, *, actor=None, via: str = VIA_SYSTEM
) -> CancellationReason:
    """Create or change a reason (the admin's form and list edits). Validates, and moves
    modified_date only when something changed."""
    try:
        reason.full_clean(exclude=["omnitron_snapshot"])
    except ValidationError as exc:
        raise ReasonError(exc.error_dict) from exc
    if reason.omnitron_id is None and reason.cancellation_type == CancellationType.UNKNOWN:
        raise ReasonError(
            {
                "cancellation_type": _(
                    "Choose a cancellation type: only reasons from Omnitron can have an "
                    "unknown one."
                )
            },
            code="unknown_type",
        )
    with transaction.atomic():
        if reason.pk is None:
            now = timezone.now()
            reason.created_date = reason.modified_date = now
            reason.save()
            fields = {name: getattr(reason, name) for name in EDITABLE_FIELDS}
            data = {**_reason_data(reason), "fields": fields}
            announce_change("reason.created", actor=actor, via=via, data=data)
            return reason
        stored = CancellationReason.objects.select_for_update().get(pk=reason.pk)
        changed = [
            name for name in EDITABLE_FIELDS if getattr(stored, name) != getattr(reason, name)
        ]
        if changed:
            reason.modified_date = timezone.now()
            reason.save(update_fields=[*changed, "modified_date"])
            changes = {
                name: {"from": getattr(stored, name), "to": getattr(reason, name)}
                for name in changed
            }
            data = {**_reason_data(reason), "changes": changes}
            announce_change("reason.changed", actor=actor, via=via, data=data)
    return reason


def delete_reason(reason: CancellationReason, *, actor=None, via: str = VIA_SYSTEM):
    """Only local reasons nobody used can go; Omnitron's are deactivated, never deleted."""
    if reason.omnitron_id is not None:
        raise ReasonError(
            {"reason": _("Reasons from Omnitron are deactivated, not deleted.")},
            code="from_omnitron",
        )
    if reason.cancellations.exists():
        raise ReasonError(
            {"reason": _("Cancellations use this reason: deactivate it instead.")}, code="in_use"
        )
    with transaction.atomic():
        announce_change("reason.deleted", actor=actor, via=via, data=_reason_data(reason))
        reason.delete()


def save_reason_mapping(
    mapping: ReasonMapping, *, actor=None, via: str = VIA_SYSTEM
) -> ReasonMapping:
    try:
        mapping.full_clean()
    except ValidationError as exc:
        raise ReasonError(exc.error_dict) from exc
    with transaction.atomic():
        stored = None
        if mapping.pk is not None:
            stored = ReasonMapping.objects.select_for_update().filter(pk=mapping.pk).first()
        mapping.save()
        if stored is None:
            announce_change(
                "reason_mapping.created", actor=actor, via=via, data=_mapping_data(mapping)
            )
            return mapping
        changes = {
            name: {"from": getattr(stored, name), "to": getattr(mapping, name)}
            for name in ("provider_kind", "value")
            if getattr(stored, name) != getattr(mapping, name)
        }
        if changes:
            data = {**_mapping_data(mapping), "changes": changes}
            announce_change("reason_mapping.changed", actor=actor, via=via, data=data)
    return mapping


def delete_reason_mapping(mapping: ReasonMapping, *, actor=None, via: str = VIA_SYSTEM):
    with transaction.atomic():
        announce_change("reason_mapping.deleted", actor=actor, via=via, data=_mapping_data(mapping))
        mapping.delete()


# --- reading a reason for a provider -----------------------------------------------------------


def mapped_reason(reason: CancellationReason, provider_kind: str) -> str:
    """What `provider_kind` calls this reason: its mapping, else the provider's default
    (Rebilly: "other"; Callisto and the billing engine: the subject). Uses
    `prefetch_related("mappings")` when the caller did it."""
    kind = ProviderKind(provider_kind)
    for mapping in reason.mappings.all():
        if mapping.provider_kind == kind:
            return mapping.value
    if kind == ProviderKind.REBILLY:
        return REBILLY_DEFAULT_REASON
    if kind == ProviderKind.BILLING:
        return reason.subject[:BILLING_REASON_MAX_LENGTH]
    return reason.subject


def reason_mapped_from(provider_kind: str, value: str) -> CancellationReason | None:
    """The reason a provider's code stands for: the one whose mapping for `provider_kind` is
    `value` (a Rebilly client's `reason: "too-expensive"`). Only explicit mappings count: the
    fallback of mapped_reason ("other" for every unmapped reason) names no one reason. When
    several reasons map to the value, an active one wins, then the catalog order."""
    return (
        CancellationReason.objects.filter(
            mappings__provider_kind=ProviderKind(provider_kind), mappings__value=value
        )
        .order_by("-is_active", "ordering", "id")
        .first()
    )
