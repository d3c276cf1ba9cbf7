import logging

from celery import shared_task
from django.conf import settings

from backoffice.broker import publish

from . import bulk_runner
from .services import effect

logger = logging.getLogger(__name__)


@shared_task
def complete_due_cancellations() -> int:
    """Beat, every minute: scheduled cancellations whose time has come become effective."""
    return effect.complete_due_cancellations()


@shared_task(acks_late=True, ignore_result=True)
def run_bulk_cancellation(job_id: int) -> str | None:
    """Queued by start_bulk_cancellation. acks_late: a worker killed mid-job leaves the
    message to be delivered again, and the job resumes with the orders still pending."""
    job = bulk_runner.run_bulk_cancellation(job_id)
    return job.status if job else None


@shared_task(ignore_result=True)
def resume_stalled_bulk_cancellations(now=None) -> int:
    """Beat, every minute: restart jobs whose message was lost or whose worker died."""
    stalled = bulk_runner.stalled_bulk_cancellations(now=now)
    for job_id in stalled:
        queue_bulk_cancellation(job_id)
    return len(stalled)


def runner_count() -> int:
    return max(1, getattr(settings, "BULK_CANCELLATION_RUNNERS", 2))


def queue_bulk_cancellation(job_id: int) -> None:
    """Start the job's runners (BULK_CANCELLATION_RUNNERS Celery tasks)."""
    try:
        for _runner in range(runner_count()):
            publish(run_bulk_cancellation, job_id)
    except Exception:
        # The job row is the truth; the beat's resume_stalled_bulk_cancellations starts it.
        logger.exception("Could not queue bulk cancellation %s; the beat will start it.", job_id)
