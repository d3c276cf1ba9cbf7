"""The periodic pull (Celery beat through django-celery-beat) and the pull_reasons command."""

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django_celery_beat.models import PeriodicTask

from reasons import tasks
from reasons.models import CancellationReason, ReasonSyncRun, SyncStatus, SyncTrigger

pytestmark = pytest.mark.django_db

TASK = "reasons.tasks.pull_reasons_from_omnitron"


def test_the_task_pulls_the_catalog_as_a_scheduled_run(omnitron):
    run_id = tasks.pull_reasons_from_omnitron.delay().get()

    run = ReasonSyncRun.objects.get(pk=run_id)
    assert (run.status, run.trigger, run.triggered_by) == (
        SyncStatus.SUCCEEDED,
        SyncTrigger.SCHEDULE,
        None,
    )
    assert CancellationReason.objects.count() == 12


def test_the_task_skips_while_another_pull_runs(omnitron):
    running = ReasonSyncRun.objects.create(trigger=SyncTrigger.ADMIN)

    assert tasks.pull_reasons_from_omnitron.delay().get() is None

    assert list(ReasonSyncRun.objects.all()) == [running]
    assert omnitron.requests == []


def test_the_task_records_a_failed_pull_without_raising(omnitron):
    omnitron.server_error_on_page = 1

    run_id = tasks.pull_reasons_from_omnitron.delay().get()

    assert ReasonSyncRun.objects.get(pk=run_id).error_cause == "server_error"


def test_the_beat_schedule_pulls_every_15_minutes():
    entry = settings.CELERY_BEAT_SCHEDULE["pull-cancellation-reasons"]

    assert entry["task"] == TASK
    assert entry["schedule"].minute == {0, 15, 30, 45}


# Beat's scheduler closes the database connection it was given, which a test transaction can't
# survive on PostgreSQL; a transactional test reconnects.
@pytest.mark.django_db(transaction=True)
def test_the_database_scheduler_installs_the_pull_as_an_editable_periodic_task():
    from django_celery_beat.schedulers import DatabaseScheduler

    from backoffice.celery import app

    DatabaseScheduler(app=app)

    periodic = PeriodicTask.objects.get(name="pull-cancellation-reasons")
    assert periodic.task == TASK
    assert periodic.crontab.minute == "*/15"
    assert periodic.enabled


# --- the management command --------------------------------------------------------------------


def test_the_command_pulls_and_prints_the_counts(omnitron, capsys):
    call_command("pull_reasons")

    out = capsys.readouterr().out
    assert "Pulled 12 reasons from Omnitron: 12 created, 0 updated, 0 deactivated" in out
    assert ReasonSyncRun.objects.get().trigger == SyncTrigger.COMMAND


def test_the_command_prints_the_runs_warnings(omnitron, capsys):
    omnitron.update_reason(7, cancellation_type="exchange")

    call_command("pull_reasons")

    assert 'Reason pk 7: Omnitron\'s cancellation_type "exchange"' in capsys.readouterr().out


def test_the_command_fails_naming_the_cause(omnitron):
    omnitron.token = "rotated"

    with pytest.raises(CommandError, match="unauthorized"):
        call_command("pull_reasons")


def test_the_command_refuses_while_another_pull_runs(omnitron):
    ReasonSyncRun.objects.create(trigger=SyncTrigger.SCHEDULE)

    with pytest.raises(CommandError, match="Another pull"):
        call_command("pull_reasons")
