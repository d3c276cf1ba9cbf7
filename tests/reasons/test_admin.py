"""The reason managers' admin: curation, translations, mappings, the pull button, sync runs."""

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from reasons.models import CancellationReason, ReasonMapping, ReasonSyncRun, SyncTrigger
from tests.factories import CancellationReasonFactory, SuperUserFactory, UserFactory

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:reasons_cancellationreason_changelist")
PULL = reverse("admin:reasons_cancellationreason_pull")
RUNS = reverse("admin:reasons_reasonsyncrun_changelist")

MANAGER_PERMISSIONS = [
    "reasons.view_cancellationreason",
    "reasons.change_cancellationreason",
    "reasons.add_cancellationreason",
    "reasons.view_reasonmapping",
    "reasons.add_reasonmapping",
    "reasons.change_reasonmapping",
    "reasons.delete_reasonmapping",
    "reasons.pull_reasons",
    "reasons.view_reasonsyncrun",
]


@pytest.fixture
def manager(client):
    user = UserFactory(permissions=MANAGER_PERMISSIONS)
    client.force_login(user)
    return user


def messages_of(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def change_form_data(reason, **overrides):
    data = {
        "subject": reason.subject,
        "cancellation_type": reason.cancellation_type,
        "ordering": reason.ordering,
        "is_active": "on" if reason.is_active else "",
        "subject_de": reason.subject_de,
        "subject_en": reason.subject_en,
        "subject_tr": reason.subject_tr,
        "mappings-TOTAL_FORMS": "0",
        "mappings-INITIAL_FORMS": "0",
        "mappings-MIN_NUM_FORMS": "0",
        "mappings-MAX_NUM_FORMS": "3",
    }
    data.update(overrides)
    return {key: value for key, value in data.items() if value != ""}


# --- the reason list ---------------------------------------------------------------------------


def test_changelist_shows_the_catalog_in_a_bounded_number_of_queries(
    client, manager, django_assert_max_num_queries
):
    CancellationReasonFactory.create_batch(25)

    with django_assert_max_num_queries(12):
        response = client.get(CHANGELIST)

    assert response.status_code == 200
    assert response.context["cl"].result_count == 25


def test_changelist_edits_ordering_and_active_in_place_and_moves_modified_date(client, manager):
    reason = CancellationReasonFactory(ordering=100, is_active=True)
    before = reason.modified_date

    response = client.post(
        CHANGELIST,
        {
            "form-TOTAL_FORMS": "1",
            "form-INITIAL_FORMS": "1",
            "form-0-id": reason.pk,
            "form-0-ordering": "7",
            "_save": "Save",
        },
    )

    reason.refresh_from_db()
    assert response.status_code == 302
    assert (reason.ordering, reason.is_active) == (7, False)
    assert reason.modified_date > before


def test_changelist_searches_translated_subjects(client, manager):
    CancellationReasonFactory(subject="Diğer", subject_de="Sonstiges")
    CancellationReasonFactory(subject="Too expensive")

    response = client.get(CHANGELIST, {"q": "Sonst"})

    assert response.context["cl"].result_count == 1


def test_changelist_filters_omnitron_and_local_reasons(client, manager):
    CancellationReasonFactory()
    local = CancellationReasonFactory(omnitron_id=None)

    response = client.get(CHANGELIST, {"source": "local"})

    assert list(response.context["cl"].result_list) == [local]


# --- the change form: translations and mappings ------------------------------------------------


def test_change_form_saves_translated_subjects(client, manager):
    reason = CancellationReasonFactory(subject="Diğer")
    url = reverse("admin:reasons_cancellationreason_change", args=[reason.pk])

    client.post(url, change_form_data(reason, subject_de="Sonstiges", subject_en="Other"))

    reason.refresh_from_db()
    assert (reason.subject_de, reason.subject_en) == ("Sonstiges", "Other")


def test_change_form_shows_what_each_provider_gets(client, manager):
    reason = CancellationReasonFactory(subject="Too expensive")
    url = reverse("admin:reasons_cancellationreason_change", args=[reason.pk])

    content = client.get(url).content.decode()

    assert "Rebilly: other" in content
    assert "Callisto: Too expensive" in content


def mapping_data(reason, kind, value):
    return change_form_data(
        reason,
        **{
            "mappings-TOTAL_FORMS": "1",
            "mappings-0-provider_kind": kind,
            "mappings-0-value": value,
            "mappings-0-reason": reason.pk,
        },
    )


def test_a_mapping_is_added_inline(client, manager):
    reason = CancellationReasonFactory()
    url = reverse("admin:reasons_cancellationreason_change", args=[reason.pk])

    response = client.post(url, mapping_data(reason, "rebilly", "too-expensive"))

    assert response.status_code == 302
    assert ReasonMapping.objects.get().value == "too-expensive"


def test_a_rebilly_mapping_outside_its_enum_is_refused_inline(client, manager):
    reason = CancellationReasonFactory()
    url = reverse("admin:reasons_cancellationreason_change", args=[reason.pk])

    response = client.post(url, mapping_data(reason, "rebilly", "too-slow"))

    assert response.status_code == 200
    assert "Rebilly accepts only one of" in response.content.decode()
    assert not ReasonMapping.objects.exists()


def test_a_reason_from_omnitron_cannot_be_deleted(client):
    client.force_login(SuperUserFactory())
    reason = CancellationReasonFactory()

    response = client.post(
        reverse("admin:reasons_cancellationreason_delete", args=[reason.pk]), {"post": "yes"}
    )

    assert response.status_code == 403
    assert CancellationReason.objects.filter(pk=reason.pk).exists()


# --- "Pull from Omnitron now" ------------------------------------------------------------------


def test_the_pull_button_is_shown_to_those_who_may_pull(client, manager):
    assert "Pull from Omnitron now" in client.get(CHANGELIST).content.decode()


def test_the_pull_button_is_hidden_from_those_who_may_not(client):
    client.force_login(UserFactory(permissions=["reasons.view_cancellationreason"]))

    assert "Pull from Omnitron now" not in client.get(CHANGELIST).content.decode()


def test_pulling_from_the_admin_reports_the_counts(client, manager, omnitron):
    response = client.post(PULL)

    assert response.status_code == 302
    assert response["Location"] == CHANGELIST
    assert messages_of(response) == [
        "Pulled 12 reasons from Omnitron: 12 created, 0 updated, 0 deactivated."
    ]
    run = ReasonSyncRun.objects.get()
    assert (run.trigger, run.triggered_by) == (SyncTrigger.ADMIN, manager)


def test_a_pull_from_the_admin_shows_its_warnings(client, manager, omnitron):
    omnitron.update_reason(3, cancellation_type="exchange")

    response = client.post(PULL)

    success, warning = messages_of(response)
    assert success.startswith("Pulled 12 reasons")
    assert warning.startswith('Reason pk 3: Omnitron\'s cancellation_type "exchange"')


def test_a_failed_pull_from_the_admin_says_why(client, manager, omnitron):
    omnitron.malformed_on_page = 1

    response = client.post(PULL)

    (message,) = messages_of(response)
    assert message.startswith("Pulling from Omnitron failed; nothing changed.")
    assert "not valid JSON" in message
    assert not CancellationReason.objects.exists()


def test_a_pull_from_the_admin_while_another_runs_is_refused_with_a_message(
    client, manager, omnitron
):
    ReasonSyncRun.objects.create(trigger=SyncTrigger.SCHEDULE)

    response = client.post(PULL)

    assert "Another pull from Omnitron is running" in messages_of(response)[0]
    assert omnitron.requests == []


def test_pulling_from_the_admin_needs_a_post(client, manager, omnitron):
    assert client.get(PULL).status_code == 405
    assert not ReasonSyncRun.objects.exists()


def test_pulling_from_the_admin_needs_the_pull_permission(client, omnitron):
    client.force_login(UserFactory(permissions=["reasons.view_cancellationreason"]))

    assert client.post(PULL).status_code == 403
    assert not ReasonSyncRun.objects.exists()


# --- sync runs ---------------------------------------------------------------------------------


def test_sync_runs_are_listed_with_their_counts(client, manager, django_assert_max_num_queries):
    for _ in range(5):
        ReasonSyncRun.objects.create(
            trigger=SyncTrigger.ADMIN, triggered_by=manager, status="succeeded", created_count=3
        )

    # session, user, profile, permissions ×2, counts ×2, page, date hierarchy, filter choices
    with django_assert_max_num_queries(11):
        response = client.get(RUNS)

    assert response.context["cl"].result_count == 5


def test_sync_runs_are_read_only(client):
    client.force_login(SuperUserFactory())
    run = ReasonSyncRun.objects.create(trigger=SyncTrigger.ADMIN, status="failed", error="boom")

    assert client.get(reverse("admin:reasons_reasonsyncrun_add")).status_code == 403
    change = reverse("admin:reasons_reasonsyncrun_change", args=[run.pk])
    client.post(change, {"error": "rewritten", "status": "succeeded"})
    run.refresh_from_db()
    assert (run.status, run.error) == ("failed", "boom")
