"""The admin on a 1366 px laptop screen: every change list's table fits without a scrollbar, in
English, German and Turkish, with the demo's data in it."""

import io

import pytest
from django.conf import settings
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.urls import reverse

pytestmark = pytest.mark.browser

LAPTOP = {"width": 1366, "height": 768}
TABLE_WIDTH = """(() => {
  const results = document.querySelector('#changelist .results');
  return results ? [results.scrollWidth, results.clientWidth] : null;
})()"""


def changelist_urls() -> list[str]:
    return [
        reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        for model in admin.site._registry
    ]


@pytest.mark.parametrize("language", ["en", "de", "tr"])
def test_every_change_list_fits_a_1366_px_screen(page, sign_in, live_server, omnitron, language):
    call_command("pull_reasons")
    call_command("demo_data", orders=40, logins=False, stdout=io.StringIO())
    sign_in(get_user_model().objects.get(username="admin"))
    page.context.add_cookies(
        [{"name": settings.LANGUAGE_COOKIE_NAME, "value": language, "url": live_server.url}]
    )
    page.set_viewport_size(LAPTOP)

    cut = {}
    for url in changelist_urls():
        page.goto(url)
        widths = page.evaluate(TABLE_WIDTH)
        if widths and widths[0] > widths[1]:
            cut[url] = widths
    assert cut == {}


def test_an_admin_action_form_is_laid_out_like_the_admins_own_forms(
    page, sign_in, admin_user, order_with_items, reason
):
    sign_in(admin_user)
    page.set_viewport_size(LAPTOP)
    page.goto(reverse("admin:cancellations_order_changelist"))
    page.locator("input.action-select").first.check()
    page.locator("select[name=action]").select_option("cancel_orders")
    page.get_by_role("button", name="Go").click()

    label = page.locator(".form-row.field-reason label").bounding_box()
    field = page.locator(".form-row.field-reason select").bounding_box()
    # Aligned: the label in its own column, the field beside it on the same line.
    assert field["x"] >= label["x"] + 150
    assert abs(field["y"] - label["y"]) < 20
