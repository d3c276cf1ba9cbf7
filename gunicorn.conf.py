"""gunicorn's settings for Storno. gunicorn reads ./gunicorn.conf.py from its working directory
(start it from the repository root, or pass `-c /path/to/gunicorn.conf.py`); options on the
command line (`--workers 4`) override what is set here.

Some requests gunicorn refuses itself, before Storno sees them: a request line longer than
limit_request_line (414), too many or too large header fields (431), a malformed request line
or header (400). gunicorn writes those answers as HTML; here they become problem objects like
every other API error (application/problem+json, `urn:storno:problem:http-<status>`). The path
is not known yet at that point, so staff pages get the same JSON for such a request.
"""

import inspect
import json
import os

from gunicorn import util

# The longest request line (method, URL with its query string, protocol) gunicorn accepts, in
# bytes: its maximum (4094 by default). Longer lines are answered 414 by gunicorn itself.
limit_request_line = 8190


def write_problem(sock, status_int, reason, mesg):
    """gunicorn.util.write_error's job, with an RFC 7807 problem object as the body."""
    body = json.dumps(
        {
            "type": f"urn:storno:problem:http-{status_int}",
            "title": reason,
            "status": status_int,
            "detail": mesg or reason,
        }
    ).encode()
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\n"
        "Connection: close\r\n"
        "Content-Type: application/problem+json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode("latin-1")
    util.write_nonblock(sock, head + body)


# Workers call util.write_error(sock, status_int, reason, mesg) for the answers above. If a
# gunicorn release calls it differently, its own HTML answers stay.
if list(inspect.signature(util.write_error).parameters) == ["sock", "status_int", "reason", "mesg"]:
    util.write_error = write_problem


# gunicorn answers on $PORT (all interfaces) when set, as on a PaaS, else on 127.0.0.1:8000;
# WEB_CONCURRENCY worker processes (gunicorn reads both itself). Two per CPU core is a start.


def child_exit(server, worker):
    """A worker process exited: its live gauges leave the metrics (its counters stay counted).
    See backoffice/metrics.py and PROMETHEUS_MULTIPROC_DIR."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


# LOG_FORMAT=json: gunicorn's own lines (start, stop, worker timeouts) are JSON objects too,
# with the filters that blank credentials (backoffice.log_format).
if os.environ.get("LOG_FORMAT", "").strip().lower() == "json":
    logconfig_dict = {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "request_id": {"()": "backoffice.log_format.RequestIdFilter"},
            "redact": {"()": "backoffice.log_format.RedactSecrets"},
        },
        "formatters": {"json": {"()": "backoffice.log_format.json_formatter"}},
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "filters": ["request_id", "redact"],
                "stream": "ext://sys.stdout",
            },
            "error_console": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "filters": ["request_id", "redact"],
                "stream": "ext://sys.stderr",
            },
        },
        "loggers": {
            "gunicorn.error": {"level": "INFO", "handlers": ["error_console"], "propagate": False},
            "gunicorn.access": {"level": "INFO", "handlers": ["console"], "propagate": False},
        },
    }
