"""providers.http: the pooled per-process session of a provider keeps connections, never one
delivery's auth, headers or cookies for the next."""

import pytest
from requests.auth import HTTPBasicAuth

from providers.fakes.server import FakeResponse, FakeServer
from providers.http import USER_AGENT, close_pools, provider_session


class EchoFake(FakeServer):
    """Answers every request with a cookie, and records it (FakeServer.requests)."""

    def handle(self, request):
        return FakeResponse.json({"ok": True}, headers={"Set-Cookie": "session=abc; Path=/"})


@pytest.fixture
def echo():
    close_pools()
    with EchoFake() as fake:
        yield fake
    close_pools()


def test_the_calls_of_many_deliveries_share_one_connection(echo):
    for _ in range(5):
        with provider_session("alpha", timeout=2) as session:
            assert session.request("GET", echo.url + "/ping").status_code == 200

    assert (len(echo.requests), echo.connections) == (5, 1)


def test_each_provider_kind_has_its_own_pool(echo):
    for kind in ("alpha", "beta"):
        with provider_session(kind, timeout=2) as session:
            session.request("GET", echo.url + "/ping")

    assert echo.connections == 2


def test_one_deliverys_auth_and_headers_do_not_reach_the_next(echo):
    with provider_session(
        "alpha", timeout=2, auth=HTTPBasicAuth("user", "secret"), headers={"X-Token": "one"}
    ) as first:
        first.request("GET", echo.url + "/first")
    with provider_session("alpha", timeout=2, headers={"Accept": "application/json"}) as second:
        second.request("GET", echo.url + "/second")

    first_headers, second_headers = (request.headers for request in echo.requests)
    assert first_headers["x-token"] == "one"
    assert first_headers["authorization"].startswith("Basic ")
    assert "x-token" not in second_headers
    assert "authorization" not in second_headers
    assert second_headers["accept"] == "application/json"
    assert second_headers["user-agent"] == USER_AGENT


def test_cookies_are_kept_within_one_delivery_only(echo):
    with provider_session("alpha", timeout=2) as first:
        first.request("GET", echo.url + "/login")
        first.request("GET", echo.url + "/cancel")
    with provider_session("alpha", timeout=2) as second:
        second.request("GET", echo.url + "/cancel")

    cookies = [request.headers.get("cookie") for request in echo.requests]
    assert cookies == [None, "session=abc", None]


def test_a_change_made_during_one_call_stays_in_that_call(echo):
    seen = []
    with provider_session("alpha", timeout=2) as session:
        session.auth = HTTPBasicAuth("user", "secret")
        session.hooks["response"].append(lambda response, *args, **kwargs: seen.append(1))
        session.request("GET", echo.url + "/login")
        session.auth = None
        session.hooks["response"].clear()
        session.headers["X-Access-Token"] = "token"
        session.request("GET", echo.url + "/cancel")

    login, cancel = (request.headers for request in echo.requests)
    assert "authorization" in login
    assert "authorization" not in cancel
    assert cancel["x-access-token"] == "token"
    assert seen == [1]
