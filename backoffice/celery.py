"""The Celery app: `celery -A backoffice worker -B`.

Broker and schedule come from Django settings (CELERY_* names), so the same code runs on the
embedded filesystem broker and on Redis or RabbitMQ.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backoffice.settings")

app = Celery("backoffice")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
