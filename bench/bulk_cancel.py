"""Orders per second through a bulk cancellation job, deliveries enqueued, on PostgreSQL.

    .venv/bin/python bench/bulk_cancel.py                      # 100,000 orders
    .venv/bin/python bench/bulk_cancel.py --orders 20000 --batch-size 1000
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/other .venv/bin/python bench/bulk_cancel.py

Uses DATABASE_URL, by default postgres://postgres@127.0.0.1:5432/storno_bench (created if
missing, emptied before each run). It writes `--orders` open orders of one channel, placed in
the last day, each with two items (one with an open settlement item) and references at
Callisto, Rebilly and JS7, with all four providers enabled. Then it runs the job the API and
the staff page start (cancellations.bulk_runner.run_bulk_cancellation) for "that channel, last day"
and times it: snapshot, cancellations, items, audit entries, settlement removals, order
statuses and one outbox row per provider and order. Delivering is not part of it (the job only
asks for a sweep, switched off here); bench/dispatch.py measures that. CALLISTO_DEFAULT_USER_ID is
set, since Callisto refuses a cancellation without a Salesforce user. The orders are ANALYZEd
before the job plans its query over them.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.support import ensure_database  # noqa: E402 - after the path is set

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/storno_bench"
CHANNEL = "/bench/de"


def setup_django() -> None:
    url = os.environ.setdefault("DATABASE_URL", DEFAULT_DATABASE_URL)
    if url.startswith("postgres"):
        ensure_database(url)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backoffice.settings")
    os.environ.setdefault("SECRET_KEY", "bench-secret-key-not-for-production-0123456789abcdef")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    # Callisto refuses a cancellation without a Salesforce user (README, "Callisto's dates and
    # users"); a bulk job has none of its own.
    os.environ.setdefault("CALLISTO_DEFAULT_USER_ID", "005000000000001AAA")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def empty_tables() -> None:
    from django.db import connection

    from cancellations.models import BulkCancellation, Order
    from providers.models import Delivery, DeliveryAttempt

    tables = [
        model._meta.db_table for model in (DeliveryAttempt, Delivery, BulkCancellation, Order)
    ]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
        else:
            for table in tables:
                cursor.execute(f"DELETE FROM {table}")  # noqa: S608 - our own table names


def write_orders(count: int) -> None:
    from datetime import timedelta
    from decimal import Decimal

    from django.utils import timezone

    from cancellations.models import Order, OrderItem, SettlementItem

    now = timezone.now()
    chunk = 5000
    for start in range(0, count, chunk):
        orders = Order.objects.bulk_create(
            Order(
                number=f"BENCH-{n:07d}",
                customer_name=f"Customer {n}",
                customer_email=f"c{n}@example.com",
                channel=CHANNEL,
                placed_at=now - timedelta(seconds=1 + n % 80000),
                currency="EUR",
                external_ids={
                    "callisto": str(100000 + n),
                    "rebilly": f"ord_bench_{n}",
                    "js7ControllerId": "storno-controller",
                    "js7OrderIds": [f"#2026-11-23#B{n:07d}-fulfil"],
                },
            )
            for n in range(start, min(start + chunk, count))
        )
        items = OrderItem.objects.bulk_create(
            OrderItem(
                order=order,
                sku=sku,
                quantity=quantity,
                unit_price_amount=Decimal("19.90"),
                unit_price_currency="EUR",
                period_start=now - timedelta(days=10) if sku == "PLAN" else None,
                period_end=now + timedelta(days=20) if sku == "PLAN" else None,
            )
            for order in orders
            for sku, quantity in (("PLAN", 1), ("ADDON", 2))
        )
        SettlementItem.objects.bulk_create(
            SettlementItem(
                order_item=item,
                amount=Decimal("19.90"),
                currency="EUR",
                period_start=item.period_start,
                period_end=item.period_end,
            )
            for item in items
            if item.sku == "PLAN"
        )


def _runner(job_id: int, profile: str | None) -> None:
    from cancellations import bulk_runner

    bulk_runner.kick_sweep = lambda: None
    if not profile:
        bulk_runner.run_bulk_cancellation(job_id)
        return
    import cProfile

    profiler = cProfile.Profile()
    profiler.runcall(bulk_runner.run_bulk_cancellation, job_id)
    profiler.dump_stats(f"{profile}.{os.getpid()}")


def run_in_processes(job_id: int, runners: int, profile: str | None = None) -> None:
    """Each runner in its own process, as Celery's prefork pool runs them; they share the job
    through SKIP LOCKED batches."""
    import multiprocessing

    from django.db import connections

    connections.close_all()  # a forked child must open its own connection
    context = multiprocessing.get_context("fork")
    processes = [context.Process(target=_runner, args=(job_id, profile)) for _ in range(runners)]
    for process in processes:
        process.start()
    for process in processes:
        process.join()


def _job_rows(model, job_id: int, half: int) -> str:
    """The SELECT of the rows of `model` the job wrote for the orders of one half (order id
    modulo 2), every column in the table's order."""
    from cancellations.models import Cancellation

    table = model._meta.db_table
    own = (
        f"SELECT id FROM {Cancellation._meta.db_table} "  # noqa: S608 - our own table names
        f"WHERE bulk_cancellation_id = {int(job_id)} AND order_id % 2 = {half}"
    )
    key = "id" if model is Cancellation else "cancellation_id"
    return f"SELECT * FROM {table} WHERE {key} IN ({own})"  # noqa: S608


def copy_floor(job_id: int) -> tuple[float, int]:
    """PostgreSQL's own COPY of the rows the job inserted, over two connections: read them out
    (binary COPY), delete them, and time COPYing them back (commit and its deferred foreign-key
    checks included), each connection one half of the orders. The same rows into the same
    tables with the same indexes, so nothing but the Python in between is left out. The
    updates the job makes (orders, items, settlement items, targets) are not part of it.
    Returns (seconds, rows)."""
    import threading

    import psycopg
    from django.db import connection

    from cancellations.models import AuditEntry, Cancellation, CancellationItem, CancellationLine
    from providers.models import Delivery

    parents_first = [Cancellation, CancellationItem, CancellationLine, AuditEntry, Delivery]
    dsn = " ".join(
        f"{key}={value}"
        for key, value in (
            ("dbname", connection.settings_dict["NAME"]),
            ("host", connection.settings_dict["HOST"]),
            ("port", connection.settings_dict["PORT"]),
            ("user", connection.settings_dict["USER"]),
            ("password", connection.settings_dict["PASSWORD"]),
        )
        if value
    )
    dumps: dict[int, list[tuple[str, bytes]]] = {0: [], 1: []}
    rows = 0
    with psycopg.connect(dsn) as conn:
        for half in (0, 1):
            for model in parents_first:
                query = _job_rows(model, job_id, half)
                rows += conn.execute(f"SELECT count(*) FROM ({query}) rows").fetchone()[0]  # noqa: S608
                with conn.cursor().copy(f"COPY ({query}) TO STDOUT (FORMAT binary)") as copy:
                    data = b"".join(bytes(block) for block in copy)
                dumps[half].append((model._meta.db_table, data))
    barrier = threading.Barrier(2)
    spans: dict[int, tuple[float, float]] = {}

    def copy_half(half: int) -> None:
        with psycopg.connect(dsn) as conn:
            conn.execute("SET CONSTRAINTS ALL DEFERRED")
            for model in reversed(parents_first):
                conn.execute(
                    f"DELETE FROM {model._meta.db_table} WHERE id IN "  # noqa: S608
                    f"(SELECT id FROM ({_job_rows(model, job_id, half)}) rows)"
                )
            barrier.wait()
            started = time.perf_counter()
            for table, data in dumps[half]:
                with conn.cursor().copy(f"COPY {table} FROM STDIN (FORMAT binary)") as copy:
                    copy.write(data)
            conn.commit()
            spans[half] = (started, time.perf_counter())

    threads = [threading.Thread(target=copy_half, args=(half,)) for half in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = max(end for _start, end in spans.values()) - min(s for s, _end in spans.values())
    return seconds, rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=None, help="orders per transaction")
    parser.add_argument(
        "--runners", type=int, default=2, help="processes working on the job, as Celery's would"
    )
    parser.add_argument(
        "--no-floor", action="store_true", help="skip COPYing the job's rows back (the floor)"
    )
    parser.add_argument("--profile", metavar="FILE", help="cProfile each runner into FILE.<pid>")
    args = parser.parse_args(argv)

    setup_django()
    from django.conf import settings
    from django.db import connection

    from cancellations import bulk, bulk_runner
    from cancellations.filter_parsing import parse_order_filter
    from cancellations.models import AuditEntry, Cancellation
    from providers.models import Delivery, ProviderSetting
    from reasons.models import CancellationReason

    if args.batch_size:
        settings.BULK_CANCELLATION_BATCH_SIZE = args.batch_size
    bulk_runner.kick_sweep = lambda: None  # enqueue only; delivering is bench/dispatch.py's

    empty_tables()
    for kind in ("callisto", "rebilly", "billing", "js7"):
        ProviderSetting.objects.update_or_create(
            kind=kind, defaults={"enabled": True, "base_url": f"http://{kind}.invalid"}
        )
    reason, _created = CancellationReason.objects.get_or_create(
        omnitron_id=990001,
        defaults={"subject": "Bench: outage", "cancellation_type": "cancel", "is_active": True},
    )

    started = time.perf_counter()
    write_orders(args.orders)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")  # the job plans its order query on fresh statistics
    setup_seconds = time.perf_counter() - started

    job = bulk.start_bulk_cancellation(
        parse_order_filter(
            {"folders": [{"folder": CHANNEL}], "dateFrom": "1d", "auditLog": {"comment": "bench"}}
        ),
        reason=reason,
        actor=None,
        via=AuditEntry.Via.SYSTEM,
    )
    print(f"load average       {_load()} (before the job)", flush=True)
    started = time.perf_counter()
    run_in_processes(job.pk, args.runners, args.profile)
    seconds = time.perf_counter() - started
    job.refresh_from_db()

    print(f"time               {seconds:.1f} s", flush=True)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")  # fresh statistics, or counting 400,000 rows takes minutes
    cancellations = Cancellation.objects.filter(bulk_cancellation=job).count()
    deliveries = Delivery.objects.filter(cancellation__bulk_cancellation=job)
    due = deliveries.filter(status="pending").count()
    print(f"database           {connection.vendor} {connection.settings_dict['NAME']}")
    print(f"orders written     {args.orders:,} in {setup_seconds:.1f} s (setup, not timed)")
    print(f"batch size         {settings.BULK_CANCELLATION_BATCH_SIZE}")
    print(f"runners            {args.runners} processes")
    print(
        f"job                {job.status}: {job.cancelled_count:,} cancelled, "
        f"{job.skipped_count:,} skipped, {job.failed_count:,} failed of {job.total:,}"
    )
    print(f"cancellations      {cancellations:,}")
    print(f"deliveries         {deliveries.count():,} written, {due:,} due")
    print(f"orders per second  {job.total / seconds:,.0f}")
    print(f"load average       {_load()} (after the job)")
    if connection.vendor == "postgresql" and not args.no_floor:
        floor_seconds, rows = copy_floor(job.pk)
        floor = job.total / floor_seconds
        print(
            f"COPY floor         {floor:,.0f} orders/s: the same {rows:,} inserted rows "
            f"COPYed back in {floor_seconds:.1f} s over 2 connections"
        )
        print(f"job / floor        {job.total / seconds / floor:.2f}")
        print(f"load average       {_load()} (after the floor)")


def _load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


if __name__ == "__main__":
    main()
