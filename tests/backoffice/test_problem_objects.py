"""Problem objects everywhere under /api/: bodies over DATA_UPLOAD_MAX_MEMORY_SIZE (413), too
many parameters (400), what Django refuses outside a view, and what gunicorn refuses itself
(414 and 431, through gunicorn.conf.py)."""

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.core.exceptions import DisallowedHost, RequestDataTooBig, TooManyFieldsSent
from django.test import RequestFactory
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from backoffice.views import bad_request

ROOT = Path(__file__).resolve().parents[2]
CANCELLATIONS_API = "/api/v1/order-cancellations/"
ORDERS_API = "/api/v1/orders/"
SERVICE_ITEMS_API = "/api/v1/service-items/cancel/"
PROBLEM = "application/problem+json"


def oversize_json(megabytes: int = 10) -> bytes:
    return b'{"orderId": 1, "note": "' + b"a" * (megabytes * 1_000_000) + b'"}'


@pytest.fixture
def token_client(agent):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=agent).key}")
    return client


# --- Django: oversize bodies and too many fields --------------------------------------------------


@pytest.mark.parametrize("path", [CANCELLATIONS_API, SERVICE_ITEMS_API])
def test_a_ten_megabyte_body_without_a_key_is_a_413_problem(token_client, path):
    response = token_client.post(path, oversize_json(), content_type="application/json")

    assert response.status_code == 413
    assert response["Content-Type"] == PROBLEM
    body = response.json()
    assert (body["type"], body["title"], body["status"]) == (
        "urn:storno:problem:http-413",
        "Request too large",
        413,
    )


def test_an_oversize_body_from_a_session_is_a_413_problem_too(agent):
    session = APIClient()
    session.force_login(agent)

    response = session.post(CANCELLATIONS_API, oversize_json(), content_type="application/json")

    assert response.status_code == 413
    assert response["Content-Type"] == PROBLEM


def test_too_many_query_parameters_are_a_400_problem(token_client):
    query = "&".join(f"p{number}=1" for number in range(1500))

    response = token_client.get(f"{ORDERS_API}?{query}")

    assert response.status_code == 400
    assert response["Content-Type"] == PROBLEM
    assert response.json()["detail"] == "The request has too many parameters or fields."


@pytest.mark.parametrize(
    ("exception", "status"),
    [(RequestDataTooBig(), 413), (TooManyFieldsSent(), 400), (DisallowedHost(), 400)],
)
def test_what_django_refuses_outside_a_view_is_a_problem_under_api(exception, status):
    response = bad_request(RequestFactory().post(CANCELLATIONS_API), exception)

    assert response.status_code == status
    assert response["Content-Type"] == PROBLEM
    assert json.loads(response.content)["status"] == status


def test_under_callisto_it_is_a_problem_in_callistos_dialect():
    response = bad_request(RequestFactory().put("/callisto/cancel"), RequestDataTooBig())

    body = json.loads(response.content)
    assert response.status_code == 413
    assert body["type"].startswith("http://www.w3.org/Protocols/rfc2616")
    assert body["status"] == 413


def test_a_staff_page_keeps_djangos_bad_request_page():
    response = bad_request(RequestFactory().post("/staff/bulk/new/"), RequestDataTooBig())

    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/html")


# --- gunicorn ------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def gunicorn(tmp_path_factory):
    """Storno under gunicorn with the repository's gunicorn.conf.py, on a free loopback port."""
    port = free_port()
    inherited = {"DJANGO_SETTINGS_MODULE", "SECRET_KEY", "ALLOWED_HOSTS"}
    env = {k: v for k, v in os.environ.items() if k not in inherited and "SECURE_" not in k}
    env.update(DEBUG="1", STORNO_VAR_DIR=str(tmp_path_factory.mktemp("var")), DATABASE_URL="")
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "backoffice.wsgi", f"--bind=127.0.0.1:{port}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: stopping it touches nothing else
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                pytest.fail("gunicorn did not start")
            time.sleep(0.1)
    yield port
    os.killpg(server.pid, signal.SIGTERM)
    server.wait(timeout=30)


def get(port: int, path: str, headers=None) -> tuple[int, str, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.getheader("Content-Type"), response.read()
    finally:
        connection.close()


def test_a_url_longer_than_gunicorn_takes_is_a_414_problem(gunicorn):
    status, content_type, body = get(gunicorn, f"{ORDERS_API}?q={'x' * 9000}")

    assert status == 414
    assert content_type == PROBLEM
    problem = json.loads(body)
    assert (problem["type"], problem["status"]) == ("urn:storno:problem:http-414", 414)


def test_urls_up_to_eight_kilobytes_reach_storno(gunicorn):
    # gunicorn's default limit is 4094 bytes; Storno's answer is its own 401 problem.
    status, content_type, _body = get(gunicorn, f"{ORDERS_API}?q={'x' * 7000}")

    assert (status, content_type) == (401, PROBLEM)


def test_an_oversize_header_is_a_431_problem(gunicorn):
    status, content_type, body = get(gunicorn, ORDERS_API, {"X-Padding": "x" * 9000})

    assert (status, content_type) == (431, PROBLEM)
    assert json.loads(body)["status"] == 431
