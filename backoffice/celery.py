"""The Celery app: `celery -A backoffice worker -B`.

Broker and schedule come from Django settings (CELERY_* names), so the same code runs on the
embedded filesystem broker and on Redis or RabbitMQ.
"""

import os

from celery import Celery
from celery.signals import setup_logging, task_postrun, task_prerun

from . import request_id  # noqa: F401 - connects the signals that carry the request id

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backoffice.settings")

app = Celery("backoffice")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@setup_logging.connect(dispatch_uid="storno-logging")
def log_like_the_web_processes(**_kwargs) -> None:
    """Workers and beat write Storno's log lines (LOG_FORMAT, request id, secrets blanked)
    instead of Celery's own format: connecting this signal tells Celery to leave logging alone."""
    import logging.config

    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)


@task_prerun.connect(dispatch_uid="storno-close-old-connections-prerun")
@task_postrun.connect(dispatch_uid="storno-close-old-connections-postrun")
def close_old_connections_around_task(sender=None, **_kwargs) -> None:
    """What Django does around a request, around a task: close a connection that is older than
    CONN_MAX_AGE or broken, and check a kept one again before its next use (CONN_HEALTH_CHECKS).

    Celery's Django fixup closes every connection before and after each task instead, so a
    worker would open a new PostgreSQL backend per task; settings.CELERY_DB_REUSE_MAX turns
    that off and this takes its place. Eager tasks (the tests) run inside the caller's
    transaction, which must not be touched."""
    if getattr(getattr(sender, "request", None), "is_eager", False):
        return
    from django.db import close_old_connections

    close_old_connections()
