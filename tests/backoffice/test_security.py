"""Security: login lockout, API throttling, CSRF on every form, security headers and CSP, no
secret in stored delivery attempts, audit data or the repository, API clients in the audit."""

import base64
import json
import math
import re
import secrets
import shutil
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.admindocs.views import extract_views_from_urlpatterns, simplify_regex
from django.core.cache import cache
from django.test import Client
from django.urls import Resolver404, get_resolver, resolve, reverse
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient
from rest_framework.views import APIView

from cancellations import audit, service_items
from cancellations.models import AuditEntry
from cancellations.services import writing
from providers import dispatch, js7
from providers.fakes.billing import DEFAULT_USER_NAME, BillingFake
from providers.fakes.callisto import CallistoFake
from providers.fakes.js7 import DEFAULT_CONTROLLER, Js7Fake
from providers.fakes.rebilly import RebillyFake
from providers.models import Delivery, DeliveryAttempt, ProviderSetting
from providers.states import DeliveryStatus
from tests.backoffice.test_settings import run_manage
from tests.factories import (
    CancellationReasonFactory,
    OrderFactory,
    OrderItemFactory,
    SettlementItemFactory,
    SuperUserFactory,
    UserFactory,
)

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "correct horse battery staple"  # UserFactory's
LOGIN = "/accounts/login/"
ADMIN_LOGIN = "/admin/login/"
ORDERS_API = "/api/v1/orders/"
CANCELLATIONS_API = "/api/v1/order-cancellations/"
BULK_API = "/api/v1/orders/cancel/"


# --- login lockout -------------------------------------------------------------------------------


def log_in(client, username, password, *, url=LOGIN, **extra):
    return client.post(url, {"username": username, "password": password}, **extra)


def fail_logins(client, username, times, **extra):
    return [log_in(client, username, "wrong password", **extra) for _ in range(times)]


@pytest.fixture
def staff(db):
    return UserFactory(username="clerk")


def test_the_lockout_settings_default_to_five_failures_and_fifteen_minutes():
    assert settings.AXES_ENABLED is True
    assert settings.AXES_FAILURE_LIMIT == 5
    assert settings.AXES_COOLOFF_TIME.total_seconds() == 15 * 60
    assert settings.AXES_LOCKOUT_PARAMETERS == [["username", "ip_address"], "ip_address"]
    assert settings.LOGIN_ADDRESS_FAILURE_LIMIT == 20
    assert settings.AUTHENTICATION_BACKENDS[0] == "axes.backends.AxesStandaloneBackend"


def test_failed_logins_below_the_limit_show_the_usual_form_error(client, staff):
    responses = fail_logins(client, "clerk", 4)

    assert [r.status_code for r in responses] == [200] * 4
    assert "Please enter a correct username and password" in responses[-1].content.decode()


def test_the_fifth_failure_locks_the_user_out_with_a_try_again_message(client, staff):
    *_, fifth = fail_logins(client, "clerk", 5)

    assert fifth.status_code == 429
    assert fifth["Retry-After"] == str(15 * 60)
    assert "registration/locked_out.html" in [t.name for t in fifth.templates]
    text = fifth.content.decode()
    assert "Too many failed logins" in text
    assert "Try again in 15 minutes." in text


def test_a_locked_out_user_is_refused_even_with_the_right_password(client, staff):
    fail_logins(client, "clerk", 5)

    response = log_in(client, "clerk", PASSWORD)

    assert response.status_code == 429
    assert "_auth_user_id" not in client.session


def test_the_lockout_page_is_translated(client, staff):
    fail_logins(client, "clerk", 5)

    response = log_in(client, "clerk", PASSWORD, HTTP_ACCEPT_LANGUAGE="de")

    assert response.status_code == 429
    assert '<html lang="de">' in response.content.decode()


def test_the_lock_holds_only_that_username_from_that_address(client, staff):
    UserFactory(username="other")
    fail_logins(client, "clerk", 5)

    assert log_in(Client(), "other", PASSWORD).status_code == 302
    assert log_in(Client(), "clerk", PASSWORD, REMOTE_ADDR="192.0.2.7").status_code == 302
    assert log_in(Client(), "clerk", PASSWORD).status_code == 429


def test_a_forwarded_for_header_does_not_dodge_the_lock(client, staff):
    for number in range(5):
        log_in(client, "clerk", "wrong password", HTTP_X_FORWARDED_FOR=f"198.51.100.{number}")

    response = log_in(client, "clerk", PASSWORD, HTTP_X_FORWARDED_FOR="198.51.100.99")

    assert response.status_code == 429


def test_the_lock_ends_after_the_cool_off(client, staff):
    fail_logins(client, "clerk", 5)
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=16))

    assert log_in(client, "clerk", PASSWORD).status_code == 302


def test_a_successful_login_forgets_the_earlier_failures(client, staff):
    fail_logins(client, "clerk", 4)
    assert log_in(client, "clerk", PASSWORD).status_code == 302
    client.logout()

    *_, last = fail_logins(client, "clerk", 4)

    assert last.status_code == 200


def test_the_admin_login_counts_and_locks_too(client, db):
    SuperUserFactory(username="root")
    responses = fail_logins(client, "root", 5, url=ADMIN_LOGIN)

    assert [r.status_code for r in responses] == [200] * 4 + [429]
    assert log_in(client, "root", PASSWORD, url=ADMIN_LOGIN).status_code == 429
    # …and the staff login page knows about it: one count per username and address.
    assert log_in(client, "root", PASSWORD).status_code == 429


def test_failed_api_basic_auth_counts_towards_the_lock(staff):
    api = APIClient()

    def basic(password):
        token = base64.b64encode(f"clerk:{password}".encode()).decode()
        return api.get(ORDERS_API, HTTP_AUTHORIZATION=f"Basic {token}")

    refused = [basic("wrong password").status_code for _ in range(5)]

    # The fifth failure locks, as on the login page.
    assert refused == [401] * 4 + [429]
    assert AccessAttempt.objects.get(username="clerk").failures_since_start == 5
    # Locked: the right password is refused as well, with the pages' 429 and Retry-After.
    locked = basic(PASSWORD)
    assert locked.status_code == 429
    assert locked["Retry-After"] == str(15 * 60)
    assert locked["Content-Type"] == "application/problem+json"
    assert locked.json()["status"] == 429
    assert log_in(Client(), "clerk", PASSWORD).status_code == 429


def test_the_stored_attempt_never_holds_the_password(client, staff):
    log_in(client, "clerk", "my-very-own-guess-4711")

    attempt = AccessAttempt.objects.get()
    assert "my-very-own-guess-4711" not in attempt.post_data
    assert "password=" in attempt.post_data


def settings_in_a_fresh_process(tmp_path, **env) -> dict:
    code = (
        "import json; from django.conf import settings as s; r = s.REST_FRAMEWORK; "
        "print(json.dumps({'limit': s.AXES_FAILURE_LIMIT, "
        "'minutes': s.AXES_COOLOFF_TIME.total_seconds() / 60, "
        "'rates': r['DEFAULT_THROTTLE_RATES'], 'proxies': r['NUM_PROXIES'], "
        "'cache': s.CACHES['default']['BACKEND'].rsplit('.', 1)[1]}))"
    )
    result = run_manage("shell", "-c", code, DEBUG="1", STORNO_VAR_DIR=str(tmp_path), **env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_lockout_throttle_proxy_and_cache_settings_come_from_the_environment(tmp_path):
    configured = settings_in_a_fresh_process(
        tmp_path,
        LOGIN_FAILURE_LIMIT="3",
        LOGIN_LOCKOUT_MINUTES="30",
        API_THROTTLE_ANON="5/min",
        API_THROTTLE_USER="100/min",
        API_THROTTLE_BULK_CANCEL="2/hour",
        API_THROTTLE_FAILED_AUTH="3/hour",
        TRUSTED_PROXY_COUNT="2",
        CACHE_REDIS_URL="redis://127.0.0.1:6379/3",
    )

    assert configured == {
        "limit": 3,
        "minutes": 30,
        "rates": {
            "anon": "5/min",
            "user": "100/min",
            "bulk-cancel": "2/hour",
            "failed-auth": "3/hour",
        },
        "proxies": 2,
        "cache": "RedisCache",
    }


def test_by_default_the_cache_every_process_shares_is_the_database(tmp_path):
    defaults = settings_in_a_fresh_process(tmp_path, CELERY_BROKER_URL="redis://127.0.0.1:6379/0")

    assert defaults["cache"] == "DatabaseCache"
    assert (defaults["limit"], defaults["minutes"], defaults["proxies"]) == (5, 15, 0)
    assert settings_in_a_fresh_process(tmp_path, BEHIND_TLS_PROXY="1")["proxies"] == 1


# --- API throttling ------------------------------------------------------------------------------


def test_the_throttle_rates_default_to_600_per_user_30_per_anonymous_10_bulk():
    rest = settings.REST_FRAMEWORK

    assert rest["DEFAULT_THROTTLE_RATES"] == {
        "anon": "30/min",
        "user": "600/min",
        "bulk-cancel": "10/min",
        "failed-auth": "10/min",
    }
    assert {name.rsplit(".", 1)[1] for name in rest["DEFAULT_THROTTLE_CLASSES"]} == {
        "AnonRateThrottle",
        "UserRateThrottle",
        "ScopedRateThrottle",
    }
    assert rest["NUM_PROXIES"] == 0  # no X-Forwarded-For is trusted unless configured


def api_as(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_a_user_over_the_rate_gets_a_429_problem_with_retry_after(rates, db):
    rates(user="2/min")
    api = api_as(UserFactory(permissions=["cancellations.view_order"]))

    statuses = [api.get(ORDERS_API).status_code for _ in range(3)]

    assert statuses == [200, 200, 429]
    response = api.get(ORDERS_API)
    assert response["Content-Type"] == "application/problem+json"
    assert 0 < int(response["Retry-After"]) <= 60
    body = response.json()
    assert (body["status"], body["title"], body["type"]) == (
        429,
        "Too many requests",
        "urn:storno:problem:http-429",
    )


def test_each_user_has_a_rate_of_its_own(rates, db):
    rates(user="1/min")
    first = api_as(UserFactory(permissions=["cancellations.view_order"]))
    second = api_as(UserFactory(permissions=["cancellations.view_order"]))

    first.get(ORDERS_API)

    assert first.get(ORDERS_API).status_code == 429
    assert second.get(ORDERS_API).status_code == 200


def test_anonymous_clients_are_throttled_per_address(rates, db):
    rates(anon="1/min")
    anonymous = APIClient()

    assert anonymous.get("/api/schema/").status_code == 200
    throttled = anonymous.get("/api/schema/")
    other_address = anonymous.get("/api/schema/", REMOTE_ADDR="192.0.2.9")

    assert throttled.status_code == 429
    assert "Retry-After" in throttled
    assert other_address.status_code == 200


def test_the_swagger_page_answers_a_throttled_client_without_an_error(rates, db):
    rates(anon="1/min")
    anonymous = APIClient()
    anonymous.get("/api/docs/")

    assert anonymous.get("/api/docs/").status_code == 429


@pytest.fixture
def bulk_operator(db):
    return UserFactory(
        permissions=[
            "cancellations.run_bulk_cancellation",
            "cancellations.view_bulkcancellation",
            "cancellations.view_order",
        ]
    )


def test_bulk_cancellation_has_a_stricter_rate_of_its_own(rates, bulk_operator):
    rates(bulk_cancel="2/min")
    reason = CancellationReasonFactory()
    OrderItemFactory(order=OrderFactory())
    api = api_as(bulk_operator)
    dry_run = {"orderIds": [], "reasonId": reason.pk, "dryRun": True}

    statuses = [api.post(BULK_API, dry_run, format="json").status_code for _ in range(3)]

    assert statuses[2] == 429
    assert statuses[:2] != [429, 429]
    # The rest of the API is not held back by the bulk limit.
    assert api.get(ORDERS_API).status_code == 200


@pytest.mark.parametrize("run", [1, 2])
def test_each_test_starts_with_an_empty_cache(run):
    # Throttle counts live in the cache: the autouse fixture empties it around each test.
    assert cache.get("security-test-canary") is None
    cache.set("security-test-canary", run)


# --- CSRF ----------------------------------------------------------------------------------------


def every_url():
    """(path, view) for every URL pattern, with sample values for its parameters; only those
    that resolve back to a view."""
    found = []
    for view, regex, _namespace, _name in extract_views_from_urlpatterns(
        get_resolver().url_patterns
    ):
        template = simplify_regex(regex)
        for sample in ("1", "cancellations"):
            path = re.sub(r"<(\w+:)?\w+>", sample, template)
            try:
                match = resolve(path)
            except Resolver404:
                continue
            if match.func is view:
                found.append((path, view))
                break
    return found


def is_drf_view(view) -> bool:
    return isinstance(getattr(view, "cls", None), type) and issubclass(view.cls, APIView)


def test_only_api_views_skip_django_csrf_middleware():
    exempt = {path for path, view in every_url() if getattr(view, "csrf_exempt", False)}
    not_drf = {
        path
        for path, view in every_url()
        if getattr(view, "csrf_exempt", False) and not is_drf_view(view)
    }

    assert exempt  # the API is there, and DRF's SessionAuthentication checks CSRF itself
    assert all(path.startswith(("/api/", "/callisto/")) for path in exempt), exempt
    assert not_drf == set()


def test_every_form_endpoint_refuses_a_post_without_a_csrf_token(db):
    client = Client(enforce_csrf_checks=True)
    client.force_login(SuperUserFactory())
    form_urls = [path for path, view in every_url() if not getattr(view, "csrf_exempt", False)]

    answers = {path: client.post(path, {"anything": "1"}).status_code for path in form_urls}

    assert {path for path, status in answers.items() if status != 403} == set()
    for expected in (
        LOGIN,
        "/accounts/logout/",
        "/i18n/setlang/",
        ADMIN_LOGIN,
        "/admin/cancellations/order/",
        "/staff/orders/1/cancel/",
        "/staff/cancellations/1/revoke/",
        "/staff/deliveries/1/retry/",
        "/staff/bulk/new/",
    ):
        assert expected in answers, expected


def test_an_anonymous_login_post_without_a_csrf_token_is_refused(staff):
    response = log_in(Client(enforce_csrf_checks=True), "clerk", PASSWORD)

    assert response.status_code == 403


def test_a_browser_session_on_the_api_needs_the_csrf_token_too(agent, order_with_items, reason):
    session = APIClient(enforce_csrf_checks=True)
    session.force_login(agent)

    response = session.post(
        CANCELLATIONS_API, {"orderId": order_with_items.pk, "reasonId": reason.pk}, format="json"
    )

    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]
    assert not AuditEntry.objects.exists()


# --- security headers and Content-Security-Policy -----------------------------------------------


def csp(response) -> dict:
    policy = response["Content-Security-Policy"]
    return {
        name: values
        for name, *values in (part.split() for part in policy.split(";") if part.strip())
    }


def assert_security_headers(response):
    policy = csp(response)
    assert policy["default-src"] == ["'self'"]
    assert policy["script-src"] == ["'self'"]
    assert policy["style-src"] == ["'self'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["object-src"] == ["'none'"]
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Frame-Options"] == "DENY"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"


def test_a_staff_page_carries_the_security_headers(client, agent):
    client.force_login(agent)

    response = client.get(reverse("staff:dashboard"))

    assert response.status_code == 200
    assert_security_headers(response)


def test_the_login_page_carries_the_security_headers(client, db):
    assert_security_headers(client.get(LOGIN))


def test_an_api_response_carries_the_security_headers(agent):
    response = api_as(agent).get(ORDERS_API)

    assert response.status_code == 200
    assert_security_headers(response)


def test_the_api_docs_page_loads_swagger_ui_from_storno_itself(client, db):
    response = client.get("/api/docs/")

    policy = csp(response)
    assert response.status_code == 200
    assert policy["script-src"] == ["'self'"]
    assert "cdn.jsdelivr.net" not in response.content.decode()
    assert "'unsafe-inline'" not in policy["script-src"]
    assert policy["frame-ancestors"] == ["'none'"]
    # Swagger UI's start-up script comes from Storno itself, not inline.
    content = response.content.decode()
    assert re.search(r"<script>\s*\S", content) is None
    script = client.get("/api/docs/?script=")
    assert script.status_code == 200
    assert "SwaggerUIBundle" in script.content.decode()


def template_files():
    dirs = [ROOT / "templates", *ROOT.glob("*/templates")]
    return sorted(path for folder in dirs for path in folder.rglob("*.html"))


INLINE_CODE = [
    (re.compile(r"<script(?![^>]*\ssrc=)[^>]*>", re.I), "inline <script>"),
    (re.compile(r"<style[\s>]", re.I), "<style> element"),
    (re.compile(r"<[a-z][^>]*\sstyle=", re.I), "style attribute"),
    (re.compile(r"<[a-z][^>]*\son[a-z]+=", re.I), "event handler attribute"),
    (re.compile(r"javascript:", re.I), "javascript: URL"),
]


def test_no_template_has_inline_script_or_style_that_the_policy_would_block():
    found = [
        f"{path.relative_to(ROOT)}: {what}"
        for path in template_files()
        for pattern, what in INLINE_CODE
        if pattern.search(path.read_text())
    ]

    assert len(template_files()) > 10
    assert found == []


def test_no_html_built_in_python_has_a_style_attribute():
    sources = [
        path
        for app in ("backoffice", "cancellations", "reasons", "providers")
        for path in (ROOT / app).rglob("*.py")
        if "migrations" not in path.parts
    ]

    found = [
        str(path.relative_to(ROOT))
        for path in sources
        if re.search(r"<[a-z][^>'\"]*\s(style|on[a-z]+)=", path.read_text(), re.I)
    ]

    assert found == []


# --- no secret in stored delivery attempts ------------------------------------------------------


def secret(label: str) -> str:
    return f"{label}-{secrets.token_urlsafe(12)}"


def attempts_of(provider: str) -> list[DeliveryAttempt]:
    return list(DeliveryAttempt.objects.filter(delivery__provider=provider))


def stored_text(attempts) -> str:
    return "\n".join(
        a.request_excerpt + "\n" + a.response_excerpt + "\n" + a.error for a in attempts
    )


def deliver_everything(provider: str) -> None:
    for delivery in Delivery.objects.filter(provider=provider, status=DeliveryStatus.PENDING):
        dispatch.deliver(delivery.pk)


def cancel_order_for(external_ids: dict, django_capture_on_commit_callbacks):
    order = OrderFactory(external_ids=external_ids)
    OrderItemFactory(order=order)
    with django_capture_on_commit_callbacks(execute=True):
        writing.cancel_order(
            order,
            reason=CancellationReasonFactory(),
            actor=None,
            via=AuditEntry.Via.API,
            external_user_id="005000000000001AAA",
        )


@pytest.mark.parametrize("accepted", [True, False], ids=["accepted", "refused"])
def test_callisto_basic_credentials_never_reach_the_attempt_record(
    db, monkeypatch, django_capture_on_commit_callbacks, accepted
):
    password = secret("callisto-password")
    with CallistoFake(password=password if accepted else secret("other"), known_ids={4711}) as fake:
        monkeypatch.setenv("CALLISTO_USERNAME", fake.username)
        monkeypatch.setenv("CALLISTO_PASSWORD", password)
        ProviderSetting.objects.create(kind="callisto", base_url=fake.url, timeout_seconds=2)
        cancel_order_for({"callisto": "4711"}, django_capture_on_commit_callbacks)
        deliver_everything("callisto")

    attempts = attempts_of("callisto")
    assert attempts and all(a.status_code == (200 if accepted else 401) for a in attempts)
    assert password not in stored_text(attempts)
    assert base64.b64encode(f"{fake.username}:{password}".encode()).decode() not in stored_text(
        attempts
    )


@pytest.mark.parametrize("accepted", [True, False], ids=["accepted", "refused"])
def test_the_callisto_token_never_reaches_the_attempt_record(
    db, monkeypatch, django_capture_on_commit_callbacks, accepted
):
    token = secret("callisto-token")
    with CallistoFake(token=token if accepted else secret("other"), known_ids={4711}) as fake:
        monkeypatch.setenv("CALLISTO_TOKEN", token)
        ProviderSetting.objects.create(kind="callisto", base_url=fake.url, timeout_seconds=2)
        cancel_order_for({"callisto": "4711"}, django_capture_on_commit_callbacks)
        deliver_everything("callisto")

    attempts = attempts_of("callisto")
    assert attempts and all(a.status_code == (200 if accepted else 401) for a in attempts)
    assert token not in stored_text(attempts)


@pytest.mark.parametrize("accepted", [True, False], ids=["accepted", "refused"])
def test_the_rebilly_api_key_never_reaches_the_attempt_record(
    db, monkeypatch, django_capture_on_commit_callbacks, accepted
):
    api_key = secret("rebilly-key")
    with RebillyFake(api_key=api_key if accepted else secret("other"), orders=["ord_1"]) as fake:
        monkeypatch.setenv("REBILLY_API_KEY", api_key)
        ProviderSetting.objects.create(kind="rebilly", base_url=fake.base_url, timeout_seconds=2)
        cancel_order_for({"rebilly": "ord_1"}, django_capture_on_commit_callbacks)
        deliver_everything("rebilly")

    attempts = attempts_of("rebilly")
    assert attempts and all((a.status_code < 300) == accepted for a in attempts)
    assert api_key not in stored_text(attempts)


@pytest.mark.parametrize("accepted", [True, False], ids=["accepted", "refused"])
def test_the_billing_password_never_reaches_the_attempt_record(
    db, monkeypatch, django_capture_on_commit_callbacks, agent, accepted
):
    password = secret("billing-password")
    with BillingFake(password=password if accepted else secret("other")) as fake:
        monkeypatch.setenv("BILLING_BASE_URL", fake.base_url)
        monkeypatch.setenv("BILLING_USERNAME", fake.username)
        monkeypatch.setenv("BILLING_PASSWORD", password)
        monkeypatch.setenv("BILLING_CLIENT_SYSTEM_ID", "STORNO-TEST")
        monkeypatch.setenv("BILLING_CLIENT_IDENT_CODE", fake.client_ident_code)
        monkeypatch.setenv("BILLING_USER_NAME", DEFAULT_USER_NAME)
        ProviderSetting.objects.create(kind="billing", enabled=True, timeout_seconds=2)
        CancellationReasonFactory()
        item = OrderItemFactory(billed=True)
        SettlementItemFactory(order_item=item)
        fake.add_service_item(item.billing_item_id)
        with django_capture_on_commit_callbacks(execute=True):
            service_items.cancel_service_items(
                item_ids=[item.billing_item_id], actor=agent, via=AuditEntry.Via.API
            )
        deliver_everything("billing")

    attempts = attempts_of("billing")
    assert attempts and all((a.status_code == 200) == accepted for a in attempts)
    assert password not in stored_text(attempts)


@pytest.mark.parametrize("accepted", [True, False], ids=["accepted", "refused"])
def test_the_js7_password_and_access_token_never_reach_the_attempt_record(
    db, monkeypatch, django_capture_on_commit_callbacks, accepted
):
    password = secret("js7-password")
    js7.forget_tokens()
    with Js7Fake(accounts={"storno": password if accepted else secret("other")}) as fake:
        fake.seed_orders(DEFAULT_CONTROLLER, ["#2026-01-05#T1-shop"])
        monkeypatch.setenv("JS7_USERNAME", "storno")
        monkeypatch.setenv("JS7_PASSWORD", password)
        ProviderSetting.objects.create(kind="js7", base_url=fake.url, timeout_seconds=2)
        cancel_order_for(
            {"js7ControllerId": DEFAULT_CONTROLLER, "js7OrderIds": ["#2026-01-05#T1-shop"]},
            django_capture_on_commit_callbacks,
        )
        deliver_everything("js7")
        tokens = list(fake.sessions)
    js7.forget_tokens()

    attempts = attempts_of("js7")
    assert attempts and all((a.status_code == 200) == accepted for a in attempts)
    assert bool(tokens) == accepted
    assert password not in stored_text(attempts)
    for token in tokens:
        assert token not in stored_text(attempts)


def test_audit_data_masks_anything_named_like_a_secret(db):
    order = OrderFactory()

    row = audit.record(
        "test.secrets",
        order=order,
        actor=None,
        via=AuditEntry.Via.SYSTEM,
        data={
            "password": "hunter2",
            "provider": {"apiKey": "k-4711", "accessToken": "t-4711", "url": "https://x"},
            "headers": [{"Authorization": "Basic abc"}],
            "clientSecret": "s-4711",
        },
    )

    row.refresh_from_db()
    assert row.data == {
        "password": "***",
        "provider": {"apiKey": "***", "accessToken": "***", "url": "https://x"},
        "headers": [{"Authorization": "***"}],
        "clientSecret": "***",
    }


# --- no secret in the repository ----------------------------------------------------------------

# Real credentials have a recognisable shape…
SECRET_SHAPES = {
    "private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    "AWS access key": re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"),
    "GitHub token": re.compile(r"\b(gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{40,})"),
    "Slack token": re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}"),
    "Stripe live key": re.compile(r"\b[rs]k_live_[A-Za-z0-9]{16,}"),
    "Google API key": re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b"),
    "JSON web token": re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[\w-]+"),
}
# A URL's user:password@, whose password is judged like an assigned one.
URL_PASSWORD = re.compile(r"\b[a-z][a-z0-9+.-]*://[^/\s:@'\"]+:([^/\s:@'\"]+)@")
# …or are assigned to something named like one.
SECRET_ASSIGNMENT = re.compile(
    r"""(?ix) \b[a-z0-9_]*(password|passwd|secret|token|api_?key)[a-z0-9_]*
    ["']?\s*[:=]\s*(?:"([^"\n]*)"|'([^'\n]*)'|([^\s"'`,;()\[\]{}]+))"""
)
# Test credentials say so, and so do the fakes' documented demo credentials
# (providers/fakes/*: "a fake's well-known test credential") and the DEBUG-only key.
DEMO_MARKERS = ("fake", "test", "demo", "example", "insecure", "dummy", "placeholder")


def looks_like_a_real_secret(value: str) -> bool:
    if len(value) < 8 or value.startswith(("$", "<", "{", "%", "os.", "env", "settings.", "self.")):
        return False
    if any(marker in value.lower() for marker in DEMO_MARKERS):
        return False
    # Words joined by spaces, dashes or underscores are phrases of a test, a header name …
    if re.fullmatch(r"[A-Za-z]+([ _-][A-Za-z]+)*", value):
        return False
    # … and real secrets mix letters with digits or symbols at high entropy.
    counts = {c: value.count(c) for c in set(value)}
    entropy = -sum(n / len(value) * math.log2(n / len(value)) for n in counts.values())
    return entropy >= 3.0


def tracked_text_files() -> list[Path]:
    git = shutil.which("git")
    if git is None:
        pytest.skip("git is not installed")
    try:
        listed = subprocess.run(
            [git, "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True, timeout=60
        ).stdout
    except subprocess.CalledProcessError:
        pytest.skip("not a git checkout")
    files = []
    for name in listed.decode().split("\0"):
        path = ROOT / name
        # docs/contracts/ holds public specs verbatim: their example tokens are documentation.
        if not name or not path.is_file() or name.startswith(("locale/", "docs/contracts/")):
            continue
        data = path.read_bytes()
        if b"\0" not in data[:8192]:
            files.append(path)
    return files


def test_no_tracked_file_holds_something_that_looks_like_a_secret():
    findings = []
    files = tracked_text_files()
    for path in files:
        code = path.suffix in {".py", ".js"}
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            where = f"{path.relative_to(ROOT)}:{number}"
            findings += [
                f"{where}: {kind}" for kind, shape in SECRET_SHAPES.items() if shape.search(line)
            ]
            for match in SECRET_ASSIGNMENT.finditer(line):
                quoted = match.group(2) if match.group(2) is not None else match.group(3)
                value = quoted if quoted is not None else (None if code else match.group(4))
                if value is not None and looks_like_a_real_secret(value):
                    findings.append(f"{where}: {match.group(0)[:60]}")
            findings += [
                f"{where}: password in a URL"
                for match in URL_PASSWORD.finditer(line)
                if looks_like_a_real_secret(match.group(1))
            ]

    assert len(files) > 100
    assert findings == []


# Built here, so that this file passes its own scan.
RANDOM_LOOKING = "".join(["Xk29vLq0", "pWz7Rt4b"])


@pytest.mark.parametrize(
    "line",
    [
        f'CALLISTO_PASSWORD = "{RANDOM_LOOKING}"',
        f"export REBILLY_API_KEY=sk_{RANDOM_LOOKING}",
        f'"token": "{RANDOM_LOOKING}"',
        f"DATABASE_URL=postgres://storno:{RANDOM_LOOKING}@db.internal:5432/storno",
        "-----BEGIN RSA " + "PRIVATE KEY-----",
    ],
)
def test_the_secret_scan_recognises_a_real_looking_secret(line):
    shapes = [kind for kind, shape in SECRET_SHAPES.items() if shape.search(line)]
    in_url = [m for m in URL_PASSWORD.finditer(line) if looks_like_a_real_secret(m.group(1))]
    assigned = [
        m
        for m in SECRET_ASSIGNMENT.finditer(line)
        if looks_like_a_real_secret(next(g for g in m.groups()[1:] if g is not None))
    ]

    assert shapes or in_url or assigned


# --- API clients in the audit trail ------------------------------------------------------------


def test_an_api_post_with_a_token_is_audited_as_that_user_via_the_api(agent, order_with_items):
    reason = CancellationReasonFactory()
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=agent).key}")

    response = api.post(
        CANCELLATIONS_API, {"orderId": order_with_items.pk, "reasonId": reason.pk}, format="json"
    )

    assert response.status_code == 201, response.json()
    entry = AuditEntry.objects.get(action="cancellation.created")
    assert (entry.actor, entry.actor_label, entry.via) == (agent, agent.username, "api")
