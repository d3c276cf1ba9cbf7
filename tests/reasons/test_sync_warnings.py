"""A cancellation_type outside Omnitron's documented values (docs/contracts/akinon/GUESSES.md):
kept as UNKNOWN, reported on the sync run, never served as an unknown enum value."""

import pytest

from reasons import services, sync
from reasons.models import CancellationReason, CancellationType

pytestmark = pytest.mark.django_db


def test_an_unknown_cancellation_type_is_kept_as_unknown_and_reported_on_the_run(omnitron):
    omnitron.update_reason(4, cancellation_type="exchange")

    run = sync.pull_reasons()

    assert run.succeeded
    assert run.created_count == 12
    reason = CancellationReason.objects.get(omnitron_id=4)
    assert reason.cancellation_type == CancellationType.UNKNOWN == ""
    assert reason.subject == "Teslimat çok gecikti."
    assert run.warnings.splitlines() == [
        'Reason pk 4: Omnitron\'s cancellation_type "exchange" is not one Storno knows '
        "(cancel, refund); the reason is kept with an unknown type."
    ]


def test_a_pull_with_only_documented_types_has_no_warnings(omnitron):
    assert sync.pull_reasons().warnings == ""


def test_a_reason_whose_type_becomes_unknown_upstream_loses_its_old_type(omnitron):
    sync.pull_reasons()
    omnitron.update_reason(9, cancellation_type="Refund")

    run = sync.pull_reasons()

    assert CancellationReason.objects.get(omnitron_id=9).cancellation_type == ""
    assert run.updated_count == 1
    assert '"Refund"' in run.warnings


def test_an_unknown_type_is_reported_on_every_pull_until_omnitron_fixes_it(omnitron):
    omnitron.update_reason(2, cancellation_type="exchange")
    sync.pull_reasons()

    again = sync.pull_reasons()
    omnitron.update_reason(2, cancellation_type="refund")
    fixed = sync.pull_reasons()

    assert "pk 2" in again.warnings
    assert again.updated_count == 0
    assert fixed.warnings == ""
    assert CancellationReason.objects.get(omnitron_id=2).cancellation_type == "refund"


def test_a_managers_type_for_an_unknown_one_survives_pulls_until_omnitron_changes_it(omnitron):
    omnitron.update_reason(2, cancellation_type="exchange")
    sync.pull_reasons()
    reason = CancellationReason.objects.get(omnitron_id=2)
    reason.cancellation_type = "cancel"
    services.save_reason(reason)

    sync.pull_reasons()

    reason.refresh_from_db()
    assert reason.cancellation_type == "cancel"


def test_a_local_reason_needs_a_documented_type():
    reason = CancellationReason(subject="Lokal", cancellation_type=CancellationType.UNKNOWN)

    with pytest.raises(services.ReasonError) as caught:
        services.save_reason(reason)

    assert "cancellation_type" in caught.value.message_dict
    assert not CancellationReason.objects.exists()
