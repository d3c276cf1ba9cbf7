"""The reason managers' admin in a real browser: the "Pull from Omnitron now" button."""

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from reasons.models import CancellationReason, ReasonSyncRun, SyncTrigger
from tests.factories import UserFactory

pytestmark = pytest.mark.browser


@pytest.fixture
def reason_manager(db):
    return UserFactory(
        permissions=[
            "reasons.view_cancellationreason",
            "reasons.change_cancellationreason",
            "reasons.pull_reasons",
            "reasons.view_reasonsyncrun",
        ]
    )


def test_the_pull_button_fills_the_reason_catalog_from_omnitron(
    page, sign_in, reason_manager, omnitron
):
    sign_in(reason_manager)
    page.goto(reverse("admin:reasons_cancellationreason_changelist"))
    expect(page.locator("#result_list")).to_have_count(0)  # nothing to list yet

    page.get_by_role("button", name="Pull from Omnitron now").click()

    expect(page.locator("ul.messagelist")).to_have_text(
        "Pulled 12 reasons from Omnitron: 12 created, 0 updated, 0 deactivated."
    )
    expect(page.locator("#result_list tbody tr")).to_have_count(12)
    # In the reader's language (Omnitron's subject is Turkish, its English translation shown).
    expect(page.get_by_role("link", name="I bought the wrong product.")).to_be_visible()
    assert CancellationReason.objects.filter(omnitron_id__isnull=False).count() == 12
    run = ReasonSyncRun.objects.get()
    assert (run.trigger, run.triggered_by, run.succeeded) == (
        SyncTrigger.ADMIN,
        reason_manager,
        True,
    )
