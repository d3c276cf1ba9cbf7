"""Deliveries per second through the dispatcher, against the strict fakes on loopback, beside
the floor: the same HTTP calls replayed over one plain keep-alive requests.Session.

    .venv/bin/python bench/dispatch.py                   # 1000 cancellations → 2000 deliveries
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/storno_bench_dispatch \\
        .venv/bin/python bench/dispatch.py --workers 2
    … --batch-size 100 --profile                         # cProfile of one worker's sweep

Without DATABASE_URL it uses a fresh SQLite file in a temporary folder (one worker). On
PostgreSQL it creates the database if missing and reruns on it: it empties the outbox and the
Callisto/Rebilly settings, writes new orders and cancellations (numbers and provider ids made
unique by the run's start time) and ANALYZEs the tables it wrote. The fakes listen on
BENCH_CALLISTO_PORT and BENCH_REBILLY_PORT (0, any free port, by default).

Then `--workers` processes (forked, as Celery's prefork pool) each run the sweep
(providers.dispatch.deliver_due: claim a batch, send it, record it) until nothing is due. The
floor replays the requests the fakes received, in the same order, with the same headers and
bodies, over one requests.Session in one loop. The load average is printed beside both.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.support import ensure_database  # noqa: E402 - after the path is set

SALESFORCE_USER = "005000000000001AAA"
WRITTEN_TABLES = [
    "cancellations_order",
    "cancellations_orderitem",
    "cancellations_cancellation",
    "cancellations_cancellationitem",
    "cancellations_cancellationline",
    "cancellations_auditentry",
    "providers_delivery",
    "providers_deliveryattempt",
]


def setup_django(var_dir: str) -> None:
    url = os.environ.get("DATABASE_URL", "")
    if url.startswith("postgres"):
        ensure_database(url)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backoffice.settings")
    os.environ.setdefault("SECRET_KEY", "bench-secret-key-not-for-production-0123456789abcdef")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ["STORNO_VAR_DIR"] = var_dir
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000, help="cancellations (× 2 providers)")
    parser.add_argument("--workers", type=int, default=2, help="dispatcher processes")
    parser.add_argument("--batch-size", type=int, default=0, help="DELIVERY_BATCH_SIZE")
    parser.add_argument("--profile", action="store_true", help="cProfile one worker's sweep")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="storno-bench-") as var_dir:
        setup_django(var_dir)
        run(args)


def port(name: str) -> int:
    return int(os.environ.get(name, "0") or 0)


def run(args) -> None:
    from django.db import connection

    from providers.fakes.callisto import CallistoFake
    from providers.fakes.rebilly import RebillyFake

    workers = args.workers if connection.vendor == "postgresql" else 1
    offset = int(time.time())
    known = range(offset, offset + args.count)  # the Callisto ids of the orders made below
    with (
        CallistoFake(known_ids=known, port=port("BENCH_CALLISTO_PORT")) as callisto,
        RebillyFake(port=port("BENCH_REBILLY_PORT")) as rebilly,
    ):
        due = prepare(args.count, offset, callisto, rebilly)
        analyze()
        callisto.requests.clear()
        rebilly.requests.clear()
        fakes_before = time.process_time()  # this process only serves the fakes meanwhile
        elapsed, cpu = sweep(workers, args.batch_size, args.profile)
        fakes_cpu = time.process_time() - fakes_before
        load_dispatch = os.getloadavg()[0]
        check_all_delivered(due)
        calls = [(callisto.url, r) for r in callisto.requests] + [
            (rebilly.url, r) for r in rebilly.requests
        ]
        floor, floor_cpu = replay(calls)
        floor_here = replay_here(calls)
        load_floor = os.getloadavg()[0]

    rate = due / elapsed
    floor_rate, floor_here_rate = len(calls) / floor, len(calls) / floor_here
    print(
        f"dispatcher: {due} deliveries in {elapsed:.2f} s = {rate:.0f} deliveries/s "
        f"({workers} process(es), batch {args.batch_size or 'default'}, {connection.vendor}, "
        f"{len(calls)} HTTP calls; {cpu / due * 1000:.2f} ms of worker CPU per delivery; "
        f"load average {load_dispatch:.2f})"
    )
    print(
        f"floor:      {len(calls)} calls in {floor:.2f} s = {floor_rate:.0f} calls/s over one "
        f"keep-alive requests.Session in one process ({floor_cpu / len(calls) * 1000:.2f} ms "
        f"of client CPU per call; load average {load_floor:.2f})"
    )
    print(
        f"            {floor_here_rate:.0f} calls/s from the fakes' own process; the fakes used "
        f"{fakes_cpu / len(calls) * 1000:.2f} ms of CPU per call during the dispatcher's run"
    )
    print(f"dispatcher / floor = {rate / max(floor_rate, floor_here_rate):.2f} (the faster floor)")


def prepare(count: int, offset: int, callisto, rebilly) -> int:
    """Write `count` cancellations owing a delivery to each fake. Returns how many are due."""
    from django.db import connection

    from cancellations.models import AuditEntry
    from cancellations.services import writing
    from providers import outbox
    from providers.models import Delivery, ProviderSetting
    from reasons.models import CancellationReason
    from tests.factories import CancellationReasonFactory, OrderFactory, OrderItemFactory

    if connection.vendor != "sqlite":
        Delivery.objects.all().delete()  # a shared database: start from an empty outbox
    ProviderSetting.objects.filter(kind__in=["callisto", "rebilly"]).delete()
    os.environ.update(
        CALLISTO_USERNAME=callisto.username,
        CALLISTO_PASSWORD=callisto.password,
        REBILLY_API_KEY=rebilly.api_key,
    )
    ProviderSetting.objects.create(kind="callisto", base_url=callisto.url)
    ProviderSetting.objects.create(kind="rebilly", base_url=rebilly.base_url)

    outbox.kick = lambda ids: None  # measure the dispatcher alone, not the broker
    # A local reason (no Omnitron id), reused by every run on the same database.
    reason = CancellationReason.objects.filter(
        omnitron_id=None, subject="Bench: dispatch"
    ).first() or CancellationReasonFactory(omnitron_id=None, subject="Bench: dispatch")
    for n in range(count):
        order = OrderFactory(
            number=f"BENCH-D-{offset}-{n}",
            external_ids={"callisto": str(offset + n), "rebilly": f"ord_{offset}_{n}"},
        )
        OrderItemFactory(order=order)
        rebilly.add_orders([order.external_ids["rebilly"]])
        writing.cancel_order(
            order,
            reason=reason,
            actor=None,
            via=AuditEntry.Via.API,
            external_user_id=SALESFORCE_USER,
        )
    return Delivery.objects.filter(status="pending").count()


def analyze() -> None:
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {', '.join(WRITTEN_TABLES)}")


def sweep(workers: int, batch_size: int, profile: bool) -> tuple[float, float]:
    """Run the sweep in `workers` forked processes at once. Returns the seconds until all are
    done and the CPU seconds they used."""
    return in_processes(
        [(_worker, (batch_size, profile and n == 0)) for n in range(workers)], "dispatcher"
    )


def in_processes(jobs, what: str) -> tuple[float, float]:
    """Run each (function, args) in a forked process, all started at once: the wall seconds
    until all are done, and the CPU seconds they used together (each function returns its)."""
    from django.db import connections

    connections.close_all()  # no forked child may share the parent's connection
    context = multiprocessing.get_context("fork")
    start, ready, cpu = context.Event(), context.Semaphore(0), context.Queue()
    processes = [
        context.Process(target=_child, args=(start, ready, cpu, function, args))
        for function, args in jobs
    ]
    for process in processes:
        process.start()
    for _ in processes:
        ready.acquire()
    started = time.perf_counter()
    start.set()
    used = sum(cpu.get() for _ in processes)
    for process in processes:
        process.join()
    elapsed = time.perf_counter() - started
    failed = [process.exitcode for process in processes if process.exitcode]
    if failed:
        raise SystemExit(f"a {what} process failed: exit codes {failed}")
    return elapsed, used


def _child(start, ready, cpu, function, args) -> None:
    from django.db import connection

    connection.ensure_connection()
    ready.release()
    start.wait()
    before = time.process_time()
    try:
        function(*args)
    finally:
        cpu.put(time.process_time() - before)


def _worker(batch_size: int, profile: bool) -> None:
    from providers import dispatch

    size = batch_size or None
    if not profile:
        dispatch.deliver_due(size=size, budget_seconds=3600)
        return
    import cProfile
    import pstats

    profiler = cProfile.Profile(time.process_time)  # CPU time: the machine may be busy
    profiler.runcall(dispatch.deliver_due, size=size, budget_seconds=3600)
    stats = pstats.Stats(profiler, stream=sys.stderr)
    stats.sort_stats("cumulative").print_stats(35)
    stats.sort_stats("tottime").print_stats(25)
    if os.environ.get("BENCH_PROFILE_CALLERS"):
        stats.print_callers(os.environ["BENCH_PROFILE_CALLERS"])


def check_all_delivered(due: int) -> None:
    from providers.models import Delivery

    delivered = Delivery.objects.filter(status="delivered").count()
    if delivered != due:
        raise SystemExit(f"{delivered} of {due} deliveries were delivered")


HOP_BY_HOP = {"host", "content-length", "connection", "accept-encoding"}


def replay(calls) -> tuple[float, float]:
    """The same requests over one plain keep-alive session, one after another, in one forked
    process: its wall and CPU seconds."""
    return in_processes([(_replay, (prepare_calls(calls),))], "replay")


def prepare_calls(calls) -> list:
    return [
        (
            request.method,
            base_url + request.path,
            {k: v for k, v in request.headers.items() if k not in HOP_BY_HOP},
            request.body or None,
        )
        for base_url, request in calls
    ]


def replay_here(calls) -> float:
    """The same replay from this process, where the fakes run: seconds."""
    started = time.perf_counter()
    _replay(prepare_calls(calls))
    return time.perf_counter() - started


def _replay(prepared) -> None:
    import requests

    with requests.Session() as session:
        for method, url, headers, body in prepared:
            response = session.request(method, url, headers=headers, data=body, timeout=10)
            if response.status_code >= 300:
                raise SystemExit(f"the replay got HTTP {response.status_code} for {method} {url}")


if __name__ == "__main__":
    main()
