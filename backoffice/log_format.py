"""What every log line carries and what none may carry (#17).

- RequestIdFilter adds `request_id` (backoffice.request_id; "-" outside any request or task).
- RedactSecrets blanks credentials before a line is written: the values of Authorization
  headers (Bearer, Basic, Token …), of `token=`, `password: `, `api_key` and the like in the
  message and the exception text, and extra fields with such names.
- LOG_FORMAT=json (settings.LOGGING) writes one JSON object per line through python-json-logger:
  timestamp, level, logger, event, request_id and any `extra` fields.

Both filters sit on the handler, so they see every record that reaches it, whichever logger
(Django's, Celery's, requests') wrote it.
"""

from __future__ import annotations

import logging
import re

from . import request_id

REDACTED = "[redacted]"
# Names whose values are credentials: Authorization, X-Api-Key, token, access_token, password,
# client_secret, api_key, apikey, secret_key, cookie…
SECRET_NAME = re.compile(
    r"authorization|token|passw(or)?d|secret|api[-_]?key|apikey|cookie|credential|signature",
    re.IGNORECASE,
)
# `Authorization: Bearer abc`, `'Authorization': 'Token abc'`, `"password": "x"`, `token=abc`,
# `api_key: abc`. The name and what joins it to the value are kept, the value goes.
_NAME = r"[\w-]*(?:authorization|token|passw(?:or)?d|secret|api[-_]?key|apikey|cookie)[\w-]*"
SECRET_VALUE = re.compile(
    rf"""(?P<name>["']?{_NAME}["']?\s*[:=]\s*["']?)"""
    r"""(?P<scheme>(?:bearer|basic|token|digest)\s+)?(?P<value>[^\s"',;&}]+)""",
    re.IGNORECASE,
)
# A credential without its name: `Bearer abc…` in free text.
BARE_SCHEME = re.compile(r"(?P<scheme>\b(?:bearer|basic)\s+)(?P<value>[\w.~+/=-]{8,})", re.I)
# user:password@host in a URL (a broker's or database's).
URL_PASSWORD = re.compile(r"(?P<scheme>\w[\w+.-]*://[^:/@\s]*:)(?P<value>[^@\s/]+)(?=@)")


def redact(text: str) -> str:
    text = SECRET_VALUE.sub(lambda m: f"{m['name']}{m['scheme'] or ''}{REDACTED}", text)
    text = BARE_SCHEME.sub(lambda m: f"{m['scheme']}{REDACTED}", text)
    return URL_PASSWORD.sub(lambda m: f"{m['scheme']}{REDACTED}", text)


# Attributes every LogRecord has: not `extra` fields.
_RECORD_ATTRIBUTES = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "request_id"}


class RedactSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            # Both formatters write exc_text when exc_info is gone, and would format the
            # exception afresh (unredacted) while it is there.
            record.exc_text, record.exc_info = redact(record.exc_text), None
        for name in set(vars(record)) - _RECORD_ATTRIBUTES:
            if SECRET_NAME.search(name):
                setattr(record, name, REDACTED)
            elif isinstance(getattr(record, name), str):
                setattr(record, name, redact(getattr(record, name)))
        return True


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.current() or "-"
        return True


JSON_FORMATTER = {
    "()": "pythonjsonlogger.json.JsonFormatter",
    "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
    "rename_fields": {
        "asctime": "timestamp",
        "levelname": "level",
        "name": "logger",
        "message": "event",
    },
    "datefmt": "%Y-%m-%dT%H:%M:%S%z",
}


def json_formatter():
    """The JSON formatter for configurations that can't repeat JSON_FORMATTER (gunicorn's)."""
    from pythonjsonlogger.json import JsonFormatter

    options = {key: value for key, value in JSON_FORMATTER.items() if key != "()"}
    return JsonFormatter(**options)


PLAIN_FORMATTER = {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s"}


def logging_config(*, log_format: str, level: str) -> dict:
    """settings.LOGGING: the console handler with both filters, as plain text or JSON."""
    if log_format not in ("plain", "json"):
        raise ValueError(f"LOG_FORMAT must be plain or json, not {log_format!r}")
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "request_id": {"()": "backoffice.log_format.RequestIdFilter"},
            "redact": {"()": "backoffice.log_format.RedactSecrets"},
        },
        "formatters": {"plain": PLAIN_FORMATTER, "json": JSON_FORMATTER},
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": log_format,
                "filters": ["request_id", "redact"],
            }
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {"django.db.backends": {"level": "INFO"}},
    }
