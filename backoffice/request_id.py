"""One id per request, in every log line it causes, in the Celery tasks it publishes and on the
delivery attempts those tasks make (#17).

The id comes from the client's (or the proxy's) X-Request-ID when that is a sane token (at most
MAX_LENGTH characters of letters, digits and `-_.:`), else a new UUID; it is returned in the
response's X-Request-ID. It lives in a context variable: the logging filter
(backoffice.log_format) reads it, `before_task_publish` puts it in the headers of each message
published meanwhile, and `task_prerun` restores it in the worker for the task's duration.
"""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar

from celery.signals import before_task_publish, task_postrun, task_prerun

HEADER = "X-Request-ID"
# The Celery message header that carries it.
TASK_HEADER = "storno_request_id"
MAX_LENGTH = 128
VALID = re.compile(rf"[A-Za-z0-9._:-]{{1,{MAX_LENGTH}}}")

_current: ContextVar[str] = ContextVar("storno_request_id", default="")


def current() -> str:
    """The id of the request (or task) this code runs for; "" outside of any."""
    return _current.get()


def accepted(value: str | None) -> str:
    """The client's id if it is a sane token, else a new one: a log line must not carry
    whatever a client sent (newlines, megabytes, markup)."""
    if value and VALID.fullmatch(value):
        return value
    return uuid.uuid4().hex


class RequestIdMiddleware:
    """First in MIDDLEWARE, so every other middleware's log lines carry the id too."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request_id = accepted(request.headers.get(HEADER))
        request.request_id = request_id
        token = _current.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            _current.reset(token)
        response[HEADER] = request_id
        return response


@before_task_publish.connect(dispatch_uid="storno-request-id-publish")
def carry_request_id(headers=None, **_kwargs) -> None:
    request_id = current()
    if request_id and headers is not None:
        headers[TASK_HEADER] = request_id


@task_prerun.connect(dispatch_uid="storno-request-id-prerun")
def restore_request_id(task=None, **_kwargs) -> None:
    request = getattr(task, "request", None)
    if getattr(request, "is_eager", False):
        return  # runs in the caller's context, which has the caller's id already
    _current.set(getattr(request, TASK_HEADER, None) or "")


@task_postrun.connect(dispatch_uid="storno-request-id-postrun")
def forget_request_id(task=None, **_kwargs) -> None:
    if not getattr(getattr(task, "request", None), "is_eager", False):
        _current.set("")
