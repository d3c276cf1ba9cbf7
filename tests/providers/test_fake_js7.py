"""The strict JS7 fake over real HTTP: JOC's login, sessions, /orders/cancel and its errors."""

import json
import threading
from datetime import UTC, datetime

import pytest
import requests

from providers.contracts import schema, schema_errors
from providers.fakes.js7 import (
    CANCEL_PATH,
    DEFAULT_CONTROLLER,
    DEFAULT_PASSWORD,
    DEFAULT_USERNAME,
    LOGIN_PATH,
    LOGOUT_PATH,
    Js7Fake,
    workflow_order,
)

JSON = {"Accept": "application/json", "Content-Type": "application/json"}


def assert_shape(body, name):
    """The body validates against docs/contracts/js7/<name>.resolved.json."""
    assert schema_errors(body, schema(f"js7/{name}.resolved.json")) == []


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def fake(clock):
    orders = {
        DEFAULT_CONTROLLER: [
            "#1",
            "#2",
            workflow_order("#3", state="RUNNING", workflow_path="/shop/de/pay"),
            "#1|branch-a",
            workflow_order("#4", state="SUSPENDED", workflow_path="/shop/at/pay"),
        ]
    }
    with Js7Fake(orders=orders, session_timeout=60, clock=clock) as running:
        yield running


def login(fake, username=DEFAULT_USERNAME, password=DEFAULT_PASSWORD):
    return requests.post(
        fake.url + LOGIN_PATH,
        auth=(username, password),
        headers={"Accept": "application/json"},
        timeout=5,
    )


def token_for(fake):
    return login(fake).headers["X-Access-Token"]


def cancel(fake, body, token=None, headers=None, timeout=5):
    sent = {**JSON, **(headers or {})}
    if token is not None:
        sent["X-Access-Token"] = token
    data = body if isinstance(body, bytes | str) else json.dumps(body)
    return requests.post(fake.url + CANCEL_PATH, data=data, headers=sent, timeout=timeout)


def body(**extra):
    return {"controllerId": DEFAULT_CONTROLLER, "orderIds": ["#1"], **extra}


# --- login and sessions ------------------------------------------------------------------------


def test_login_with_basic_credentials_gives_the_token_in_header_and_body(fake):
    response = login(fake)

    assert response.status_code == 200
    assert response.headers["X-Access-Token"] == response.json()["accessToken"]
    assert response.json()["isAuthenticated"] is True
    assert_shape(response.json(), "security401_403")


def test_login_with_a_wrong_password_is_401_in_the_security_shape(fake):
    response = login(fake, password="wrong")

    assert response.status_code == 401
    assert response.json()["isAuthenticated"] is False
    assert "X-Access-Token" not in response.headers
    assert_shape(response.json(), "security401_403")


def test_login_without_credentials_is_401(fake):
    response = requests.post(fake.url + LOGIN_PATH, timeout=5)

    assert response.status_code == 401


def test_a_cancel_without_a_token_is_401(fake):
    response = cancel(fake, body())

    assert response.status_code == 401
    assert response.json()["isAuthenticated"] is False
    assert fake.order(DEFAULT_CONTROLLER, "#1")["state"] == "PENDING"


def test_a_cancel_with_an_unknown_token_is_401(fake):
    assert cancel(fake, body(), token="not-a-session").status_code == 401


def test_a_session_idle_for_longer_than_the_timeout_answers_440(fake, clock):
    token = token_for(fake)
    clock.now += 61

    response = cancel(fake, body(), token=token)

    assert response.status_code == 440
    assert response.json()["isAuthenticated"] is False
    assert fake.order(DEFAULT_CONTROLLER, "#1")["state"] == "PENDING"


def test_each_call_keeps_the_session_alive(fake, clock):
    token = token_for(fake)
    clock.now += 50
    cancel(fake, body(orderIds=["#2"]), token=token)
    clock.now += 50

    assert cancel(fake, body(), token=token).status_code == 200


def test_expired_sessions_answer_440(fake):
    token = token_for(fake)
    fake.expire_sessions()

    assert cancel(fake, body(), token=token).status_code == 440


def test_sessions_can_be_expired_over_http(fake):
    token = token_for(fake)

    requests.post(fake.url + "/_fake/sessions/expire", json={}, timeout=5).raise_for_status()

    assert cancel(fake, body(), token=token).status_code == 440


def test_logout_ends_the_session(fake):
    token = token_for(fake)

    response = requests.post(
        fake.url + LOGOUT_PATH,
        headers={"X-Access-Token": token, "Accept": "application/json"},
        timeout=5,
    )

    assert response.status_code == 200
    assert cancel(fake, body(), token=token).status_code == 401


# --- cancelling --------------------------------------------------------------------------------


def test_a_valid_cancel_answers_ok_and_cancels_the_order(fake):
    response = cancel(fake, body(), token=token_for(fake))

    assert response.status_code == 200
    assert response.json()["ok"] is True
    assert_shape(response.json(), "ok")
    assert fake.order(DEFAULT_CONTROLLER, "#1")["state"] == "CANCELLED"
    assert fake.order(DEFAULT_CONTROLLER, "#2")["state"] == "PENDING"


def test_cancelling_again_finds_no_orders(fake):
    token = token_for(fake)
    cancel(fake, body(), token=token)

    response = cancel(fake, body(), token=token)

    assert response.status_code == 420
    assert response.json()["error"] == {"code": "JOC-161", "message": "No orders found."}
    assert_shape(response.json(), "error420")
    assert len(fake.state()["cancellations"]) == 1


def test_unknown_order_ids_find_no_orders(fake):
    response = cancel(fake, body(orderIds=["#nope"]), token=token_for(fake))

    assert response.status_code == 420
    assert response.json()["error"]["code"] == "JOC-161"


def test_known_ids_are_cancelled_when_others_are_unknown(fake):
    response = cancel(fake, body(orderIds=["#nope", "#2"]), token=token_for(fake))

    assert response.status_code == 200
    assert fake.order(DEFAULT_CONTROLLER, "#2")["state"] == "CANCELLED"


def test_deep_cancels_the_child_orders_too(fake):
    cancel(fake, body(deep=True), token=token_for(fake))

    assert fake.order(DEFAULT_CONTROLLER, "#1|branch-a")["state"] == "CANCELLED"


def test_without_deep_child_orders_stay(fake):
    cancel(fake, body(), token=token_for(fake))

    assert fake.order(DEFAULT_CONTROLLER, "#1|branch-a")["state"] == "PENDING"


def test_kill_is_recorded_on_running_orders(fake):
    cancel(fake, body(orderIds=["#3"], kill=True), token=token_for(fake))

    order = fake.order(DEFAULT_CONTROLLER, "#3")
    assert order["state"] == "CANCELLED"
    assert order["killed"] is True


def test_without_kill_a_running_order_is_cancelled_without_a_signal(fake):
    cancel(fake, body(orderIds=["#3"]), token=token_for(fake))

    assert fake.order(DEFAULT_CONTROLLER, "#3")["killed"] is False


def test_without_order_ids_folders_and_states_select(fake):
    request = {
        "controllerId": DEFAULT_CONTROLLER,
        "folders": [{"folder": "/shop", "recursive": True}],
        "states": ["SUSPENDED"],
    }

    assert cancel(fake, request, token=token_for(fake)).status_code == 200

    assert fake.order(DEFAULT_CONTROLLER, "#4")["state"] == "CANCELLED"
    assert fake.order(DEFAULT_CONTROLLER, "#3")["state"] == "RUNNING"


def test_a_non_recursive_folder_matches_only_workflows_directly_in_it(fake):
    request = {
        "controllerId": DEFAULT_CONTROLLER,
        "folders": [{"folder": "/shop", "recursive": False}],
    }

    response = cancel(fake, request, token=token_for(fake))

    assert response.json()["error"]["code"] == "JOC-161"


def test_an_unknown_controller_is_a_420(fake):
    response = cancel(fake, body(controllerId="elsewhere"), token=token_for(fake))

    assert response.status_code == 420
    assert response.json()["error"]["code"] == "JOC-420"
    assert "elsewhere" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("request_body", "path"),
    [
        ({"orderIds": ["#1"]}, "(body)"),
        (body(force=True), "(body)"),
        (body(controllerId=""), "controllerId"),
        (body(controllerId="a/b"), "controllerId"),
        (body(orderIds=["#1", "#1"]), "orderIds"),
        (body(orderIds=["<script>"]), "orderIds.0"),
        (body(kill="yes"), "kill"),
        (body(deep=1), "deep"),
        (body(auditLog={"timeSpent": -1}), "auditLog.timeSpent"),
        (body(auditLog={"timeSpent": 1.5}), "auditLog.timeSpent"),
        (body(auditLog={"comment": "x" * 256}), "auditLog.comment"),
        (body(auditLog={"ticketLink": "x" * 256}), "auditLog.ticketLink"),
        (body(dateFrom="1D"), "dateFrom"),
        (body(dateTo="2024-01-01"), "dateTo"),
        (body(states=["DONE"]), "states.0"),
        (body(folders=[{"folder": "shop"}]), "folders.0.folder"),
        (body(folders=[{"folder": "/shop", "deep": True}]), "folders.0"),
        (body(orderType="Fresh"), "orderType"),
    ],
)
def test_bodies_that_break_the_schema_are_refused_with_joc_420(fake, request_body, path):
    response = cancel(fake, request_body, token=token_for(fake))

    assert response.status_code == 420
    assert response.json()["error"]["code"] == "JOC-420"
    assert f"{path}: " in response.json()["error"]["message"]
    assert_shape(response.json(), "error420")
    assert fake.order(DEFAULT_CONTROLLER, "#1")["state"] == "PENDING"


@pytest.mark.parametrize(
    "extra",
    [
        {"dateFrom": "1d", "dateTo": "0"},
        {"dateFrom": "2024-01-01 10:00:00,123+0100", "timeZone": "Europe/Berlin"},
        {"dateFrom": "-1d2h", "dateTo": "+2d+02:00"},
        {"workflowIds": [{"path": "/storno/orders", "versionId": "v1"}]},
        {"orderType": "FreshOnly", "kill": False, "deep": False},
        {"auditLog": {"comment": "Kunde zieht um", "timeSpent": 0, "ticketLink": "https://x"}},
    ],
)
def test_bodies_the_schema_allows_are_accepted(fake, extra):
    assert cancel(fake, body(**extra), token=token_for(fake)).status_code == 200


def test_a_body_that_is_not_json_is_a_420(fake):
    response = cancel(fake, b"{not json", token=token_for(fake))

    assert response.status_code == 420
    assert response.json()["error"]["code"] == "JOC-420"


def test_an_accept_without_json_is_406(fake):
    response = cancel(fake, body(), token=token_for(fake), headers={"Accept": "text/html"})

    assert response.status_code == 406


def test_a_body_that_is_not_declared_json_is_415(fake):
    response = cancel(fake, body(), token=token_for(fake), headers={"Content-Type": "text/plain"})

    assert response.status_code == 415
    assert fake.order(DEFAULT_CONTROLLER, "#1")["state"] == "PENDING"


def test_a_get_is_405(fake):
    assert requests.get(fake.url + CANCEL_PATH, timeout=5).status_code == 405


def test_a_forbidden_account_gets_403(fake):
    fake.forbidden_accounts = {DEFAULT_USERNAME}

    response = cancel(fake, body(), token=token_for(fake))

    assert response.status_code == 403
    assert response.json()["isPermitted"] is False
    assert fake.order(DEFAULT_CONTROLLER, "#1")["state"] == "PENDING"


def test_four_eyes_approval_answers_433(fake):
    fake.four_eyes = True

    response = cancel(fake, body(), token=token_for(fake))

    assert response.status_code == 433
    assert response.json()["request"] == "./orders/cancel"
    assert fake.order(DEFAULT_CONTROLLER, "#1")["state"] == "PENDING"


def test_a_refused_order_answers_419_and_the_others_are_cancelled(fake):
    fake.seed_orders(DEFAULT_CONTROLLER, [workflow_order("#9", refuse="Order is locked.")])

    response = cancel(fake, body(orderIds=["#9", "#2"]), token=token_for(fake))

    assert response.status_code == 419
    assert_shape(response.json(), "errors419")
    assert response.json()["errors"][0]["message"] == "#9: Order is locked."
    assert fake.order(DEFAULT_CONTROLLER, "#2")["state"] == "CANCELLED"
    assert fake.order(DEFAULT_CONTROLLER, "#9")["state"] == "PENDING"


def test_concurrent_cancels_of_one_order_cancel_it_exactly_once(fake):
    token = token_for(fake)
    statuses = []

    def send():
        statuses.append(cancel(fake, body(), token=token).status_code)

    threads = [threading.Thread(target=send) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(statuses) == [200] + [420] * 7
    assert len(fake.state()["cancellations"]) == 1


def test_it_remembers_the_cancel_bodies(fake):
    cancel(fake, body(deep=True), token=token_for(fake))

    assert fake.cancel_bodies() == [body(deep=True)]


# --- faults and control ------------------------------------------------------------------------


def test_an_injected_failure_answers_in_jocs_error_shape(fake):
    token = token_for(fake)
    fake.fail_next(1, status=503)

    response = cancel(fake, body(), token=token)

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "JOC-503"
    assert fake.order(DEFAULT_CONTROLLER, "#1")["state"] == "PENDING"
    assert cancel(fake, body(), token=token).status_code == 200


def test_a_dropped_connection_after_the_work_has_cancelled_the_order(fake):
    token = token_for(fake)
    fake.drop_next(1)

    with pytest.raises(requests.ConnectionError):
        cancel(fake, body(), token=token)

    assert fake.order(DEFAULT_CONTROLLER, "#1")["state"] == "CANCELLED"


def test_a_delayed_answer_runs_into_the_client_timeout(fake):
    token = token_for(fake)
    fake.delay_next(1, seconds=2)

    with pytest.raises(requests.Timeout):
        cancel(fake, body(), token=token, timeout=0.3)


def test_faults_can_be_injected_over_http(fake):
    token = token_for(fake)
    requests.post(
        fake.url + "/_fake/faults", json={"kind": "fail", "status": 502}, timeout=5
    ).raise_for_status()

    assert cancel(fake, body(), token=token).status_code == 502


def test_orders_can_be_seeded_and_listed_over_http(fake):
    seeded = {"controllerId": "other", "orders": ["#a", {"orderId": "#b", "state": "RUNNING"}]}
    requests.post(fake.url + "/_fake/orders", json=seeded, timeout=5).raise_for_status()

    listed = requests.get(fake.url + "/_fake/orders", timeout=5).json()

    assert listed["controllers"]["other"]["#b"]["state"] == "RUNNING"
    assert listed["controllers"]["other"]["#a"]["state"] == "PENDING"


def test_seeding_an_unknown_state_over_http_is_a_400(fake):
    seeded = {"controllerId": "other", "orders": [{"orderId": "#b", "state": "DONE"}]}

    response = requests.post(fake.url + "/_fake/orders", json=seeded, timeout=5)

    assert response.status_code == 400


def test_config_over_http_switches_on_four_eyes(fake):
    requests.post(fake.url + "/_fake/config", json={"fourEyes": True}, timeout=5)

    assert cancel(fake, body(), token=token_for(fake)).status_code == 433


def test_received_requests_are_listed_over_http(fake):
    cancel(fake, body(), token=token_for(fake))

    listed = requests.get(fake.url + "/_fake/requests", timeout=5).json()

    assert [r["path"] for r in listed] == [LOGIN_PATH, CANCEL_PATH]
    assert listed[1]["body"] == body()


def test_reset_forgets_sessions_and_restores_the_initial_orders(fake):
    token = token_for(fake)
    cancel(fake, body(), token=token)

    requests.post(fake.url + "/_fake/reset", json={}, timeout=5).raise_for_status()

    assert fake.order(DEFAULT_CONTROLLER, "#1")["state"] == "PENDING"
    assert cancel(fake, body(), token=token).status_code == 401
    assert [r.path for r in fake.received] == [CANCEL_PATH]


# --- dates, workflows and states (js7_orders.py) ---------------------------------------------

NOW = datetime(2027, 1, 15, 10, 30, tzinfo=UTC)  # 11:30 in Berlin


@pytest.fixture
def dated(clock):
    """Orders scheduled around NOW, the fake's wall clock."""
    orders = {
        DEFAULT_CONTROLLER: [
            {"orderId": "yesterday", "scheduledFor": "2027-01-14T09:00:00Z"},
            {"orderId": "early-today", "scheduledFor": "2027-01-15T00:30:00Z"},
            {"orderId": "berlin-midnight", "scheduledFor": "2027-01-14T23:30:00Z"},
            {"orderId": "in-an-hour", "scheduledFor": "2027-01-15T11:30:00Z"},
            {
                "orderId": "failed",
                "state": "FAILED",
                "workflowPath": "/shop/de/pay",
                "versionId": "v2",
                "scheduledFor": "2027-01-10T00:00:00Z",
            },
        ]
    }
    with Js7Fake(orders=orders, clock=clock, wall_clock=lambda: NOW) as running:
        yield running


def cancelled_by(fake, **filters):
    """The orders a filter body cancels, after asserting the answer is JOC's ok."""
    response = cancel(fake, {"controllerId": DEFAULT_CONTROLLER, **filters}, token=token_for(fake))
    assert response.status_code == 200, response.json()
    assert_shape(response.json(), "ok")
    return sorted(fake.state()["cancellations"][-1]["cancelled"])


def test_a_relative_date_from_counts_back_to_midnight(dated):
    assert cancelled_by(dated, dateFrom="0d", dateTo="0") == ["early-today"]


def test_relative_day_bounds_select_all_of_yesterday(dated):
    # 23:30 UTC on the 14th is still yesterday in UTC.
    assert cancelled_by(dated, dateFrom="1d", dateTo="1d") == ["berlin-midnight", "yesterday"]


def test_the_time_zone_moves_midnight(dated):
    chosen = cancelled_by(dated, dateFrom="0d", dateTo="0", timeZone="Europe/Berlin")

    assert chosen == ["berlin-midnight", "early-today"]


def test_the_time_zone_beats_the_offset_of_a_timestamp(dated):
    # 00:00 read in Berlin (23:00 UTC the day before), not at +05:00.
    chosen = cancelled_by(
        dated, dateFrom="2027-01-15T00:00:00+05:00", dateTo="0", timeZone="Europe/Berlin"
    )

    assert chosen == ["berlin-midnight", "early-today"]


def test_a_timestamp_with_an_offset_is_read_at_that_offset(dated):
    assert cancelled_by(dated, dateFrom="2027-01-15 01:00:00+01", dateTo="+2h") == [
        "early-today",
        "in-an-hour",
    ]


def test_date_from_not_older_than_date_to_is_joc_400(dated):
    response = cancel(
        dated,
        {"controllerId": DEFAULT_CONTROLLER, "dateFrom": "0", "dateTo": "1d"},
        token=token_for(dated),
    )

    assert response.status_code == 420
    assert response.json()["error"] == {
        "code": "JOC-400",
        "message": "'dateFrom' must be older than 'dateTo'",
    }
    assert_shape(response.json(), "error420")


def test_order_ids_beat_the_date_filter(dated):
    assert cancelled_by(dated, orderIds=["yesterday"], dateFrom="0d") == ["yesterday"]


def test_workflow_ids_select_by_path_and_version(dated):
    assert cancelled_by(dated, workflowIds=[{"path": "/shop/de/pay", "versionId": "v2"}]) == [
        "failed"
    ]


def test_workflow_ids_of_another_version_find_no_orders(dated):
    response = cancel(
        dated,
        {
            "controllerId": DEFAULT_CONTROLLER,
            "workflowIds": [{"path": "/shop/de/pay", "versionId": "v1"}],
        },
        token=token_for(dated),
    )

    assert response.json()["error"] == {"code": "JOC-161", "message": "No orders found."}


def test_workflow_ids_beat_folders(dated):
    chosen = cancelled_by(
        dated, workflowIds=[{"path": "/shop/de/pay"}], folders=[{"folder": "/elsewhere"}]
    )

    assert chosen == ["failed"]


def test_every_schema_state_can_select(dated):
    assert cancelled_by(dated, states=["FAILED", "BROKEN", "UNKNOWN"]) == ["failed"]


def test_unknown_order_ids_answer_joc_161_in_the_error420_shape(fake):
    response = cancel(fake, body(orderIds=["#never"]), token=token_for(fake))

    assert response.status_code == 420
    assert response.json()["error"] == {"code": "JOC-161", "message": "No orders found."}
    assert_shape(response.json(), "error420")


@pytest.mark.parametrize("status", [401, 440])
def test_refused_sessions_answer_in_the_security_shape(fake, clock, status):
    token = token_for(fake) if status == 440 else "not-a-session"
    clock.now += 61

    response = cancel(fake, body(), token=token)

    assert response.status_code == status
    assert response.json()["isAuthenticated"] is False
    assert_shape(response.json(), "security401_403")


def test_a_forbidden_account_answers_in_the_security_shape(fake):
    fake.forbidden_accounts.add(DEFAULT_USERNAME)

    response = cancel(fake, body(), token=token_for(fake))

    assert (response.status_code, response.json()["isPermitted"]) == (403, False)
    assert_shape(response.json(), "security401_403")
