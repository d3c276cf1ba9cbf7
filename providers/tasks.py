"""Celery tasks of the outbox. They take ids only, and their messages are hints: the Delivery
rows are the truth, so a message lost, delivered twice or late costs at most a delay.

acks_late: a message is acknowledged after the work, so a worker killed mid-task leaves it to
be delivered again (a no-op if the delivery was settled meanwhile). With
CELERY_WORKER_PREFETCH_MULTIPLIER = 1 a worker holds no backlog that a warm shutdown or a crash
could strand.
"""

from celery import shared_task

from . import dispatch


@shared_task(acks_late=True, ignore_result=True)
def deliver_one(delivery_id: int) -> str | None:
    """Kicked after the commit that wrote the delivery: send it now, if it is due and free."""
    delivery = dispatch.deliver(delivery_id)
    return delivery.status if delivery else None


@shared_task(acks_late=True, ignore_result=True)
def deliver_due() -> int:
    """Beat, every minute: deliver whatever is due (retries after backoff, messages that never
    arrived, deliveries whose worker died)."""
    return dispatch.deliver_due()
