"""Celery's settings, the beat schedule, and the knobs of the work the workers do (bulk
cancellation batches, provider deliveries). backoffice.settings star-imports this module in
place of its Celery block, so tests/settings.py and other settings modules still override any
of them after `from backoffice.settings import *`.
"""

import os

from celery.schedules import crontab

from backoffice.settings_env import VAR_DIR, env_bool

CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    # Kombu's filesystem transport: one folder shared by every process on this machine.
    _broker_dir = VAR_DIR / "broker"
    _broker_dir.mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir),
        "data_folder_out": str(_broker_dir),
        "processed_folder": str(VAR_DIR / "broker-processed"),
        "store_processed": False,
        # Broadcast (pidbox) exchanges; Kombu's default is ./control in the working directory.
        "control_folder": str(VAR_DIR / "broker-control"),
    }
# Web requests publish too (the after-commit kick of a new cancellation), but a message is only
# a hint: the Delivery rows are the truth and the beat sweep sends what a lost kick left behind.
# So a broker that is down or hangs may cost a request a few seconds, never minutes:
# - AMQP: connect and handshake within 2 s (Celery's default is 4 s).
# - Redis: kombu waits forever for a Redis that accepts the connection but never answers. 2 s
#   to connect, 3 s per answer (a healthy Redis answers in milliseconds, and the worker's BRPOP
#   polls every second); with redis-py's check on connect the worst case is about 2 × 3 s.
# - One immediate publish retry instead of Celery's three: enough for a pooled connection that
#   went stale when the broker restarted.
# - After a failed publish, a process publishes nothing for BROKER_BACKOFF_SECONDS
#   (backoffice.broker): only the first request pays these timeouts, the next ones none.
# Workers reconnect to a broker that went away (broker_connection_retry, on by default) and,
# with RETRY_ON_STARTUP, wait for one that isn't up yet when they start instead of exiting.
CELERY_BROKER_CONNECTION_TIMEOUT = 2
BROKER_REDIS_TIMEOUTS = {"socket_connect_timeout": 2, "socket_timeout": 3}
# Redis hands a message that a worker took but never acknowledged (acks_late, below) to another
# worker after visibility_timeout seconds. It must be longer than the longest task, or a task
# still running is started a second time: a bulk runner works through its job (about a minute
# per 100,000 orders on a small machine), a delivery sweep DELIVERY_SWEEP_SECONDS plus one batch.
# Two hours leave room for jobs of millions of orders. It is also the longest a message of a
# worker that was SIGKILLed waits in Redis; what it asked for is done sooner anyway: the beat's
# sweeps find the deliveries and bulk jobs in the database once their leases run out.
CELERY_VISIBILITY_TIMEOUT = int(os.environ.get("CELERY_VISIBILITY_TIMEOUT", "7200"))
if CELERY_BROKER_URL.startswith(("redis://", "rediss://", "sentinel://")):
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        **BROKER_REDIS_TIMEOUTS,
        "visibility_timeout": CELERY_VISIBILITY_TIMEOUT,
    }
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0}
BROKER_BACKOFF_SECONDS = float(os.environ.get("BROKER_BACKOFF_SECONDS", "30"))
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BEAT_SCHEDULE = {
    "complete-due-cancellations": {
        "task": "cancellations.tasks.complete_due_cancellations",
        "schedule": crontab(minute="*"),
    },
    "pull-cancellation-reasons": {
        "task": "reasons.tasks.pull_reasons_from_omnitron",
        "schedule": crontab(minute="*/15"),
    },
    # The outbox sweep: retries after backoff, lost messages, deliveries whose worker died.
    "deliver-due-deliveries": {
        "task": "providers.tasks.deliver_due",
        "schedule": crontab(minute="*"),
    },
    # Bulk cancellations whose message was lost or whose worker died carry on.
    "resume-stalled-bulk-cancellations": {
        "task": "cancellations.tasks.resume_stalled_bulk_cancellations",
        "schedule": crontab(minute="*"),
    },
    "purge-expired-idempotency-keys": {
        "task": "backoffice.tasks.purge_expired_idempotency_keys",
        "schedule": crontab(minute=17),
    },
    "purge-expired-throttle-counters": {
        "task": "backoffice.tasks.purge_expired_throttle_counters",
        "schedule": crontab(minute=47),
    },
}
# Against the known ways to lose work:
# - acks_late: a message is acknowledged after its task ran, not when a worker takes it, so a
#   worker that dies mid-task leaves it to be delivered again;
# - reject_on_worker_lost: a pool process killed mid-task (OOM, SIGKILL) gives its message back
#   at once, instead of Celery acknowledging it as failed;
# - worker_prefetch_multiplier=1: each worker process holds one message at a time, so no backlog
#   sits behind a slow task or is stranded by a crash or a warm shutdown.
# Running a task twice must then be harmless, and every task of Storno is (tests/backoffice/
# test_celery_setup.py lists them): deliver_one and deliver_due claim due rows with a lease and
# a claim token, a second run finds nothing due; run_bulk_cancellation takes pending targets in
# SKIP LOCKED batches, a second runner shares the job; complete_due_cancellations re-checks each
# cancellation's status under its lock; pull_reasons_from_omnitron upserts the catalog and a
# second pull waits its turn; the purges and resume_stalled_bulk_cancellations only look at the
# database as it is. A new task that can't run twice sets acks_late=False itself.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# On a lost broker connection, stop the running tasks (their messages come back) rather than
# finish them and acknowledge on a connection that is gone; Celery 6's default.
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
# One queue per kind of work, so a 100,000-order bulk job never waits in front of a single
# cancellation's delivery: workers that consume `delivery` (`-Q delivery`) keep delivering
# while others work through the bulk job. One worker may consume them all (the Procfile, `make
# run`); on several machines, give each queue its own workers.
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {
    "providers.tasks.*": {"queue": "delivery"},
    "cancellations.tasks.run_bulk_cancellation": {"queue": "bulk"},
    "reasons.tasks.*": {"queue": "sync"},
}
# What `celery worker -Q` is given to consume all of them (Procfile, rundemo, the tests).
CELERY_WORKER_QUEUES = "delivery,bulk,sync,default"
# Celery's Django fixup closes every database connection around each task unless this is set;
# backoffice.celery closes them the way Django does around a request instead (CONN_MAX_AGE).
CELERY_DB_REUSE_MAX = 2**62
# Orders per transaction in a bulk cancellation, and how long a worker holds a job between
# batches before another may resume it.
BULK_CANCELLATION_BATCH_SIZE = int(os.environ.get("BULK_CANCELLATION_BATCH_SIZE", "500"))
BULK_CANCELLATION_LEASE_SECONDS = int(os.environ.get("BULK_CANCELLATION_LEASE_SECONDS", "120"))
# Celery tasks that work on one bulk job side by side (each takes its own batches).
BULK_CANCELLATION_RUNNERS = int(os.environ.get("BULK_CANCELLATION_RUNNERS", "2"))
DELIVERY_MAX_ATTEMPTS = int(os.environ.get("DELIVERY_MAX_ATTEMPTS", "8"))
DELIVERY_BACKOFF_BASE_SECONDS = float(os.environ.get("DELIVERY_BACKOFF_BASE_SECONDS", "30"))
DELIVERY_BACKOFF_MAX_SECONDS = float(os.environ.get("DELIVERY_BACKOFF_MAX_SECONDS", "3600"))
# An in-flight delivery is taken for abandoned (its worker died) after its provider's timeout
# plus this margin, and may then be claimed again.
DELIVERY_CLAIM_MARGIN_SECONDS = float(os.environ.get("DELIVERY_CLAIM_MARGIN_SECONDS", "60"))
DELIVERY_SWEEP_SECONDS = float(os.environ.get("DELIVERY_SWEEP_SECONDS", "50"))
# Deliveries one claim takes (providers/dispatch.py): a batch costs a fixed number of queries.
DELIVERY_BATCH_SIZE = int(os.environ.get("DELIVERY_BATCH_SIZE", "100"))
