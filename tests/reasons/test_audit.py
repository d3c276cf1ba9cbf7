"""Edits of the reason catalog and its provider mappings are in the audit trail, on no order:
reasons.services announces each, cancellations.audit records it."""

import pytest
from django.urls import reverse

from cancellations.models import AuditEntry
from reasons import services, sync
from reasons.models import CancellationReason, CancellationType, ReasonMapping, SyncTrigger
from tests.factories import CancellationFactory, CancellationReasonFactory, UserFactory
from tests.reasons.test_admin import MANAGER_PERMISSIONS, change_form_data, mapping_data

pytestmark = pytest.mark.django_db

Via = AuditEntry.Via


def entries(action_prefix: str = ""):
    return list(AuditEntry.objects.filter(action__startswith=action_prefix).order_by("id"))


@pytest.fixture
def manager():
    return UserFactory(permissions=MANAGER_PERMISSIONS)


# --- reasons -----------------------------------------------------------------------------------


def test_a_new_reason_is_recorded_with_its_fields_and_who_made_it(manager):
    reason = CancellationReason(subject="Moved abroad", cancellation_type=CancellationType.CANCEL)

    services.save_reason(reason, actor=manager, via=Via.ADMIN)

    (entry,) = entries()
    assert (entry.action, entry.actor, entry.via) == ("reason.created", manager, Via.ADMIN)
    assert entry.order is None and entry.cancellation is None
    assert entry.data["reason"] == reason.pk
    assert entry.data["fields"]["subject"] == "Moved abroad"


def test_a_change_records_each_changed_field_from_and_to(manager):
    reason = CancellationReasonFactory(subject="Too expensive", is_active=True, ordering=3)
    reason.subject, reason.is_active = "Too pricey", False

    services.save_reason(reason, actor=manager, via=Via.ADMIN)

    (entry,) = entries()
    assert entry.action == "reason.changed"
    assert entry.data["changes"] == {
        "subject": {"from": "Too expensive", "to": "Too pricey"},
        "is_active": {"from": True, "to": False},
    }


def test_saving_a_reason_unchanged_records_nothing(manager):
    reason = CancellationReasonFactory()

    services.save_reason(reason, actor=manager)

    assert entries() == []


def test_deleting_a_local_reason_records_its_subject(manager):
    local = CancellationReasonFactory(omnitron_id=None, subject="Typo reason")
    pk = local.pk

    services.delete_reason(local, actor=manager, via=Via.ADMIN)

    (entry,) = entries()
    assert entry.action == "reason.deleted"
    assert entry.data == {"reason": pk, "subject": "Typo reason"}


def test_a_refused_delete_records_nothing(manager):
    reason = CancellationReasonFactory(omnitron_id=None)
    CancellationFactory(reason=reason)

    with pytest.raises(services.ReasonError):
        services.delete_reason(reason, actor=manager)

    assert entries("reason.") == []


# --- provider mappings -------------------------------------------------------------------------


def test_a_mapping_is_recorded_when_made_changed_and_deleted(manager):
    reason = CancellationReasonFactory(subject="Too expensive")
    mapping = ReasonMapping(reason=reason, provider_kind="callisto", value="zu teuer")

    services.save_reason_mapping(mapping, actor=manager)
    mapping.value = "Kunde: zu teuer"
    services.save_reason_mapping(mapping, actor=manager)
    services.save_reason_mapping(mapping, actor=manager)  # unchanged: no entry
    services.delete_reason_mapping(mapping, actor=manager)

    created, changed, deleted = entries("reason_mapping.")
    assert created.action == "reason_mapping.created"
    assert created.data == {
        "reason": reason.pk,
        "subject": "Too expensive",
        "provider": "callisto",
        "value": "zu teuer",
    }
    assert changed.action == "reason_mapping.changed"
    assert changed.data["changes"] == {"value": {"from": "zu teuer", "to": "Kunde: zu teuer"}}
    assert deleted.action == "reason_mapping.deleted"
    assert deleted.data["value"] == "Kunde: zu teuer"


def test_a_refused_mapping_records_nothing(manager):
    reason = CancellationReasonFactory()

    with pytest.raises(services.ReasonError):
        services.save_reason_mapping(
            ReasonMapping(reason=reason, provider_kind="rebilly", value="too-slow"), actor=manager
        )

    assert entries() == []


# --- through the admin -------------------------------------------------------------------------


def test_an_admin_edit_with_a_new_mapping_is_recorded_as_the_manager_via_the_admin(client, manager):
    client.force_login(manager)
    reason = CancellationReasonFactory(subject="Too expensive")
    url = reverse("admin:reasons_cancellationreason_change", args=[reason.pk])
    data = {**mapping_data(reason, "rebilly", "too-expensive"), "subject": "Too pricey"}

    response = client.post(url, data)

    assert response.status_code == 302
    assert [(e.action, e.actor, e.via) for e in entries()] == [
        ("reason.changed", manager, Via.ADMIN),
        ("reason_mapping.created", manager, Via.ADMIN),
    ]


def test_an_admin_edit_that_changes_nothing_records_nothing(client, manager):
    client.force_login(manager)
    reason = CancellationReasonFactory()
    url = reverse("admin:reasons_cancellationreason_change", args=[reason.pk])

    client.post(url, change_form_data(reason))

    assert entries() == []


# --- pulls from Omnitron -----------------------------------------------------------------------


def test_a_pull_that_changes_the_catalog_is_one_entry_and_one_that_doesnt_none(omnitron, manager):
    first = sync.pull_reasons(actor=manager, trigger=SyncTrigger.ADMIN)
    sync.pull_reasons(actor=manager, trigger=SyncTrigger.ADMIN)

    (entry,) = entries()
    assert (entry.action, entry.actor, entry.via) == ("reason_catalog.pulled", manager, Via.ADMIN)
    assert entry.data == {"syncRun": first.pk, "created": 12, "updated": 0, "deactivated": 0}
