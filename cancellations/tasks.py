from celery import shared_task

from . import services


@shared_task
def complete_due_cancellations() -> int:
    """Beat, every minute: scheduled cancellations whose time has come become effective."""
    return services.complete_due_cancellations()
