"""Logging in through the login form, in a real browser."""

import re

import pytest
from django.shortcuts import resolve_url
from playwright.sync_api import expect

from tests.factories import UserFactory

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery staple"  # UserFactory's


def test_a_wrong_password_is_refused_and_the_right_one_opens_the_page_after_login(
    page, live_server, agent
):
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(agent.username)
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Log in").click()

    expect(page.get_by_role("alert")).to_contain_text(
        "Please enter a correct username and password"
    )
    expect(page).to_have_url(re.compile(r"/accounts/login/$"))
    expect(page.get_by_label("Username")).to_have_value(agent.username)

    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()

    expect(page).to_have_url(live_server.url + resolve_url("staff:dashboard"))
    expect(page.get_by_text(f"Signed in as {agent.username}")).to_be_visible()
    agent.refresh_from_db()
    assert agent.last_login is not None


def test_a_protected_page_asks_for_a_login_and_then_opens(page, live_server):
    user = UserFactory(permissions=["cancellations.view_order"])

    page.goto("/staff/orders/")
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()

    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.keyboard.press("Enter")

    expect(page).to_have_url(live_server.url + "/staff/orders/")
    expect(page.get_by_role("heading", name="Orders", exact=True)).to_be_visible()
