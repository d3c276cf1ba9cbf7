"""Celery set up against its known ways to lose work (#17): late acknowledgement and requeue
on a lost worker for tasks that may run twice, one message per process, a Redis visibility
timeout above the longest task, and one queue per kind of work."""

import pytest
from django.conf import settings

from backoffice.celery import app
from tests.backoffice.test_settings import run_manage

# Every task of Storno, each checked to be harmless when run twice (settings.py says why),
# with the queue it goes to. A new task must be added here: decide both.
IDEMPOTENT_TASKS = {
    "providers.tasks.deliver_one": "delivery",
    "providers.tasks.deliver_due": "delivery",
    "cancellations.tasks.run_bulk_cancellation": "bulk",
    "cancellations.tasks.complete_due_cancellations": "default",
    "cancellations.tasks.resume_stalled_bulk_cancellations": "default",
    "reasons.tasks.pull_reasons_from_omnitron": "sync",
    "backoffice.tasks.purge_expired_idempotency_keys": "default",
    "backoffice.tasks.purge_expired_throttle_counters": "default",
}
APPS = ("providers.", "cancellations.", "reasons.", "backoffice.")


@pytest.fixture(autouse=True)
def _tasks_discovered():
    app.loader.import_default_modules()  # the apps' tasks modules, as a worker imports them


def storno_tasks() -> set[str]:
    return {name for name in app.tasks if name.startswith(APPS)}


def test_every_task_was_checked_for_running_twice():
    assert storno_tasks() == set(IDEMPOTENT_TASKS)


@pytest.mark.parametrize("name", sorted(IDEMPOTENT_TASKS))
def test_a_task_is_acknowledged_after_it_ran_and_given_back_when_its_worker_dies(name):
    task = app.tasks[name]

    assert task.acks_late is True
    assert task.reject_on_worker_lost is True


@pytest.mark.parametrize(("name", "queue"), sorted(IDEMPOTENT_TASKS.items()))
def test_each_kind_of_work_has_its_own_queue(name, queue):
    route = app.amqp.router.route({}, name)

    assert route["queue"].name == queue


def test_a_worker_told_the_queues_consumes_every_queue_a_task_goes_to():
    assert set(settings.CELERY_WORKER_QUEUES.split(",")) == set(IDEMPOTENT_TASKS.values())


def test_each_worker_process_holds_one_message_at_a_time():
    assert app.conf.worker_prefetch_multiplier == 1


def test_redis_gives_a_message_back_only_after_the_longest_task(tmp_path):
    printed = run_manage(
        "shell",
        "-c",
        "from django.conf import settings as s; "
        "print(s.CELERY_BROKER_TRANSPORT_OPTIONS['visibility_timeout'], s.DELIVERY_SWEEP_SECONDS)",
        DEBUG="1",
        STORNO_VAR_DIR=str(tmp_path),
        CELERY_BROKER_URL="redis://127.0.0.1:6379/13",
    )
    assert printed.returncode == 0, printed.stderr
    visibility, sweep = (float(value) for value in printed.stdout.splitlines()[-1].split())

    # A sweep: its budget, then one batch whose rows each had the longest provider timeout
    # (120 s) plus the claim margin. A bulk runner: about a minute per 100,000 orders.
    assert visibility > sweep + 120 + settings.DELIVERY_CLAIM_MARGIN_SECONDS
    assert visibility >= 3600
