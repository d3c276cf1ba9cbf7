from celery import shared_task

from . import idempotency


@shared_task(ignore_result=True)
def purge_expired_idempotency_keys() -> int:
    """Beat, hourly: delete Idempotency-Keys past their expiry (they count as absent already)."""
    return idempotency.purge_expired_keys()


@shared_task(ignore_result=True)
def purge_expired_throttle_counters() -> int:
    """Beat, hourly: delete the API throttle counters of windows long gone."""
    from .throttling import purge_expired_counters

    return purge_expired_counters()
