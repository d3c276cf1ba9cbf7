"""The language switcher in the header: German and Turkish, and a cancellation done in German."""

import re

import pytest
from playwright.sync_api import expect

from cancellations.models import Cancellation
from cancellations.states import OrderStatus
from tests.factories import CancellationReasonFactory

pytestmark = pytest.mark.browser


def switch_language(page, code: str, *, button: str) -> None:
    page.locator("#language-select").select_option(code)
    page.get_by_role("button", name=button, exact=True).click()
    expect(page.locator("html")).to_have_attribute("lang", code)


def test_the_header_switcher_turns_the_pages_german_and_turkish_and_cancelling_works_in_german(
    agent_page, order_with_items
):
    order, page = order_with_items, agent_page
    reason = CancellationReasonFactory(
        subject="Too expensive", subject_de="Zu teuer", subject_tr="Çok pahalı"
    )

    page.goto("/staff/orders/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Orders")
    switch_language(page, "de", button="Change")

    expect(page).to_have_url(re.compile(r"/staff/orders/$"))  # back where the user was
    expect(page.get_by_role("heading", level=1)).to_have_text("Bestellungen")
    expect(page.get_by_text("Sprache")).to_be_visible()

    page.get_by_role("link", name=order.number).click()
    page.get_by_role("link", name="Bestellung stornieren").click()
    page.get_by_role("combobox", name="Grund").select_option(label="Zu teuer")
    expect(page.get_by_label("Die gesamte Bestellung")).to_be_checked()
    page.get_by_role("button", name="Vorschau").click()
    page.get_by_role("button", name="Stornierung bestätigen").click()

    expect(page.get_by_role("status")).to_have_text(
        re.compile(rf"Bestellung {order.number}: Stornierung cnl_\w+ ist erledigt\.")
    )
    cancellation = Cancellation.objects.get()
    assert (cancellation.reason, cancellation.is_whole_order) == (reason, True)
    order.refresh_from_db()
    assert order.status == OrderStatus.CANCELLED
    expect(page.locator("h1 .badge")).to_have_text("Abgeschlossen")

    switch_language(page, "tr", button="Ändern")

    expect(page).to_have_url(re.compile(re.escape(cancellation.get_absolute_url()) + "$"))
    expect(page.locator("h1 .badge")).to_have_text("Tamamlandı")
    expect(page.get_by_role("navigation").get_by_role("link", name="Siparişler")).to_be_visible()
    expect(page.get_by_text("Çok pahalı")).to_be_visible()
