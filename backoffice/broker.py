"""Publishing Celery messages without letting a broker that is down or hangs hold up every
request. The messages published from requests are only hints (deliver now, start this bulk
job now): the beat's sweeps do the same work a little later. So after one publish fails, this
process publishes nothing for BROKER_BACKOFF_SECONDS (30 s): only the first request pays the
broker's timeout, the next ones answer at once, and the sweeps deliver what waited.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime

from django.conf import settings

_clock = time.monotonic
_lock = threading.Lock()
# Until when (on _clock) this process publishes nothing; 0: publish.
_paused_until = 0.0


class BrokerPaused(Exception):
    """A publish failed a moment ago: this one wasn't tried."""


def backoff_seconds() -> float:
    return float(getattr(settings, "BROKER_BACKOFF_SECONDS", 30))


def publish(task, *args, **kwargs) -> None:
    """task.delay(*args, **kwargs), unless a publish failed within the backoff: then raise
    BrokerPaused at once. A failure is raised as it is, and starts the backoff."""
    _send(task, lambda: task.delay(*args, **kwargs))


def publish_at(task, eta: datetime, *args) -> None:
    """Like publish, for a task to run at `eta` (a worker holds the message until then)."""
    _send(task, lambda: task.apply_async(args, eta=eta))


def _send(task, send: Callable[[], object]) -> None:
    global _paused_until
    now = _clock()
    if now < _paused_until:
        raise BrokerPaused(
            f"A publish to the broker failed; none is tried for {_paused_until - now:.0f} s."
        )
    try:
        send()
    except Exception:
        if task.app.conf.task_always_eager:
            raise  # the task itself failed, run in this process: the broker wasn't asked
        with _lock:
            _paused_until = max(_paused_until, _clock() + backoff_seconds())
        raise


def resume_publishing() -> None:
    """Forget an earlier failure (tests; a process that knows the broker is back)."""
    global _paused_until
    with _lock:
        _paused_until = 0.0
