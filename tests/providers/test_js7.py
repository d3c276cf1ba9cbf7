"""The JS7 adapter over real HTTP against the strict fake, for every answer and fault."""

import pytest

from providers import js7
from providers.base import Action, Outcome, ProviderConfig
from providers.contracts import schema, schema_errors
from providers.fakes.js7 import (
    CANCEL_PATH,
    DEFAULT_CONTROLLER,
    LOGIN_PATH,
    Js7Fake,
    workflow_order,
)
from providers.js7 import Js7Adapter, api_root
from tests.factories import CancellationFactory, CancellationReasonFactory, OrderFactory

CANCEL_SCHEMA = schema("js7/cancelOrders.resolved.json")
JS7_IDS = {"js7ControllerId": DEFAULT_CONTROLLER, "js7OrderIds": ["#2026-01-05#T1-shop", "#child"]}


@pytest.fixture(scope="module")
def server():
    with Js7Fake() as running:
        yield running


@pytest.fixture
def fake(server):
    server.reset()
    with server.lock:
        server.controllers.clear()
        server.session_timeout = 1800
        server.four_eyes = False
        server.forbidden_accounts = set()
    server.seed_orders(
        DEFAULT_CONTROLLER,
        [
            "#2026-01-05#T1-shop",
            "#2026-01-05#T1-shop|pay",
            workflow_order("#child", state="RUNNING"),
        ],
    )
    return server


@pytest.fixture(autouse=True)
def no_cached_tokens():
    js7.forget_tokens()
    yield
    js7.forget_tokens()


def adapter_for(fake, **config):
    values = {
        "kind": "js7",
        "base_url": fake.url,
        "username": fake.username,
        "password": fake.password,
        "timeout": 2.0,
    }
    values.update(config)
    return Js7Adapter(ProviderConfig(**values))


@pytest.fixture
def cancellation(db):
    return CancellationFactory(
        id="cnl_js7000000000000000000001",
        order=OrderFactory(external_ids=dict(JS7_IDS)),
        reason=CancellationReasonFactory(subject="Lieferung zu spät"),
        audit_time_spent=7,
    )


def logins(fake):
    return [r for r in fake.received if r.path == LOGIN_PATH]


def cancels(fake):
    return [r for r in fake.received if r.path == CANCEL_PATH]


def state_of(fake, order_id):
    return fake.order(DEFAULT_CONTROLLER, order_id)["state"]


# --- what applies and what is sent -------------------------------------------------------------


def test_it_applies_to_orders_with_js7_workflow_orders(cancellation, fake):
    assert adapter_for(fake).applies_to(cancellation)


@pytest.mark.parametrize(
    "external_ids",
    [
        {},
        {"callisto": "1"},
        {"js7ControllerId": "c"},
        {"js7OrderIds": ["#1"]},
        {"js7ControllerId": "c", "js7OrderIds": []},
        {"js7ControllerId": "c", "js7OrderIds": "#1"},
    ],
)
def test_it_does_not_apply_without_a_controller_and_order_ids(db, fake, external_ids):
    cancellation = CancellationFactory(order=OrderFactory(external_ids=external_ids))

    assert not adapter_for(fake).applies_to(cancellation)


def test_the_body_names_the_orders_goes_deep_and_writes_the_audit_log(cancellation, fake, settings):
    settings.STORNO_PUBLIC_URL = "https://storno.example.com"

    payload = adapter_for(fake).build_payload(cancellation)

    assert payload == {
        "controllerId": DEFAULT_CONTROLLER,
        "orderIds": ["#2026-01-05#T1-shop", "#child"],
        "deep": True,
        "auditLog": {
            "comment": "Lieferung zu spät (Storno cnl_js7000000000000000000001)",
            "timeSpent": 7,
            "ticketLink": "https://storno.example.com/staff/cancellations/"
            "cnl_js7000000000000000000001/",
        },
    }
    assert schema_errors(payload, CANCEL_SCHEMA) == []


def test_kill_is_sent_only_when_the_cancellation_asks_for_it(cancellation, fake):
    cancellation.kill_running = True

    payload = adapter_for(fake).build_payload(cancellation)

    assert payload["kill"] is True
    assert schema_errors(payload, CANCEL_SCHEMA) == []


def test_a_long_subject_with_angle_brackets_still_fits_the_schema(db, fake):
    cancellation = CancellationFactory(
        order=OrderFactory(external_ids=dict(JS7_IDS)),
        reason=CancellationReasonFactory(subject="<b>" + "x" * 97),
    )
    cancellation.reason.subject += "y" * 300  # longer than any stored subject, to be sure

    payload = adapter_for(fake).build_payload(cancellation)

    comment = payload["auditLog"]["comment"]
    assert len(comment) == 255
    assert comment.endswith(f"(Storno {cancellation.pk})")
    assert "timeSpent" not in payload["auditLog"]
    assert schema_errors(payload, CANCEL_SCHEMA) == []


@pytest.mark.parametrize(
    "base_url",
    [
        "http://host:4446",
        "http://host:4446/",
        "http://host:4446/joc/api",
        "http://host:4446/joc/api/",
    ],
)
def test_the_base_url_may_include_the_api_prefix(base_url):
    assert api_root(base_url) == "http://host:4446"


# --- outcomes ----------------------------------------------------------------------------------


def test_an_add_logs_in_and_cancels_the_workflow_orders(cancellation, fake):
    result = adapter_for(fake).deliver(cancellation, Action.ADD)

    assert result.outcome == Outcome.DELIVERED
    assert result.status_code == 200
    assert "#2026-01-05#T1-shop" in result.message
    assert state_of(fake, "#2026-01-05#T1-shop") == "CANCELLED"
    assert state_of(fake, "#2026-01-05#T1-shop|pay") == "CANCELLED"  # deep
    assert len(logins(fake)) == 1
    login_request = fake.received[0]
    assert login_request.headers["authorization"].startswith("Basic ")
    [sent] = cancels(fake)
    assert sent.headers["x-access-token"]
    assert sent.headers["content-type"] == "application/json"
    assert "kill" not in sent.json()
    assert result.duration_ms is not None


def test_without_kill_running_orders_are_cancelled_without_a_signal(cancellation, fake):
    adapter_for(fake).deliver(cancellation, Action.ADD)

    assert fake.order(DEFAULT_CONTROLLER, "#child")["killed"] is False


def test_kill_running_kills_running_workflow_orders(cancellation, fake):
    cancellation.kill_running = True

    adapter_for(fake).deliver(cancellation, Action.ADD)

    assert fake.order(DEFAULT_CONTROLLER, "#child")["killed"] is True


def test_the_token_is_reused_by_later_deliveries(cancellation, fake, db):
    other = CancellationFactory(order=OrderFactory(external_ids=dict(JS7_IDS)))
    adapter_for(fake).deliver(cancellation, Action.ADD)

    adapter_for(fake).deliver(other, Action.ADD)

    assert len(logins(fake)) == 1
    assert len(cancels(fake)) == 2


def test_a_timed_out_session_is_replaced_by_a_new_login_once(cancellation, fake):
    adapter_for(fake).deliver(cancellation, Action.ADD)
    fake.seed_orders(DEFAULT_CONTROLLER, ["#2026-01-05#T1-shop"])
    fake.expire_sessions()

    result = adapter_for(fake).deliver(cancellation, Action.ADD)

    assert result.outcome == Outcome.DELIVERED
    assert len(logins(fake)) == 2
    assert [r.path for r in fake.received][-3:] == [CANCEL_PATH, LOGIN_PATH, CANCEL_PATH]
    assert state_of(fake, "#2026-01-05#T1-shop") == "CANCELLED"


def test_a_session_the_server_forgot_is_replaced_by_a_new_login(cancellation, fake):
    adapter_for(fake).deliver(cancellation, Action.ADD)
    with fake.lock:
        fake.sessions.clear()  # JOC restarted: the token is unknown, 401

    result = adapter_for(fake).deliver(cancellation, Action.ADD)

    assert result.outcome == Outcome.DELIVERED  # JOC-161: cancelled by the first delivery
    assert len(logins(fake)) == 2


def test_a_new_session_that_times_out_at_once_is_retried_later_not_looped(cancellation, fake):
    fake.session_timeout = 0

    result = adapter_for(fake).deliver(cancellation, Action.ADD)

    assert result.outcome == Outcome.RETRY
    assert result.status_code == 440
    assert len(logins(fake)) == 1
    assert len(cancels(fake)) == 1


def test_orders_js7_no_longer_has_are_delivered_marked_no_such_orders(cancellation, fake):
    first = adapter_for(fake).deliver(cancellation, Action.ADD)

    result = adapter_for(fake).deliver(cancellation, Action.ADD)

    assert first.references == {"js7NoSuchOrders": False}
    assert result.outcome == Outcome.DELIVERED
    assert result.status_code == 420
    assert result.message.startswith("JS7 had no such orders")
    assert "JOC-161" in result.message
    assert result.references == {"js7NoSuchOrders": True}


def test_ids_js7_never_had_are_marked_no_such_orders_not_plain_success(db, fake):
    cancellation = CancellationFactory(
        order=OrderFactory(
            external_ids={"js7ControllerId": DEFAULT_CONTROLLER, "js7OrderIds": ["#never"]}
        )
    )

    result = adapter_for(fake).deliver(cancellation, Action.ADD)

    assert (result.outcome, result.references) == (Outcome.DELIVERED, {"js7NoSuchOrders": True})
    assert "#never" in result.message
    assert "cancelled the workflow orders" not in result.message


def test_the_callers_audit_log_is_passed_on(db, fake, settings):
    settings.STORNO_PUBLIC_URL = "https://storno.example.com"
    cancellation = CancellationFactory(
        id="cnl_js7000000000000000000002",
        order=OrderFactory(external_ids=dict(JS7_IDS)),
        audit_comment="Kunde zieht nach Übersee",
        audit_time_spent=12,
        audit_ticket_link="https://tickets.example/OPS-17",
    )

    audit = adapter_for(fake).build_payload(cancellation)["auditLog"]

    assert audit == {
        "comment": "Kunde zieht nach Übersee (Storno cnl_js7000000000000000000002: "
        "https://storno.example.com/staff/cancellations/cnl_js7000000000000000000002/)",
        "timeSpent": 12,
        "ticketLink": "https://tickets.example/OPS-17",
    }


def test_a_full_length_callers_comment_is_never_cut_for_storno(db, fake):
    cancellation = CancellationFactory(
        order=OrderFactory(external_ids=dict(JS7_IDS)), audit_comment="c" * 250
    )

    payload = adapter_for(fake).build_payload(cancellation)

    assert payload["auditLog"]["comment"] == "c" * 250
    assert schema_errors(payload, CANCEL_SCHEMA) == []


def test_angle_brackets_in_the_callers_audit_become_look_alikes(db, fake):
    cancellation = CancellationFactory(
        order=OrderFactory(external_ids=dict(JS7_IDS)),
        audit_comment="<urgent> customer",
        audit_ticket_link="https://tickets.example/?q=<1>",
    )

    payload = adapter_for(fake).build_payload(cancellation)

    assert payload["auditLog"]["comment"].startswith("\u2039urgent\u203a customer (Storno ")
    assert payload["auditLog"]["ticketLink"] == "https://tickets.example/?q=\u20391\u203a"
    assert schema_errors(payload, CANCEL_SCHEMA) == []


def test_a_lost_answer_is_retried_and_the_repeat_finds_nothing_left(cancellation, fake):
    adapter = adapter_for(fake)
    adapter.deliver(cancellation, Action.ADD)  # logged in; token cached
    fake.seed_orders(DEFAULT_CONTROLLER, ["#2026-01-05#T1-shop"])
    fake.drop_next(1)  # JOC cancels, the answer is lost

    first = adapter.deliver(cancellation, Action.ADD)
    second = adapter.deliver(cancellation, Action.ADD)

    assert first.outcome == Outcome.RETRY
    assert second.outcome == Outcome.DELIVERED
    assert "JOC-161" in second.message
    assert second.references == {"js7NoSuchOrders": True}
    assert len(fake.state()["cancellations"]) == 2  # the first delivery's and the lost one


def test_another_joc_error_fails_with_its_code_and_message(db, fake):
    cancellation = CancellationFactory(
        order=OrderFactory(external_ids={"js7ControllerId": "elsewhere", "js7OrderIds": ["#1"]})
    )

    result = adapter_for(fake).deliver(cancellation, Action.ADD)

    assert result.outcome == Outcome.FAILED
    assert result.status_code == 420
    assert "JOC-420" in result.message
    assert "elsewhere" in result.message
    assert not result.credentials_problem


def test_a_wrong_password_fails_as_a_credentials_problem(cancellation, fake):
    result = adapter_for(fake, password="wrong-password").deliver(cancellation, Action.ADD)

    assert result.outcome == Outcome.FAILED
    assert result.status_code == 401
    assert result.credentials_problem
    assert fake.username in result.message
    assert cancels(fake) == []
    assert "wrong-password" not in result.request_excerpt + result.response_excerpt


def test_a_forbidden_account_fails_as_a_credentials_problem(cancellation, fake):
    fake.forbidden_accounts = {fake.username}

    result = adapter_for(fake).deliver(cancellation, Action.ADD)

    assert result.outcome == Outcome.FAILED
    assert result.status_code == 403
    assert result.credentials_problem
    assert len(logins(fake)) == 1  # a fresh session refused: no second login


def test_the_token_jocs_403_echoes_is_masked(cancellation, fake):
    fake.forbidden_accounts = {fake.username}

    result = adapter_for(fake).deliver(cancellation, Action.ADD)

    [token] = fake.sessions
    assert '"accessToken": "***"' in result.response_excerpt
    assert token not in result.response_excerpt


def test_four_eyes_approval_fails_with_a_clear_message(cancellation, fake):
    fake.four_eyes = True

    result = adapter_for(fake).deliver(cancellation, Action.ADD)

    assert result.outcome == Outcome.FAILED
    assert result.status_code == 433
    assert "four-eyes" in result.message
    assert state_of(fake, "#2026-01-05#T1-shop") == "PENDING"


def test_orders_js7_refuses_are_listed_in_the_failure(cancellation, fake):
    fake.seed_orders(DEFAULT_CONTROLLER, [workflow_order("#child", refuse="Order is locked.")])

    result = adapter_for(fake).deliver(cancellation, Action.ADD)

    assert result.outcome == Outcome.FAILED
    assert result.status_code == 419
    assert "#child: Order is locked." in result.message


@pytest.mark.parametrize("status", [500, 502, 503, 504, 429])
def test_server_errors_are_retried(cancellation, fake, status):
    adapter_for(fake).deliver(cancellation, Action.ADD)  # log in first
    fake.seed_orders(DEFAULT_CONTROLLER, ["#2026-01-05#T1-shop"])
    fake.fail_next(1, status=status)

    result = adapter_for(fake).deliver(cancellation, Action.ADD)

    assert result.outcome == Outcome.RETRY
    assert result.status_code == status
    assert state_of(fake, "#2026-01-05#T1-shop") == "PENDING"


def test_a_failing_login_is_retried(cancellation, fake):
    fake.fail_next(1, status=503)

    result = adapter_for(fake).deliver(cancellation, Action.ADD)

    assert result.outcome == Outcome.RETRY
    assert result.status_code == 503
    assert cancels(fake) == []


@pytest.mark.parametrize("status", [406, 415])
def test_a_refused_format_is_a_bug(cancellation, fake, status):
    adapter_for(fake).deliver(cancellation, Action.ADD)
    fake.fail_next(1, status=status)

    result = adapter_for(fake).deliver(cancellation, Action.ADD)

    assert result.outcome == Outcome.FAILED
    assert result.bug


def test_a_timeout_is_retried(cancellation, fake):
    adapter_for(fake).deliver(cancellation, Action.ADD)
    fake.delay_next(1, seconds=2)

    result = adapter_for(fake, timeout=0.3).deliver(cancellation, Action.ADD)

    assert result.outcome == Outcome.RETRY
    assert result.status_code is None


def test_a_dropped_connection_is_retried(cancellation, fake):
    adapter_for(fake).deliver(cancellation, Action.ADD)
    fake.drop_next(1, process=False)

    result = adapter_for(fake).deliver(cancellation, Action.ADD)

    assert result.outcome == Outcome.RETRY
    assert result.status_code is None


def test_an_unreachable_server_is_retried(cancellation, fake):
    adapter = adapter_for(fake, base_url="http://127.0.0.1:9")

    result = adapter.deliver(cancellation, Action.ADD)

    assert result.outcome == Outcome.RETRY


def test_secrets_are_masked_in_the_excerpts(cancellation, fake):
    adapter = adapter_for(fake)
    adapter.deliver(cancellation, Action.ADD)
    token = js7._cached_token(adapter._token_key)

    fake.fail_next(1, status=500)
    result = adapter.deliver(cancellation, Action.ADD)

    stored = result.request_excerpt + result.response_excerpt + result.message
    assert token not in stored
    assert fake.password not in stored


def test_a_fresh_token_is_masked_in_the_excerpts(cancellation, fake):
    fake.session_timeout = 0  # the login succeeds, then the cancel answers 440

    result = adapter_for(fake).deliver(cancellation, Action.ADD)

    [token] = fake.sessions
    stored = result.request_excerpt + result.response_excerpt + result.message
    assert result.status_code == 440
    assert token not in stored
    assert fake.password not in stored


def test_a_revoke_is_skipped_because_js7_cannot_undo_it(cancellation, fake):
    result = adapter_for(fake).deliver(cancellation, Action.REVOKE)

    assert result.outcome == Outcome.SKIPPED
    assert "JS7 can't undo" in result.message
    assert fake.received == []
    assert Js7Adapter.supports_revoke is False


def test_an_order_without_workflow_orders_is_skipped(db, fake):
    cancellation = CancellationFactory(order=OrderFactory(external_ids={}))

    result = adapter_for(fake).deliver(cancellation, Action.ADD)

    assert result.outcome == Outcome.SKIPPED
    assert fake.received == []


def test_missing_configuration_fails_as_a_credentials_problem(cancellation, fake):
    result = adapter_for(fake, base_url="", username="").deliver(cancellation, Action.ADD)

    assert result.outcome == Outcome.FAILED
    assert result.credentials_problem
    assert "JS7_BASE_URL" in result.message


def test_logout_ends_the_cached_session(cancellation, fake):
    adapter = adapter_for(fake)
    adapter.deliver(cancellation, Action.ADD)

    assert adapter.logout() is True
    assert fake.state()["sessions"] == 0
    assert js7._cached_token(adapter._token_key) is None


def test_the_registry_serves_js7_from_the_environment(monkeypatch):
    from providers.registry import ADAPTERS, get_adapter

    monkeypatch.setenv("JS7_BASE_URL", "http://js7.example:4446/joc/api")
    monkeypatch.setenv("JS7_USERNAME", "storno")
    monkeypatch.setenv("JS7_PASSWORD", "secret")

    adapter = get_adapter("js7")

    assert ADAPTERS["js7"] is Js7Adapter
    assert adapter.root == "http://js7.example:4446"
    assert adapter.config.username == "storno"
