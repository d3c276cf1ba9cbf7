"""backoffice.broker: after a failed publish a process publishes nothing for
BROKER_BACKOFF_SECONDS, then tries again. (The end-to-end bound, a silent broker costing later
requests nothing, is in tests/integration/test_faults.py.)"""

from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from backoffice import broker


class Task:
    """A Celery task's publishing side: delay() reaches the broker, or fails as it does."""

    def __init__(self, *, eager=False):
        self.app = SimpleNamespace(conf=SimpleNamespace(task_always_eager=eager))
        self.sent: list[tuple] = []
        self.broker_down = False

    def delay(self, *args):
        if self.broker_down:
            raise ConnectionError("broker unreachable")
        self.sent.append(args)

    def apply_async(self, args, eta=None):
        if self.broker_down:
            raise ConnectionError("broker unreachable")
        self.sent.append((*args, eta))


@pytest.fixture
def clock(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(broker, "_clock", lambda: now[0])
    return now


def test_a_failed_publish_is_raised_and_the_next_ones_are_not_tried(clock, settings):
    settings.BROKER_BACKOFF_SECONDS = 30
    task = Task()
    task.broker_down = True

    with pytest.raises(ConnectionError):
        broker.publish(task, 1)
    task.broker_down = False  # back, but this process doesn't know yet
    clock[0] += 29

    with pytest.raises(broker.BrokerPaused):
        broker.publish(task, 2)
    assert task.sent == []


def test_publishing_resumes_after_the_backoff(clock, settings):
    settings.BROKER_BACKOFF_SECONDS = 30
    task = Task()
    task.broker_down = True
    with pytest.raises(ConnectionError):
        broker.publish(task, 1)
    task.broker_down = False
    clock[0] += 30

    broker.publish(task, 2)

    assert task.sent == [(2,)]


def test_a_task_that_fails_when_run_eagerly_pauses_nothing(clock):
    task = Task(eager=True)
    task.broker_down = True  # the task itself raises, in this process
    with pytest.raises(ConnectionError):
        broker.publish(task, 1)
    task.broker_down = False

    broker.publish(task, 2)

    assert task.sent == [(2,)]


def test_a_backoff_of_zero_pauses_nothing(clock, settings):
    settings.BROKER_BACKOFF_SECONDS = 0
    task = Task()
    task.broker_down = True
    with pytest.raises(ConnectionError):
        broker.publish(task, 1)
    task.broker_down = False

    broker.publish(task, 2)

    assert task.sent == [(2,)]


def test_a_publish_for_later_carries_its_time(clock):
    task = Task()
    when = datetime(2026, 12, 6, 16, 42, tzinfo=UTC)

    broker.publish_at(task, when, 7)

    assert task.sent == [(7, when)]


def test_a_publish_for_later_is_paused_like_any_other(clock, settings):
    settings.BROKER_BACKOFF_SECONDS = 30
    task = Task()
    task.broker_down = True
    with pytest.raises(ConnectionError):
        broker.publish(task, 1)
    task.broker_down = False

    with pytest.raises(broker.BrokerPaused):
        broker.publish_at(task, datetime(2026, 12, 6, tzinfo=UTC), 2)
    assert task.sent == []
