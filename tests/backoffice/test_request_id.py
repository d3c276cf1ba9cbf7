"""The request id: taken from X-Request-ID when sane, else made; returned; carried into the
log lines, the Celery messages and the tasks that request caused (#17)."""

import io
import json
import logging
import logging.config
import re
from types import SimpleNamespace

import pytest
from django.http import HttpResponse
from django.test import RequestFactory

from backoffice import request_id
from backoffice.log_format import logging_config
from backoffice.request_id import RequestIdMiddleware

GENERATED = re.compile(r"[0-9a-f]{32}")


@pytest.fixture
def json_log():
    """The console handler of settings.LOGGING with LOG_FORMAT=json, writing into a buffer;
    returns a function giving the lines written so far, parsed."""
    config = logging_config(log_format="json", level="INFO")
    config["handlers"]["console"]["stream"] = io.StringIO()
    config["loggers"] = {"storno.test": {"handlers": ["console"], "propagate": False}}
    config["root"] = {"handlers": [], "level": "INFO"}
    logging.config.dictConfig(config)
    stream = logging.getLogger("storno.test").handlers[0].stream
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)


def logging_view(request):
    logging.getLogger("storno.test").info("handled %s", request.path)
    return HttpResponse("ok")


def test_a_request_without_an_id_gets_one_in_its_response(client):
    response = client.get("/healthz")

    assert GENERATED.fullmatch(response["X-Request-ID"])


def test_a_sane_client_id_is_kept_and_returned(client):
    response = client.get("/healthz", HTTP_X_REQUEST_ID="lb-7f3a.2026:req_42")

    assert response["X-Request-ID"] == "lb-7f3a.2026:req_42"


@pytest.mark.parametrize(
    "sent",
    ["x" * 129, "two words", "line\nbreak", "<script>", "ümlaut", ""],
    ids=["too-long", "space", "newline", "markup", "non-ascii", "empty"],
)
def test_an_unsafe_client_id_is_replaced(client, sent):
    response = client.get("/healthz", HTTP_X_REQUEST_ID=sent)

    assert GENERATED.fullmatch(response["X-Request-ID"])


def test_each_json_log_line_is_one_object_with_level_logger_event_and_request_id(json_log):
    middleware = RequestIdMiddleware(logging_view)

    middleware(RequestFactory().get("/somewhere", HTTP_X_REQUEST_ID="abc-123"))
    logging.getLogger("storno.test").warning("after the request")

    first, second = json_log()
    assert first["level"] == "INFO"
    assert first["logger"] == "storno.test"
    assert first["event"] == "handled /somewhere"
    assert first["request_id"] == "abc-123"
    assert "timestamp" in first
    assert second["request_id"] == "-"  # the request is over


def test_a_task_published_during_a_request_carries_its_id():
    headers = {}
    token = request_id._current.set("req-99")
    try:
        request_id.carry_request_id(headers=headers)
    finally:
        request_id._current.reset(token)

    assert headers == {request_id.TASK_HEADER: "req-99"}


def test_the_worker_runs_the_task_under_the_id_it_carries():
    task = SimpleNamespace(request=SimpleNamespace(is_eager=False, storno_request_id="req-99"))

    request_id.restore_request_id(task=task)
    during = request_id.current()
    request_id.forget_request_id(task=task)

    assert during == "req-99"
    assert request_id.current() == ""


def test_an_eager_task_keeps_the_callers_id():
    task = SimpleNamespace(request=SimpleNamespace(is_eager=True))
    token = request_id._current.set("req-1")
    try:
        request_id.restore_request_id(task=task)
        request_id.forget_request_id(task=task)
        assert request_id.current() == "req-1"
    finally:
        request_id._current.reset(token)


def test_credentials_never_reach_the_log(json_log):
    log = logging.getLogger("storno.test")

    log.info("sent headers %s", {"Authorization": "Bearer fake0eyJhbGciOi.part"})
    log.info("calling https://api.example/x?token=fake123def&page=2")
    log.info("broker at redis://:fake-hunter2@redis.internal:6379/0")
    log.info("Rebilly said: key Basic dXNlcjpwYXNzd29yZA== refused")
    log.info("provider answered", extra={"api_key": "fake_live_123", "password": "fake-pw1"})
    try:
        raise ValueError('{"password": "fake-p@ss-traceback"}')
    except ValueError:
        log.exception("adapter raised")

    written = json.dumps(json_log())
    for secret in (
        "fake0eyJhbGciOi",
        "fake123def",
        "fake-hunter2",
        "dXNlcjpwYXNzd29yZA",
        "fake_live_123",
        "fake-pw1",
        "fake-p@ss-traceback",
    ):
        assert secret not in written
    assert "page=2" in written  # what isn't a credential stays
    assert "redis.internal" in written
