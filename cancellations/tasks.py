from celery import shared_task

from . import bulk
from .services import effect


@shared_task
def complete_due_cancellations() -> int:
    """Beat, every minute: scheduled cancellations whose time has come become effective."""
    return effect.complete_due_cancellations()


@shared_task(acks_late=True, ignore_result=True)
def run_bulk_cancellation(job_id: int) -> str | None:
    """Queued by start_bulk_cancellation. acks_late: a worker killed mid-job leaves the
    message to be delivered again, and the job resumes with the orders still pending."""
    job = bulk.run_bulk_cancellation(job_id)
    return job.status if job else None


@shared_task(ignore_result=True)
def resume_stalled_bulk_cancellations() -> int:
    """Beat, every minute: restart jobs whose message was lost or whose worker died."""
    return bulk.resume_stalled_bulk_cancellations()
