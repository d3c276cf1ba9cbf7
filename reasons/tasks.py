import logging

from celery import shared_task

from . import sync
from .models import SyncTrigger

logger = logging.getLogger(__name__)


@shared_task
def pull_reasons_from_omnitron() -> int | None:
    """Beat, every 15 minutes by default (editable in the admin's periodic tasks): pull the
    catalog from Omnitron. Returns the run's id, or None when another pull was running."""
    try:
        run = sync.pull_reasons(trigger=SyncTrigger.SCHEDULE)
    except sync.ReasonSyncInProgress:
        logger.info("Skipped a scheduled reason pull: another one is running.")
        return None
    return run.pk
