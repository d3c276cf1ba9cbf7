"""One JSON request to a provider, timed and written down with its secrets left out.

Adapters build the request and read the answer; this module does the part they share: send
through a session from providers.http, measure, turn transport errors into a value instead of
an exception, and keep excerpts of both sides for the delivery attempt's record.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import requests
from django.utils.translation import gettext as _

from .base import Outcome, Result
from .http import excerpt

# Statuses that are worth the same request again later.
TRANSIENT_STATUSES = {408, 425, 429, 500, 502, 503, 504}


@dataclass
class Exchange:
    method: str
    url: str
    request_excerpt: str
    status_code: int | None = None
    body_text: str = ""
    data: object = None  # the parsed JSON answer, if it was JSON
    duration_ms: int = 0
    transport_error: str = ""  # set when no HTTP answer came back
    transient: bool = False  # a timeout or a connection problem: try again later
    response_headers: Mapping[str, str] = field(default_factory=dict)  # case-insensitive

    @property
    def response_excerpt(self) -> str:
        if self.status_code is None:
            return self.transport_error
        return excerpt(f"HTTP {self.status_code}\n{self.body_text}")

    def result(self, outcome: Outcome, message: str = "", **kwargs) -> Result:
        return Result(
            outcome=outcome,
            status_code=self.status_code,
            message=message,
            request_excerpt=self.request_excerpt,
            response_excerpt=self.response_excerpt,
            duration_ms=self.duration_ms,
            **kwargs,
        )

    def transport_result(self) -> Result:
        outcome = Outcome.RETRY if self.transient else Outcome.FAILED
        return self.result(outcome, self.transport_error)


def describe_request(method: str, url: str, payload) -> str:
    """Method, URL and body; headers are left out because they carry the credentials."""
    body = json.dumps(payload, ensure_ascii=False, indent=1) if payload is not None else ""
    return excerpt(f"{method} {url}\n\n{body}".rstrip())


def send_json(session: requests.Session, method: str, url: str, payload=None) -> Exchange:
    exchange = Exchange(method, url, describe_request(method, url, payload))
    started = time.monotonic()
    try:
        response = session.request(method, url, json=payload)
    except requests.Timeout as exc:
        exchange.transport_error = _("No answer within the timeout: %(error)s") % {"error": exc}
        exchange.transient = True
    except requests.ConnectionError as exc:
        exchange.transport_error = _("Could not connect: %(error)s") % {"error": exc}
        exchange.transient = True
    except requests.RequestException as exc:  # a bad URL and the like: configuration
        exchange.transport_error = _("The request could not be sent: %(error)s") % {"error": exc}
    else:
        exchange.status_code = response.status_code
        exchange.body_text = response.text
        exchange.response_headers = response.headers
        if response.content:
            try:
                exchange.data = response.json()
            except ValueError:
                exchange.data = None
    exchange.duration_ms = int((time.monotonic() - started) * 1000)
    return exchange


def flatten_messages(messages, prefix: str = "") -> list[str]:
    """Nested {field: {rule: message}} / [..] structures as ["field: message", …]."""
    found = []
    if isinstance(messages, dict):
        for key, value in messages.items():
            if isinstance(value, str):
                # Laminas puts the rule name as the innermost key: show the field, not the rule.
                found.append(f"{prefix.rstrip('.') or key}: {value}")
            else:
                found += flatten_messages(value, f"{prefix}{key}.")
    elif isinstance(messages, list):
        for item in messages:
            found += flatten_messages(item, prefix)
    elif messages not in (None, ""):
        found.append(f"{prefix.rstrip('.')}: {messages}" if prefix else str(messages))
    return found
