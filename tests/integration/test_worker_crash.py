"""A worker killed mid-task under the production Celery settings (#17): acks_late,
reject_on_worker_lost, one message per process, the queues of the Procfile. It costs a delay,
never a delivery, and no effect happens twice. (A whole worker SIGKILLed and restarted:
test_worker_delivery.py's test_a_worker_killed_mid_delivery_loses_nothing_and_doubles_no_effect,
whose worker consumes the same queues.)

Run with STORNO_INTEGRATION=1 on PostgreSQL with Redis (see test_worker_delivery.py, whose
worker, fakes and broker fixtures these tests use).
"""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path

import pytest

from backoffice import request_id
from providers.models import AttemptOutcome, Delivery
from tests.integration.test_worker_delivery import (  # noqa: F401 - fixtures
    CLAIM_MARGIN,
    PROVIDER_TIMEOUT,
    all_delivered,
    broker,
    cancel,
    fakes,
    new_order,
    start_worker,
    wait_for,
)

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]
if os.environ.get("STORNO_INTEGRATION") != "1":
    pytestmark.append(pytest.mark.skip(reason="set STORNO_INTEGRATION=1 to run"))


def pool_processes(pid: int) -> list[int]:
    """The worker's prefork pool: the children of its main process."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(child) for child in children]


def test_a_pool_process_killed_mid_delivery_gives_its_message_back_and_delivery_follows(
    start_worker,  # noqa: F811 - the imported fixture
    fakes,  # noqa: F811
):
    callisto, rebilly = fakes
    callisto.delay_next(1, seconds=4)  # the fakes act at once but answer late
    rebilly.delay_next(1, seconds=4)
    worker = start_worker()
    token = request_id._current.set("req-crash-1")  # as if an API request had cancelled
    try:
        cancellation = cancel(new_order(4711))
    finally:
        request_id._current.reset(token)
    wait_for(
        lambda: callisto.received_count(4711) == 1 and len(rebilly.received) == 1,
        timeout=20,
        what="both requests to be in the air",
    )

    for pid in pool_processes(worker.process.pid):
        os.kill(pid, signal.SIGKILL)  # an OOM kill: the main worker process lives on

    # reject_on_worker_lost: the lost tasks' messages come back and are received again…
    wait_for(
        lambda: max(received_twice(worker.log.read_text()).values(), default=0) >= 2,
        timeout=20,
        what="a killed task's message to be received again",
    )
    # …and once the killed claims' leases run out, the sweep (beat, played here) sends them.
    wait_for(all_delivered(2), timeout=PROVIDER_TIMEOUT + CLAIM_MARGIN + 30, sweep=True)
    assert callisto.effects(4711) == ["Add"]  # sent twice, took effect once
    assert [e for e in rebilly.effects(cancellation.pk) if e != "unchanged"] == ["created"]
    for delivery in Delivery.objects.all():
        attempts = list(delivery.attempt_log.values_list("outcome", "request_id"))
        assert attempts[0] == (AttemptOutcome.ABANDONED, "req-crash-1")  # the request's kick
        assert attempts[-1][0] == AttemptOutcome.DELIVERED
    assert "WorkerLostError" in worker.log.read_text()


def received_twice(log: str) -> dict[str, int]:
    """{task id: times received} of the deliver_one tasks in a worker's log."""
    counts: dict[str, int] = {}
    for task_id in re.findall(r"Task providers\.tasks\.deliver_one\[([0-9a-f-]+)\] received", log):
        counts[task_id] = counts.get(task_id, 0) + 1
    return counts
