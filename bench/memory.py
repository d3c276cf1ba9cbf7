"""Resident memory (RSS) of a gunicorn web worker and of a Celery worker after some work.

    .venv/bin/python bench/memory.py                      # 300 cancellations, prefork worker
    .venv/bin/python bench/memory.py --requests 2000 --pool solo

Needs PostgreSQL (DATABASE_URL, by default postgres://postgres@127.0.0.1:5432/storno_bench_memory:
created if missing, migrated, emptied) and Redis (CELERY_BROKER_URL, by default
redis://127.0.0.1:6379/15, also the cache; its `celery` queue is emptied first).

Web: gunicorn (backoffice.wsgi, DEBUG=0, one sync worker) on BENCH_PORT or a free loopback port
serves `--requests` API requests over token auth, a mix of whole-order cancellations, order and
cancellation lists and the reason catalog; then the worker's VmRSS and VmHWM (peak) are read
from /proc/<pid>/status. Worker: `celery -A backoffice worker --pool <pool> --concurrency 1`
delivers what those cancellations enqueued (two deliveries each, Callisto and Rebilly, the strict
fakes on loopback in this process); once all are delivered the same figures are read for the
worker's main process and, with prefork, its child, which ran the tasks. The figures are MiB.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import api_load  # bench/api_load.py: the same setup, gunicorn and environment

from bench.support import env_port  # api_load put the repository on the path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/storno_bench_memory"


def status_mib(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM of a process, in MiB."""
    figures = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _colon, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            figures[name] = int(value.split()[0]) / 1024  # kB
    return figures


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid …; comm may hold spaces and parentheses.
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return sorted(found)


def wait_for_children(pid: int, count: int, seconds: float = 60) -> list[int]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = children(pid)
        if len(found) >= count:
            return found
        time.sleep(0.2)
    raise SystemExit(f"process {pid} has no {count} child process(es) after {seconds:.0f} s")


def warm_web(base_url: str, token: str, order_ids: list[int], reason_id: int, requests_: int):
    """A mix of what API clients do; every fourth request cancels the next order."""
    import requests

    session = requests.Session()
    session.headers["Authorization"] = f"Token {token}"
    reads = [
        api_load.REASONS_PATH,
        "/api/v1/orders/?limit=50",
        "/api/v1/order-cancellations/?limit=50",
    ]
    orders = iter(order_ids)
    for n in range(requests_):
        if n % 4 == 0:
            response = session.post(
                base_url + api_load.CANCEL_PATH,
                # Callisto needs the Salesforce user id of whoever asked.
                json={
                    "orderId": next(orders),
                    "reasonId": reason_id,
                    "externalUserId": "005000000000001AAA",
                },
                timeout=60,
            )
        else:
            response = session.get(base_url + reads[n % 3], timeout=60)
        if response.status_code >= 300:
            raise SystemExit(f"{response.request.method} {response.url}: {response.status_code}")


def start_celery(env: dict, pool: str) -> subprocess.Popen:
    command = [
        str(Path(sys.executable).parent / "celery"),  # this virtualenv's
        "--quiet",
        "-A",
        "backoffice",
        "worker",
        f"--pool={pool}",
        "--concurrency=1",
        "--loglevel=WARNING",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
        "-Q",
        "delivery,bulk,sync,default",  # every queue of settings.CELERY_TASK_ROUTES
    ]
    # Its banner and shutdown lines on stdout would cut into the figures; errors go to stderr.
    return subprocess.Popen(
        command, cwd=ROOT, env=env, start_new_session=True, stdout=subprocess.DEVNULL
    )


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1200, help="web requests (1 in 4 cancels)")
    parser.add_argument("--pool", choices=["prefork", "solo"], default="prefork")
    args = parser.parse_args(argv)

    os.environ.setdefault("DATABASE_URL", DEFAULT_DATABASE_URL)
    var_dir = tempfile.TemporaryDirectory(prefix="storno-bench-memory-")
    env_args = argparse.Namespace(conn_max_age=None)
    api_load.server_environment(env_args, var_dir.name)
    api_load.setup_django()
    import redis
    from django.db import connections

    from providers.fakes.callisto import CallistoFake
    from providers.fakes.rebilly import RebillyFake
    from providers.models import Delivery, ProviderSetting

    cancellations = (args.requests + 3) // 4
    api_load.empty_tables()
    api_load.set_providers(False)
    first_id, last_id = api_load.write_orders(cancellations, with_references=True)
    reason_id = api_load.bench_reason()
    token = api_load.api_user_token()
    api_load.analyze()
    redis.Redis.from_url(os.environ["CELERY_BROKER_URL"]).delete("celery")

    rebilly_orders = [f"ord_api_{n}" for n in range(cancellations)]  # api_load.write_orders
    # api_load.write_orders gives order n the Callisto id 100000 + n.
    known = range(100000, 100000 + cancellations)
    with (
        CallistoFake(known_ids=known, port=env_port("BENCH_CALLISTO_PORT")) as callisto,
        RebillyFake(orders=rebilly_orders, port=env_port("BENCH_REBILLY_PORT")) as rebilly,
    ):
        os.environ.update(
            CALLISTO_USERNAME=callisto.username,
            CALLISTO_PASSWORD=callisto.password,
            REBILLY_API_KEY=rebilly.api_key,
        )
        ProviderSetting.objects.filter(kind="callisto").update(enabled=True, base_url=callisto.url)
        ProviderSetting.objects.filter(kind="rebilly").update(
            enabled=True, base_url=rebilly.base_url
        )
        connections.close_all()
        env = {**os.environ}

        port = api_load.server_port()
        base_url = f"http://127.0.0.1:{port}"
        web = api_load.start_gunicorn(env, port, workers=1)
        worker = None
        try:
            api_load.wait_until_up(base_url + api_load.REASONS_PATH, token, web)
            (web_worker,) = wait_for_children(web.pid, 1)
            web_fresh = status_mib(web_worker)
            started = time.perf_counter()
            warm_web(base_url, token, list(range(first_id, last_id + 1)), reason_id, args.requests)
            web_seconds = time.perf_counter() - started
            web_warm = status_mib(web_worker)
            web_master = status_mib(web.pid)

            worker = start_celery(env, args.pool)
            deliveries = Delivery.objects.count()
            started = time.perf_counter()
            deadline = time.monotonic() + 600
            unsettled = Delivery.objects.filter(status__in=["pending", "in_flight"])
            while unsettled.exists():
                if worker.poll() is not None:
                    raise SystemExit(f"the Celery worker exited with {worker.returncode}")
                if time.monotonic() > deadline:
                    raise SystemExit("the deliveries were not settled within 10 minutes")
                time.sleep(0.5)
            worker_seconds = time.perf_counter() - started
            delivered = Delivery.objects.filter(status="delivered").count()
            worker_main = status_mib(worker.pid)
            pool = [(pid, status_mib(pid)) for pid in children(worker.pid)]
        finally:
            if worker is not None:
                stop(worker)
            api_load.stop(web)
            var_dir.cleanup()

    def row(label, figures):
        print(f"{label:<44} {figures['VmRSS']:8.1f} {figures['VmHWM']:8.1f}")

    print(f"web                {args.requests} API requests in {web_seconds:.1f} s (1 worker)")
    print(
        f"celery             {delivered} of {deliveries} deliveries delivered in "
        f"{worker_seconds:.1f} s (--pool {args.pool})"
    )
    print()
    print(f"{'process':<44} {'RSS MiB':>8} {'peak MiB':>8}")
    row("gunicorn worker, fresh (after one request)", web_fresh)
    row(f"gunicorn worker, after {args.requests} requests", web_warm)
    row("gunicorn master", web_master)
    row("celery worker, main process", worker_main)
    for pid, figures in pool:
        row(f"celery worker, pool process {pid}", figures)


if __name__ == "__main__":
    main()
