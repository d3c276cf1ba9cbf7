"""The demo's data looks like a month of work: cancellations spread over the last 30 days."""

import io
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from cancellations.models import AuditEntry, Cancellation
from reasons.models import ReasonMapping
from tests.factories import CancellationReasonFactory

pytestmark = pytest.mark.django_db


def test_demo_cancellations_are_spread_over_the_last_30_days():
    CancellationReasonFactory.create_batch(3)
    started = timezone.now()

    call_command("demo_data", orders=150, seed=7, logins=False, stdout=io.StringIO())

    cancellations = list(Cancellation.objects.all())
    days = {c.created_time.date() for c in cancellations}
    assert len(cancellations) > 10
    assert len(days) > 5
    assert all(started - timedelta(days=30) <= c.created_time <= started for c in cancellations)
    assert all(c.canceled_time == c.churn_time == c.created_time for c in cancellations)
    # The trail tells the same story as the rows.
    for cancellation in cancellations[:5]:
        times = AuditEntry.objects.filter(cancellation=cancellation).values_list(
            "created_at", flat=True
        )
        assert set(times) == {cancellation.created_time}


def test_every_demo_reason_gets_a_mapping_for_every_provider_and_rebilly_a_fitting_code():
    expensive = CancellationReasonFactory(subject="Ürün çok pahalı.", subject_en="Too expensive.")
    other = CancellationReasonFactory(subject="Diğer", subject_en="Other", subject_de="Sonstiges")
    ReasonMapping.objects.create(reason=other, provider_kind="callisto", value="Kept as it is")

    call_command("demo_data", orders=0, logins=False, stdout=io.StringIO())

    assert mapped(expensive) == {
        "rebilly": "too-expensive",
        "callisto": "Too expensive.",
        "billing": "Ürün çok pahalı.",
    }
    assert mapped(other) == {
        "rebilly": "other",
        "callisto": "Kept as it is",
        "billing": "Sonstiges",
    }


def mapped(reason) -> dict[str, str]:
    return dict(reason.mappings.values_list("provider_kind", "value"))
