"""Persistent database connections by default, kept across Celery tasks the way Django keeps
them across requests (backoffice.celery)."""

from types import SimpleNamespace

from celery.fixups.django import DjangoWorkerFixup
from django.db import connection

from backoffice.celery import app, close_old_connections_around_task
from tests.backoffice.test_settings import run_manage

SHOW_CONNECTION_SETTINGS = (
    "from django.db import connection as c; "
    "print(c.settings_dict['CONN_MAX_AGE'], c.settings_dict['CONN_HEALTH_CHECKS'])"
)


def task(*, eager):
    return SimpleNamespace(request=SimpleNamespace(is_eager=eager))


def test_connections_are_kept_a_minute_and_checked_by_default(tmp_path):
    result = run_manage(
        "shell", "-c", SHOW_CONNECTION_SETTINGS, DEBUG="1", STORNO_VAR_DIR=str(tmp_path)
    )

    assert result.stdout.split()[-2:] == ["60", "True"], result.stderr


def test_conn_max_age_zero_opens_a_connection_per_request(tmp_path):
    result = run_manage(
        "shell",
        "-c",
        SHOW_CONNECTION_SETTINGS,
        DEBUG="1",
        CONN_MAX_AGE="0",
        STORNO_VAR_DIR=str(tmp_path),
    )

    assert result.stdout.split()[-2:] == ["0", "True"], result.stderr


def test_celerys_django_fixup_leaves_a_workers_connection_open_around_tasks(db, monkeypatch):
    connection.ensure_connection()
    closed = []
    monkeypatch.setattr(connection, "close", lambda: closed.append(True))
    fixup = DjangoWorkerFixup(app)

    for _ in range(100):
        fixup.on_task_prerun(sender=task(eager=False))
        fixup.on_task_postrun(sender=task(eager=False))

    assert closed == []


def test_a_worker_closes_old_or_broken_connections_around_each_task(monkeypatch):
    checked = []
    monkeypatch.setattr(connection, "close_if_unusable_or_obsolete", lambda: checked.append(True))

    close_old_connections_around_task(sender=task(eager=False))

    assert checked == [True]


def test_an_eager_task_leaves_its_callers_connection_alone(monkeypatch):
    checked = []
    monkeypatch.setattr(connection, "close_if_unusable_or_obsolete", lambda: checked.append(True))

    close_old_connections_around_task(sender=task(eager=True))

    assert checked == []
