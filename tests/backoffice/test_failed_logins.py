"""Refused credentials per client address: the API's failed-auth throttle (429 with Retry-After,
a problem object) and the login lockout per address across user names (password spraying)."""

import base64
from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.apps import apps
from django.test import Client
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from backoffice import throttling
from tests.factories import SuperUserFactory, UserFactory

ORDERS_API = "/api/v1/orders/"
CANCELLATIONS_API = "/api/v1/order-cancellations/"
LOGIN = "/accounts/login/"
ADMIN_LOGIN = "/admin/login/"
PASSWORD = "correct horse battery staple"  # UserFactory's
FROZEN_NOW = 1_800_000_030.0  # 30 s into a minute


@pytest.fixture(autouse=True)
def frozen_clock(monkeypatch):
    monkeypatch.setattr(throttling.AtomicRateThrottle, "timer", staticmethod(lambda: FROZEN_NOW))


@pytest.fixture
def reader(db):
    return UserFactory(username="reader", permissions=["cancellations.view_order"])


def with_token(key: str, **extra):
    return APIClient().get(ORDERS_API, HTTP_AUTHORIZATION=f"Token {key}", **extra)


def with_basic(username: str, password: str, **extra):
    pair = base64.b64encode(f"{username}:{password}".encode()).decode()
    return APIClient().get(ORDERS_API, HTTP_AUTHORIZATION=f"Basic {pair}", **extra)


def bad_token(number: int = 0) -> str:
    return f"{number:040x}"


# --- the API: refused credentials per address ----------------------------------------------------


def test_past_the_limit_refused_tokens_get_a_429_problem_with_retry_after(rates, db):
    rates(failed_auth="3/min")

    statuses = [with_token(bad_token(n)).status_code for n in range(3)]
    throttled = with_token(bad_token(3))

    assert statuses == [401] * 3
    assert throttled.status_code == 429
    assert throttled["Retry-After"] == "30"
    assert throttled["Content-Type"] == "application/problem+json"
    body = throttled.json()
    assert (body["status"], body["title"]) == (429, "Too many requests")
    assert body["detail"].startswith("Too many failed logins from this address.")


def test_by_default_ten_refused_tokens_a_minute_pass_from_one_address(db):
    statuses = [with_token(bad_token(n)).status_code for n in range(30)]

    assert statuses == [401] * 10 + [429] * 20


def test_past_the_limit_even_the_right_token_is_refused_from_that_address_only(rates, reader):
    rates(failed_auth="2/min")
    token = Token.objects.create(user=reader).key
    for number in range(2):
        with_token(bad_token(number))

    assert with_token(token).status_code == 429
    assert with_token(token, REMOTE_ADDR="192.0.2.50").status_code == 200


def test_wrong_basic_passwords_and_malformed_headers_count_too(rates, reader):
    rates(failed_auth="2/min")
    with_basic("reader", "wrong password")
    malformed = APIClient().get(ORDERS_API, HTTP_AUTHORIZATION="Basic !!not-base64!!")

    assert malformed.status_code == 401
    assert with_basic("reader", PASSWORD).status_code == 429


def test_a_session_from_a_throttled_address_is_not_held_back(rates, reader):
    rates(failed_auth="1/min")
    with_token(bad_token())
    session = APIClient()
    session.force_login(reader)

    assert session.get(ORDERS_API).status_code == 200


def test_requests_without_credentials_and_accepted_ones_are_not_counted(rates, reader):
    rates(failed_auth="1/min")
    token = Token.objects.create(user=reader).key

    anonymous = [APIClient().get(ORDERS_API).status_code for _ in range(3)]
    accepted = [with_token(token).status_code for _ in range(3)]

    assert anonymous == [401] * 3
    assert accepted == [200] * 3
    assert with_token(bad_token()).status_code == 401


def row_counts() -> dict[str, int]:
    return {model._meta.label: model.objects.count() for model in apps.get_models()}


def test_a_post_with_refused_credentials_writes_nothing(db, order_with_items, reason):
    before = row_counts()

    for authorization in (f"Token {bad_token()}", "Basic !!", "Bearer nonsense"):
        response = APIClient().post(
            CANCELLATIONS_API,
            {"orderId": order_with_items.pk, "reasonId": reason.pk},
            format="json",
            HTTP_AUTHORIZATION=authorization,
        )
        assert response.status_code == 401

    assert row_counts() == before


# --- the login lockout per address across user names ---------------------------------------------


def log_in(username, password, *, url=LOGIN, client=None, **extra):
    client = client or Client()
    return client.post(url, {"username": username, "password": password}, **extra)


def spray(names, **extra):
    return [log_in(name, "Summer2026!", **extra).status_code for name in names]


@pytest.fixture
def clerk(db):
    return UserFactory(username="clerk")


def test_twenty_failures_at_other_user_names_lock_the_whole_address(clerk):
    statuses = spray([f"user{n}" for n in range(20)])

    assert statuses == [200] * 19 + [429]
    locked = log_in("clerk", PASSWORD)
    assert locked.status_code == 429
    assert locked["Retry-After"] == str(15 * 60)
    assert log_in("clerk", PASSWORD, REMOTE_ADDR="192.0.2.60").status_code == 302


def test_below_the_address_limit_the_other_users_still_log_in(clerk):
    spray([f"user{n}" for n in range(19)])

    assert log_in("clerk", PASSWORD).status_code == 302


def test_the_address_limit_is_set_by_login_address_failure_limit(clerk, settings):
    settings.LOGIN_ADDRESS_FAILURE_LIMIT = 8

    assert spray([f"user{n}" for n in range(8)]) == [200] * 7 + [429]


def test_one_valid_login_does_not_wipe_the_addresss_failures(clerk):
    UserFactory(username="mallory")
    spray([f"user{n}" for n in range(19)])

    assert log_in("mallory", PASSWORD).status_code == 302
    assert spray(["user19"]) == [429]
    assert AccessAttempt.objects.filter(username="mallory").count() == 0


def test_the_admin_login_and_http_basic_count_towards_the_address_too(clerk):
    SuperUserFactory(username="root")
    spray([f"user{n}" for n in range(9)])
    admin = [log_in(f"admin{n}", "guess", url=ADMIN_LOGIN).status_code for n in range(9)]
    basic = with_basic("api-user", "guess")

    assert admin == [200] * 9
    assert basic.status_code == 401
    assert log_in("root", "guess", url=ADMIN_LOGIN).status_code == 429
    assert log_in("root", PASSWORD, url=ADMIN_LOGIN).status_code == 429


def test_refused_tries_while_locked_write_nothing(clerk):
    spray([f"user{n}" for n in range(20)])
    rows = list(AccessAttempt.objects.values_list("username", "failures_since_start"))

    assert spray([f"other{n}" for n in range(10)]) == [429] * 10
    assert log_in("clerk", PASSWORD).status_code == 429
    assert list(AccessAttempt.objects.values_list("username", "failures_since_start")) == rows


def test_the_lock_ends_a_cool_off_after_the_failure_that_set_it(clerk):
    spray(["clerk"] * 5)
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=10))

    first = log_in("clerk", PASSWORD)
    again = log_in("clerk", "another guess")

    assert (first.status_code, first["Retry-After"]) == (429, str(5 * 60))
    assert "Try again in 5 minutes." in first.content.decode()
    assert (again.status_code, again["Retry-After"]) == (429, str(5 * 60))
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=15, seconds=1))
    assert log_in("clerk", PASSWORD).status_code == 302


def test_a_locked_basic_login_says_how_long_the_lock_has_left(clerk):
    responses = [with_basic("clerk", "guess") for _ in range(5)]
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=12))

    locked = with_basic("clerk", PASSWORD)

    assert responses[-1]["Retry-After"] == str(15 * 60)
    assert (locked.status_code, locked["Retry-After"]) == (429, str(3 * 60))
