"""The suite runs in random order (pytest-randomly): each test starts with this process's state
as the first test found it, whatever the test before it left (tests/conftest.py resets it).

Each check runs twice and dirties the state after checking it: whichever of the two runs
second fails when the reset is missing."""

from types import SimpleNamespace

import pytest
from django.utils import translation

from backoffice import auth_backends, broker
from providers import http, js7
from tests.factories import UserFactory

RUNS = pytest.mark.parametrize("run", [1, 2])


class BrokenTask:
    """A Celery task whose broker is unreachable."""

    app = SimpleNamespace(conf=SimpleNamespace(task_always_eager=False))

    def delay(self, *args, **kwargs):
        raise ConnectionError("broker unreachable")


@RUNS
def test_each_test_starts_with_the_broker_not_paused(run):
    broker.publish(SimpleNamespace(app=BrokenTask.app, delay=lambda: None))  # not BrokerPaused

    with pytest.raises(ConnectionError):
        broker.publish(BrokenTask())


@RUNS
@pytest.mark.django_db
def test_each_test_starts_with_no_permissions_kept(run):
    assert auth_backends._cache == {}

    user = UserFactory(permissions=["cancellations.view_order"])
    assert user.has_perm("cancellations.view_order")
    assert auth_backends._cache != {}


@RUNS
def test_each_test_starts_with_no_js7_session(run):
    assert js7._tokens == {}

    js7._store_token(("http://127.0.0.1:8104", "storno"), f"token-of-run-{run}")


@RUNS
def test_each_test_starts_with_no_pooled_provider_connections(run):
    assert http._pools == {}

    http.provider_session("alpha", timeout=1)
    assert http._pools != {}


@RUNS
def test_each_test_starts_in_the_default_language(run):
    assert translation.get_language() == "en"

    translation.activate("de")
