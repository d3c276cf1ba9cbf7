"""Pulling the catalog from Omnitron (over real HTTP against the fake), reason managers' edits
and what each provider calls a reason."""

from datetime import timedelta

import pytest
from django.utils import timezone, translation

from cancellations.errors import CancellationError
from cancellations.models import AuditEntry
from cancellations.services import writing
from providers.fakes.omnitron import OmnitronFake, demo_catalog, make_catalog
from providers.omnitron import OmnitronAdapter
from reasons import services, sync
from reasons.models import (
    CancellationReason,
    ReasonMapping,
    ReasonSyncRun,
    SyncStatus,
    SyncTrigger,
)
from tests.factories import (
    CancellationFactory,
    CancellationReasonFactory,
    OrderFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


def snapshot_of_catalog():
    return list(CancellationReason.objects.order_by("id").values())


# --- the first pull ----------------------------------------------------------------------------


def test_first_pull_creates_every_reason_of_every_page(omnitron):
    run = sync.pull_reasons()

    assert run.succeeded
    assert (run.fetched_count, run.created_count, run.updated_count) == (12, 12, 0)
    assert CancellationReason.objects.filter(omnitron_id__isnull=False).count() == 12


def test_pull_maps_omnitrons_fields_to_storno_fields(omnitron):
    omnitron.update_reason(11, order=50, cancellation_type="refund", extra_information_needed=True)

    sync.pull_reasons()

    reason = CancellationReason.objects.get(omnitron_id=11)
    assert reason.subject == "Sipariş yanlışlıkla verildi."
    assert reason.ordering == 50
    assert reason.cancellation_type == "refund"
    assert reason.extra_information_needed is True
    assert reason.is_active is True


def test_pull_fills_the_translated_subjects_from_omnitrons_translations(omnitron):
    sync.pull_reasons()

    reason = CancellationReason.objects.get(omnitron_id=1)
    assert (reason.subject_tr, reason.subject_de, reason.subject_en) == (
        "Yanlış ürün aldım.",
        "Falsches Produkt gekauft.",
        "I bought the wrong product.",
    )


def test_pull_without_translations_keeps_the_translated_subjects(omnitron):
    sync.pull_reasons()
    omnitron.update_reason(1, translations=None)

    sync.pull_reasons()

    assert CancellationReason.objects.get(omnitron_id=1).subject_de == "Falsches Produkt gekauft."


# --- later pulls -------------------------------------------------------------------------------


def test_a_second_pull_without_upstream_change_changes_nothing(omnitron):
    sync.pull_reasons()
    before = snapshot_of_catalog()

    run = sync.pull_reasons()

    assert (run.created_count, run.updated_count, run.deactivated_count) == (0, 0, 0)
    assert snapshot_of_catalog() == before


def test_an_upstream_change_updates_the_reason_and_its_modified_date(omnitron):
    sync.pull_reasons()
    before = CancellationReason.objects.get(omnitron_id=3)
    omnitron.update_reason(3, subject="Fiyatı çok yüksek.")

    run = sync.pull_reasons()

    after = CancellationReason.objects.get(omnitron_id=3)
    assert run.updated_count == 1
    assert after.subject == "Fiyatı çok yüksek."
    assert after.modified_date > before.modified_date
    assert CancellationReason.objects.get(omnitron_id=4).modified_date < after.modified_date


def test_a_reason_gone_upstream_is_deactivated_not_deleted(omnitron):
    sync.pull_reasons()
    omnitron.remove_reason(5)

    run = sync.pull_reasons()

    assert run.deactivated_count == 1
    assert CancellationReason.objects.get(omnitron_id=5).is_active is False


def test_a_reason_soft_deleted_upstream_is_deactivated(omnitron):
    sync.pull_reasons()
    omnitron.update_reason(5, is_active=False)

    sync.pull_reasons()

    assert CancellationReason.objects.get(omnitron_id=5).is_active is False


def test_a_reason_back_upstream_is_active_again(omnitron):
    sync.pull_reasons()
    removed = omnitron.catalog[4]
    omnitron.remove_reason(5)
    sync.pull_reasons()
    omnitron.set_catalog([*omnitron.catalog, removed])

    sync.pull_reasons()

    assert CancellationReason.objects.get(omnitron_id=5).is_active is True


def test_a_deactivated_reason_still_used_by_a_cancellation_is_kept(omnitron):
    sync.pull_reasons()
    used = CancellationReason.objects.get(omnitron_id=2)
    CancellationFactory(reason=used)
    omnitron.remove_reason(2)

    sync.pull_reasons()

    used.refresh_from_db()
    assert used.is_active is False
    assert used.cancellations.count() == 1


def test_local_only_reasons_are_untouched(omnitron):
    local = CancellationReasonFactory(omnitron_id=None, subject="Kulanz", ordering=5)
    before = CancellationReason.objects.filter(pk=local.pk).values().get()

    sync.pull_reasons()

    assert CancellationReason.objects.filter(pk=local.pk).values().get() == before


def test_a_managers_ordering_survives_pulls_without_upstream_change(omnitron):
    sync.pull_reasons()
    reason = CancellationReason.objects.get(omnitron_id=1)
    reason.ordering = 1
    reason.is_active = False
    services.save_reason(reason)

    sync.pull_reasons()

    reason.refresh_from_db()
    assert (reason.ordering, reason.is_active) == (1, False)


def test_an_upstream_change_of_a_curated_field_wins(omnitron):
    sync.pull_reasons()
    reason = CancellationReason.objects.get(omnitron_id=1)
    reason.ordering = 1
    services.save_reason(reason)
    omnitron.update_reason(1, order=300)

    sync.pull_reasons()

    reason.refresh_from_db()
    assert reason.ordering == 300


def test_a_catalog_over_many_pages_is_pulled_whole(omnitron):
    omnitron.set_catalog(make_catalog(1234))
    omnitron.page_size = 100

    run = sync.pull_reasons()

    assert run.created_count == 1234
    assert len(omnitron.requests) == 13


# --- failures ----------------------------------------------------------------------------------


def fault_401(fake):
    fake.token = "another-token"


def fault_500_on_page_2(fake):
    fake.server_error_on_page = 2


def fault_slow_page(fake):
    fake.slow_on_page = 2
    fake.slow_seconds = 3


def fault_malformed_json(fake):
    fake.malformed_on_page = 3


def fault_looping_next(fake):
    fake.loop_on_page = 3


def fault_next_link_on_another_host(fake):
    fake.link_base_url = "http://127.0.0.2:9"


@pytest.mark.parametrize(
    ("fault", "cause"),
    [
        (fault_401, "unauthorized"),
        (fault_500_on_page_2, "server_error"),
        (fault_slow_page, "timeout"),
        (fault_malformed_json, "bad_json"),
        (fault_looping_next, "pagination_loop"),
        (fault_next_link_on_another_host, "foreign_next_link"),
    ],
)
def test_a_failed_pull_changes_nothing_and_records_why(omnitron, fault, cause):
    sync.pull_reasons()
    omnitron.update_reason(1, subject="Geändert")
    omnitron.remove_reason(2)
    before = snapshot_of_catalog()
    fault(omnitron)

    run = sync.pull_reasons()

    assert run.status == SyncStatus.FAILED
    assert run.error_cause == cause
    assert run.error
    assert run.finished_at is not None
    assert snapshot_of_catalog() == before


def test_a_next_link_to_another_server_fails_the_run_naming_it_and_sends_it_nothing(omnitron):
    with OmnitronFake(catalog=demo_catalog()) as elsewhere:
        omnitron.link_base_url = elsewhere.url

        run = sync.pull_reasons()

    assert run.status == SyncStatus.FAILED
    assert run.error_cause == "foreign_next_link"
    assert f"{elsewhere.url}/api/v1/cancellation_reasons/?page=2" in run.error
    assert "token is not sent" in run.error
    assert elsewhere.requests == []
    assert not CancellationReason.objects.exists()


def test_a_failed_first_pull_creates_nothing(omnitron):
    omnitron.server_error_on_page = 3

    run = sync.pull_reasons()

    assert not run.succeeded
    assert not CancellationReason.objects.exists()


def test_a_pull_without_configuration_fails_naming_the_setting(settings):
    settings.OMNITRON_BASE_URL = ""

    run = sync.pull_reasons()

    assert run.error_cause == "not_configured"
    assert "OMNITRON_BASE_URL" in run.error


# --- runs and the lock -------------------------------------------------------------------------


def test_each_run_records_its_counts_times_and_who_triggered_it(omnitron):
    manager = UserFactory()

    run = sync.pull_reasons(actor=manager, trigger=SyncTrigger.ADMIN)

    assert run.triggered_by == manager
    assert run.trigger == SyncTrigger.ADMIN
    assert run.started_at <= run.finished_at
    assert ReasonSyncRun.objects.count() == 1


def test_a_pull_is_refused_while_another_is_running(omnitron):
    ReasonSyncRun.objects.create(trigger=SyncTrigger.SCHEDULE)

    with pytest.raises(sync.ReasonSyncInProgress):
        sync.pull_reasons()

    assert not CancellationReason.objects.exists()
    assert omnitron.requests == []


def test_a_stale_running_pull_is_taken_over(omnitron, settings):
    settings.REASON_SYNC_STALE_MINUTES = 30
    stale = ReasonSyncRun.objects.create(
        trigger=SyncTrigger.SCHEDULE, started_at=timezone.now() - timedelta(minutes=31)
    )

    run = sync.pull_reasons()

    stale.refresh_from_db()
    assert run.succeeded
    assert (stale.status, stale.error_cause) == (SyncStatus.FAILED, "abandoned")


def test_a_pull_taken_over_while_fetching_applies_nothing(omnitron):
    class TakenOverWhileFetching(OmnitronAdapter):
        def fetch_cancellation_reasons(self):
            reasons = super().fetch_cancellation_reasons()
            ReasonSyncRun.objects.update(status=SyncStatus.FAILED, error_cause="abandoned")
            return reasons

    run = sync.pull_reasons(adapter=TakenOverWhileFetching())

    assert run.status == SyncStatus.FAILED
    assert not CancellationReason.objects.exists()


def test_an_unexpected_error_while_fetching_fails_the_run_and_releases_the_lock(omnitron):
    class Broken(OmnitronAdapter):
        def fetch_cancellation_reasons(self):
            raise RuntimeError("adapter bug")

    with pytest.raises(RuntimeError):
        sync.pull_reasons(adapter=Broken())

    assert ReasonSyncRun.objects.get().error == "adapter bug"
    assert sync.pull_reasons().succeeded


# --- item 7: what a pull deactivates can no longer be chosen -----------------------------------


def test_a_reason_deactivated_by_a_pull_is_refused_for_new_cancellations(omnitron):
    sync.pull_reasons()
    omnitron.remove_reason(1)
    sync.pull_reasons()
    order = OrderFactory()

    with pytest.raises(CancellationError) as caught:
        writing.cancel_order(
            order,
            reason=CancellationReason.objects.get(omnitron_id=1),
            actor=UserFactory(),
            via=AuditEntry.Via.WEB,
        )

    assert "reason" in caught.value.message_dict


# --- reason managers' edits --------------------------------------------------------------------


def test_saving_a_reason_without_change_keeps_its_modified_date(reason):
    before = reason.modified_date

    services.save_reason(reason)

    reason.refresh_from_db()
    assert reason.modified_date == before


def test_saving_a_changed_reason_moves_its_modified_date(reason):
    before = reason.modified_date
    reason.ordering = 3

    services.save_reason(reason)

    reason.refresh_from_db()
    assert (reason.ordering, reason.modified_date > before) == (3, True)


def test_saving_a_reason_without_subject_names_the_field():
    reason = CancellationReason(subject="")

    with pytest.raises(services.ReasonError) as caught:
        services.save_reason(reason)

    assert "subject" in caught.value.message_dict


def test_a_reason_from_omnitron_cannot_be_deleted(reason):
    with pytest.raises(services.ReasonError):
        services.delete_reason(reason)

    assert CancellationReason.objects.filter(pk=reason.pk).exists()


def test_an_unused_local_reason_can_be_deleted():
    local = CancellationReasonFactory(omnitron_id=None)

    services.delete_reason(local)

    assert not CancellationReason.objects.filter(pk=local.pk).exists()


# --- translations ------------------------------------------------------------------------------


def test_localized_subject_uses_the_language_and_falls_back_to_the_subject():
    reason = CancellationReasonFactory(subject="Yanlış ürün aldım.", subject_de="Falsches Produkt")

    assert reason.localized_subject("de") == "Falsches Produkt"
    assert reason.localized_subject("de-at") == "Falsches Produkt"
    assert reason.localized_subject("en") == "Yanlış ürün aldım."
    assert reason.localized_subject("fr") == "Yanlış ürün aldım."


def test_str_is_the_subject_in_the_active_language():
    reason = CancellationReasonFactory(subject="Diğer", subject_en="Other")

    with translation.override("en"):
        assert str(reason) == "Other"
    with translation.override("tr"):
        assert str(reason) == "Diğer"


# --- provider mappings -------------------------------------------------------------------------


def test_without_mappings_every_provider_gets_its_default(reason):
    assert services.mapped_reason(reason, "rebilly") == "other"
    assert services.mapped_reason(reason, "callisto") == reason.subject
    assert services.mapped_reason(reason, "billing") == reason.subject


def test_a_mapping_is_what_the_provider_gets(reason):
    services.save_reason_mapping(
        ReasonMapping(reason=reason, provider_kind="rebilly", value="too-expensive")
    )
    services.save_reason_mapping(
        ReasonMapping(reason=reason, provider_kind="callisto", value="Kunde: zu teuer")
    )

    assert services.mapped_reason(reason, "rebilly") == "too-expensive"
    assert services.mapped_reason(reason, "callisto") == "Kunde: zu teuer"
    assert services.mapped_reason(reason, "billing") == reason.subject


def test_mapped_reason_uses_prefetched_mappings(reason, django_assert_num_queries):
    ReasonMapping.objects.create(reason=reason, provider_kind="rebilly", value="did-not-use")
    prefetched = CancellationReason.objects.prefetch_related("mappings").get(pk=reason.pk)

    with django_assert_num_queries(0):
        assert services.mapped_reason(prefetched, "rebilly") == "did-not-use"


def test_a_rebilly_mapping_outside_rebillys_reasons_is_refused(reason):
    with pytest.raises(services.ReasonError) as caught:
        services.save_reason_mapping(
            ReasonMapping(reason=reason, provider_kind="rebilly", value="too-slow")
        )

    assert "value" in caught.value.message_dict
    assert not ReasonMapping.objects.exists()


def test_a_billing_mapping_longer_than_250_characters_is_refused(reason):
    with pytest.raises(services.ReasonError) as caught:
        services.save_reason_mapping(
            ReasonMapping(reason=reason, provider_kind="billing", value="x" * 251)
        )

    assert "value" in caught.value.message_dict
