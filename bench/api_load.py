"""Requests per second of the API under gunicorn and PostgreSQL, against the framework's floor.

    .venv/bin/python bench/api_load.py                      # 20 s each, 50 connections
    .venv/bin/python bench/api_load.py --duration 60 --workers 9 --orders 50000
    .venv/bin/python bench/api_load.py --idempotency-keys   # every POST with its own key
    .venv/bin/python bench/api_load.py --no-providers       # no outbox rows, no Redis kicks

Needs PostgreSQL (DATABASE_URL, by default postgres://postgres@127.0.0.1:5432/storno_bench_api:
created if missing, migrated, emptied before each run), Redis (CELERY_BROKER_URL, by default
redis://127.0.0.1:6379/15; also CACHE_REDIS_URL, the cache the API throttles count in) and wrk
(`apt-get install -y wrk`; without it a Python thread load generator runs instead and says so;
it saturates sooner, so its figures are lower). gunicorn listens on BENCH_PORT, or on a free
loopback port when that is not set.

It writes `--orders` open orders with two items each, a reason and an API user with a DRF token
and the permissions of an API client, ANALYZEs those tables, then starts gunicorn
(backoffice.wsgi with bench.floor_settings: the project's settings plus /bench/floor/, DEBUG=0,
`--workers` sync workers, default 2 × cores + 1) and runs, each for `--duration` seconds with
`--connections` connections:

- floor:   GET /bench/floor/ — a DRF view with token auth and one query, nothing else (no model
           permission, no throttle): what the framework costs on this machine, in this run;
- reasons: GET /api/v1/oms/cancellation-reasons/?page_size=1 — the project's cheapest list:
           token auth, a model permission, the throttle, a count and a one-row page;
- orders:  GET /api/v1/orders/?limit=50 — the order list, first page;
- cancel:  POST /api/v1/order-cancellations/ {"orderId": <next order>, "reasonId": …}, a whole-
           order cancellation of a different order each time (completed at once).

It prints requests/s, p50 and p99 latency, the non-2xx responses and the database queries of
one request (counted in-process beforehand) of each, each endpoint's share of the floor
(issue #14 aims: cancel >= 0.3, reasons >= 0.6, cancel p99 < 150 ms at 50 connections) and the
load average, since another busy process on the machine lowers every figure. Callisto and
Rebilly are enabled (at an address nothing listens on; no worker runs), so each cancel writes
two Delivery rows and queues two Celery messages in Redis, deleted afterwards;
`--no-providers` disables every provider.

The API throttle rates are raised for the run (API_THROTTLE_*), so nothing is refused with 429;
the user throttle still counts every request in the Redis cache. Without `--idempotency-keys`
the Idempotency-Key middleware lets the requests through untouched. CONN_MAX_AGE is the
project's default (60: connections are kept) unless set in the environment or with
`--conn-max-age`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.support import ensure_database, env_port  # noqa: E402 - after the path is set

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/storno_bench_api"
DEFAULT_BROKER_URL = "redis://127.0.0.1:6379/15"
CHANNEL = "/bench/api"
FLOOR_PATH = "/bench/floor/"
REASONS_PATH = "/api/v1/oms/cancellation-reasons/?page_size=1"
ORDERS_PATH = "/api/v1/orders/?limit=50"
CANCEL_PATH = "/api/v1/order-cancellations/"
GETS = {"floor": FLOOR_PATH, "reasons": REASONS_PATH, "orders": ORDERS_PATH}
# Callisto refuses a cancellation without a Salesforce user (README, "Callisto's dates and users").
SALESFORCE_USER_ID = "005000000000001AAA"
API_PERMISSIONS = [
    "cancellations.view_order",
    "cancellations.view_cancellation",
    "cancellations.add_cancellation",
    "cancellations.cancel_order",
    "reasons.view_cancellationreason",
]
# High enough that no request of the run is throttled.
UNTHROTTLED = "1000000/s"

WRK_SCRIPT = r"""
-- Set by bench/api_load.py: method, path, token, and for the cancel run the order ids.
local method, path = "%(method)s", "%(path)s"
local first_id, order_count, reason_id = %(first_id)d, %(order_count)d, %(reason_id)d
local with_keys = %(with_keys)s
wrk.headers["Authorization"] = "Token %(token)s"
wrk.headers["Accept"] = "application/json"
if method == "POST" then wrk.headers["Content-Type"] = "application/json" end

local threads = {}
function setup(thread)
  thread:set("offset", #threads)
  table.insert(threads, thread)
end

function init(args)
  step = #args > 0 and tonumber(args[1]) or 1
  sent = 0
  statuses = {}
end

function request()
  if method ~= "POST" then return wrk.format(method, path) end
  -- Each thread takes every step-th order, so no two requests cancel the same order.
  local n = (offset + sent * step) %% order_count
  sent = sent + 1
  local headers = nil
  if with_keys then
    headers = {}
    for name, value in pairs(wrk.headers) do headers[name] = value end
    headers["Idempotency-Key"] = "bench-" .. offset .. "-" .. sent
  end
  local body = string.format('{"orderId": %%d, "reasonId": %%d}', first_id + n, reason_id)
  return wrk.format(method, path, headers, body)
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local counts = {}
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses")) do
      counts[status] = (counts[status] or 0) + count
    end
  end
  local parts = {}
  for status, count in pairs(counts) do
    table.insert(parts, string.format('"%%d": %%d', status, count))
  end
  local errors = summary.errors
  io.write(string.format(
    'RESULT {"requests": %%d, "seconds": %%f, "p50_us": %%f, "p99_us": %%f, '
    .. '"socket_errors": %%d, "statuses": {%%s}}\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50), latency:percentile(99),
    errors.connect + errors.read + errors.write + errors.timeout, table.concat(parts, ", ")))
end
"""


# --- database ------------------------------------------------------------------------------------


def server_environment(args, var_dir: str) -> dict[str, str]:
    """The environment of this process and of gunicorn: production settings on loopback."""
    broker_url = os.environ.get("CELERY_BROKER_URL", DEFAULT_BROKER_URL)
    # WhiteNoise warns in every worker about a missing STATIC_ROOT; the API serves no files.
    (Path(var_dir) / "static").mkdir()
    env = {
        "DATABASE_URL": os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL),
        "CELERY_BROKER_URL": broker_url,
        "CACHE_REDIS_URL": os.environ.get("CACHE_REDIS_URL", broker_url),
        "STORNO_VAR_DIR": var_dir,
        # The project's settings plus the floor endpoint (bench/floor_urls.py).
        "DJANGO_SETTINGS_MODULE": "bench.floor_settings",
        "SECRET_KEY": os.environ.get(
            "SECRET_KEY", "bench-secret-key-not-for-production-0123456789abcdef"
        ),
        "DEBUG": "0",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "0",
        "SESSION_COOKIE_SECURE": "0",
        "CSRF_COOKIE_SECURE": "0",
        "LOG_LEVEL": "WARNING",
        "API_THROTTLE_ANON": UNTHROTTLED,
        "API_THROTTLE_USER": UNTHROTTLED,
        "API_THROTTLE_BULK_CANCEL": UNTHROTTLED,
        "CALLISTO_DEFAULT_USER_ID": SALESFORCE_USER_ID,
    }
    if args.conn_max_age is not None:
        env["CONN_MAX_AGE"] = str(args.conn_max_age)
    os.environ.update(env)
    return {**os.environ}


def setup_django() -> None:
    if os.environ["DATABASE_URL"].startswith("postgres"):
        ensure_database(os.environ["DATABASE_URL"])
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def empty_tables() -> None:
    from django.apps import apps
    from django.db import connection

    models = [
        *apps.get_app_config("cancellations").get_models(),
        *apps.get_app_config("providers").get_models(),
        apps.get_model("backoffice", "IdempotencyKey"),
    ]
    tables = [model._meta.db_table for model in models if model._meta.managed]
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")


def write_orders(count: int, *, with_references: bool) -> tuple[int, int]:
    """`count` open orders with two items each; (first id, last id), consecutive."""
    from datetime import timedelta
    from decimal import Decimal

    from django.utils import timezone

    from cancellations.models import Order, OrderItem

    now = timezone.now()
    first_id = last_id = None
    chunk = 5000
    for start in range(0, count, chunk):
        orders = Order.objects.bulk_create(
            Order(
                number=f"API-{n:07d}",
                customer_name=f"Customer {n}",
                customer_email=f"c{n}@example.com",
                channel=CHANNEL,
                placed_at=now - timedelta(seconds=1 + n),
                currency="EUR",
                external_ids={"callisto": str(100000 + n), "rebilly": f"ord_api_{n}"}
                if with_references
                else {},
            )
            for n in range(start, min(start + chunk, count))
        )
        OrderItem.objects.bulk_create(
            OrderItem(
                order=order,
                sku=sku,
                quantity=quantity,
                unit_price_amount=Decimal("19.90"),
                unit_price_currency="EUR",
            )
            for order in orders
            for sku, quantity in (("PLAN", 1), ("ADDON", 2))
        )
        first_id = first_id or orders[0].pk
        last_id = orders[-1].pk
    assert last_id - first_id + 1 == count, "order ids are not consecutive"
    return first_id, last_id


def analyze() -> None:
    """Fresh planner statistics for what the run wrote, as autovacuum would give them later."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def set_providers(enabled: bool) -> None:
    from providers.models import ProviderSetting
    from providers.outbox import ensure_provider_settings

    ensure_provider_settings()
    ProviderSetting.objects.update(enabled=False)
    if enabled:
        # Nothing listens on port 9 and no worker runs: the rows and kicks are written, no
        # request is sent.
        ProviderSetting.objects.filter(kind__in=["callisto", "rebilly"]).update(
            enabled=True, base_url="http://127.0.0.1:9"
        )


def api_user_token() -> str:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission
    from rest_framework.authtoken.models import Token

    user, _created = get_user_model().objects.get_or_create(username="bench-api")
    permissions = []
    for name in API_PERMISSIONS:
        app_label, codename = name.split(".")
        permissions.append(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    user.user_permissions.set(permissions)
    token, _created = Token.objects.get_or_create(user=user)
    return token.key


def bench_reason() -> int:
    from reasons.models import CancellationReason

    reason, _created = CancellationReason.objects.get_or_create(
        omnitron_id=990002,
        defaults={"subject": "Bench: API load", "cancellation_type": "cancel", "is_active": True},
    )
    return reason.pk


def drop_queued_kicks(broker_url: str) -> None:
    """The cancellations queued deliver_one messages nobody will consume."""
    import redis

    redis.Redis.from_url(broker_url).delete("celery")


def count_queries(token: str, reason_id: int, order_id: int, with_key: bool) -> dict[str, int]:
    """The database queries of one request of each kind, through the same middleware and views
    (Django's test Client in this process). The GETs are asked twice and counted the second
    time, as a busy worker serves them (the user's permissions kept)."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(HTTP_AUTHORIZATION=f"Token {token}", HTTP_HOST="127.0.0.1")
    headers = {"Idempotency-Key": "bench-count"} if with_key else {}
    requests = {kind: (lambda path=path: client.get(path)) for kind, path in GETS.items()}
    requests["cancel"] = lambda: client.post(
        CANCEL_PATH,
        json.dumps({"orderId": order_id, "reasonId": reason_id}),
        content_type="application/json",
        headers=headers,
    )
    counts = {}
    for kind, request in requests.items():
        if kind != "cancel":
            request()
        with CaptureQueriesContext(connection) as captured:
            response = request()
            counts[kind] = len(captured.captured_queries)
        if response.status_code >= 300:
            raise SystemExit(f"{kind}: {response.status_code} {response.content[:300]!r}")
    return counts


# --- gunicorn ------------------------------------------------------------------------------------


def server_port() -> int:
    """BENCH_PORT, or a free loopback port."""
    port = env_port("BENCH_PORT")
    if port:
        return port
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_gunicorn(env: dict, port: int, workers: int) -> subprocess.Popen:
    command = [
        # The gunicorn of the virtualenv running this script.
        str(Path(sys.executable).parent / "gunicorn"),
        "backoffice.wsgi",
        f"--workers={workers}",
        f"--bind=127.0.0.1:{port}",
        "--backlog=2048",
        "--log-level=warning",
    ]
    # Its own process group: stopping it never touches anything else.
    return subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True)


def wait_until_up(url: str, token: str, server: subprocess.Popen, seconds: float = 60) -> None:
    import requests

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"gunicorn exited with {server.returncode}")
        try:
            response = requests.get(url, headers={"Authorization": f"Token {token}"}, timeout=30)
        except (requests.ConnectionError, requests.Timeout):
            time.sleep(0.2)
            continue
        if response.status_code != 200:
            raise SystemExit(f"{url} answered {response.status_code}: {response.text[:300]}")
        return
    raise SystemExit(f"gunicorn did not answer {url} within {seconds:.0f} s")


def stop(server: subprocess.Popen) -> None:
    if server.poll() is None:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


# --- load generators -----------------------------------------------------------------------------


def run_wrk(base_url, *, method, path, token, orders, reason_id, with_keys, args) -> dict:
    first_id, order_count = orders
    script = WRK_SCRIPT % {
        "method": method,
        "path": path,
        "token": token,
        "first_id": first_id,
        "order_count": max(order_count, 1),
        "reason_id": reason_id,
        "with_keys": "true" if with_keys else "false",
    }
    with tempfile.NamedTemporaryFile("w", suffix=".lua", prefix="storno-bench-") as lua:
        lua.write(script)
        lua.flush()
        command = [
            "wrk",
            f"--threads={args.threads}",
            f"--connections={args.connections}",
            f"--duration={args.duration}s",
            "--timeout=30s",
            f"--script={lua.name}",
            base_url,
            "--",
            str(args.threads),
        ]
        output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    line = next(line for line in output.splitlines() if line.startswith("RESULT "))
    result = json.loads(line.removeprefix("RESULT "))
    return {
        "requests": result["requests"],
        "rps": result["requests"] / result["seconds"],
        "p50_ms": result["p50_us"] / 1000,
        "p99_ms": result["p99_us"] / 1000,
        "statuses": {int(status): count for status, count in result["statuses"].items()},
        "socket_errors": result["socket_errors"],
    }


def run_threads(base_url, *, method, path, token, orders, reason_id, with_keys, args) -> dict:
    """Fallback without wrk: one thread per connection, each with its own keep-alive session."""
    import requests

    first_id, order_count = orders
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    socket_errors = [0]
    lock = threading.Lock()
    deadline = time.monotonic() + args.duration

    def connection(offset: int) -> None:
        session = requests.Session()
        session.headers.update({"Authorization": f"Token {token}", "Accept": "application/json"})
        mine, codes, sent = [], {}, 0
        while time.monotonic() < deadline:
            kwargs = {}
            if method == "POST":
                order_id = first_id + (offset + sent * args.connections) % max(order_count, 1)
                kwargs["json"] = {"orderId": order_id, "reasonId": reason_id}
                if with_keys:
                    kwargs["headers"] = {"Idempotency-Key": f"bench-{offset}-{sent}"}
            sent += 1
            started = time.perf_counter()
            try:
                response = session.request(method, base_url + path, timeout=30, **kwargs)
            except requests.RequestException:
                with lock:
                    socket_errors[0] += 1
                continue
            mine.append(time.perf_counter() - started)
            codes[response.status_code] = codes.get(response.status_code, 0) + 1
        with lock:
            latencies.extend(mine)
            for code, count in codes.items():
                statuses[code] = statuses.get(code, 0) + count

    started = time.perf_counter()
    workers = [threading.Thread(target=connection, args=(n,)) for n in range(args.connections)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    seconds = time.perf_counter() - started
    cuts = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0.0] * 99
    return {
        "requests": len(latencies),
        "rps": len(latencies) / seconds,
        "p50_ms": cuts[49] * 1000,
        "p99_ms": cuts[98] * 1000,
        "statuses": statuses,
        "socket_errors": socket_errors[0],
    }


# --- main ----------------------------------------------------------------------------------------


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=30_000, help="more than the run can cancel")
    parser.add_argument("--duration", type=int, default=20, help="seconds per endpoint")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="wrk threads")
    parser.add_argument("--workers", type=int, default=2 * (os.cpu_count() or 1) + 1)
    parser.add_argument("--conn-max-age", type=int, default=None, help="CONN_MAX_AGE for gunicorn")
    parser.add_argument(
        "--no-providers", dest="providers", action="store_false", help="disable every provider"
    )
    parser.add_argument("--idempotency-keys", action="store_true", help="a new key per POST")
    parser.add_argument(
        "--endpoints",
        type=lambda value: {"floor", *value.split(",")},
        default={"floor", *GETS, "cancel"},
        help="which to run, comma-separated (floor always): reasons,orders,cancel",
    )
    args = parser.parse_args(argv)

    use_wrk = shutil.which("wrk") is not None
    if not use_wrk:
        print(
            "wrk is not installed (Debian: apt-get install -y wrk): using the Python thread "
            "load generator, which saturates sooner; its figures are lower than wrk's."
        )
    var_dir = tempfile.TemporaryDirectory(prefix="storno-bench-api-")
    env = server_environment(args, var_dir.name)
    setup_django()
    from django.db import connection, connections

    from cancellations.models import Cancellation
    from providers.models import Delivery

    started = time.perf_counter()
    empty_tables()
    set_providers(args.providers)
    first_id, last_id = write_orders(args.orders, with_references=args.providers)
    reason_id = bench_reason()
    token = api_user_token()
    analyze()
    setup_seconds = time.perf_counter() - started
    # The last order is cancelled here, in-process, to count the queries; wrk gets the others.
    queries = count_queries(token, reason_id, last_id, args.idempotency_keys)
    last_id -= 1
    database = f"{connection.vendor} {connection.settings_dict['NAME']}"
    conn_max_age = connection.settings_dict["CONN_MAX_AGE"]
    connections.close_all()

    port = server_port()
    base_url = f"http://127.0.0.1:{port}"
    server = start_gunicorn(env, port, args.workers)
    load = run_wrk if use_wrk else run_threads
    results = {}
    load_averages = [os.getloadavg()]
    try:
        wait_until_up(base_url + FLOOR_PATH, token, server)
        common = {"token": token, "reason_id": reason_id, "with_keys": False}
        # Every worker imports and connects before anything is measured.
        warm_up = argparse.Namespace(**{**vars(args), "duration": 3})
        load(base_url, method="GET", path=REASONS_PATH, orders=(0, 0), args=warm_up, **common)
        for kind, path in GETS.items():
            if kind not in args.endpoints:
                continue
            results[kind] = load(
                base_url, method="GET", path=path, orders=(0, 0), args=args, **common
            )
            load_averages.append(os.getloadavg())
        results["cancel"] = (
            None
            if "cancel" not in args.endpoints
            else load(
                base_url,
                method="POST",
                path=CANCEL_PATH,
                orders=(first_id, last_id - first_id + 1),
                args=args,
                **{**common, "with_keys": args.idempotency_keys},
            )
        )
        load_averages.append(os.getloadavg())
    finally:
        stop(server)
        var_dir.cleanup()
    if args.providers:
        drop_queued_kicks(env["CELERY_BROKER_URL"])

    report(args, results, queries, use_wrk=use_wrk, load_averages=load_averages)
    print(f"database           {database}, CONN_MAX_AGE {conn_max_age}")
    print(f"setup              {args.orders:,} orders with 2 items in {setup_seconds:.1f} s")
    print(
        f"cancellations      {Cancellation.objects.count():,} written, "
        f"{Delivery.objects.count():,} deliveries"
    )
    if results.get("cancel") and results["cancel"]["requests"] > args.orders:
        sent = results["cancel"]["requests"]
        print(f"note               more requests than orders: raise --orders past {sent}")


def report(args, results, queries, *, use_wrk, load_averages) -> None:
    print(
        f"server             gunicorn, {args.workers} sync workers, {os.cpu_count()} cores; "
        f"load: {'wrk' if use_wrk else 'Python threads'}, {args.connections} connections, "
        f"{args.duration} s each, same machine"
    )
    print(
        f"providers          {'Callisto and Rebilly enabled' if args.providers else 'disabled'}"
        f"; Idempotency-Key {'on every POST' if args.idempotency_keys else 'not sent'}"
    )
    averages = ", ".join("/".join(f"{value:.1f}" for value in three) for three in load_averages)
    print(f"load average       {averages} (1/5/15 min: before, after each endpoint)")
    print()
    print(
        f"{'endpoint':<56} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8} "
        f"{'queries':>8} {'/floor':>7}"
    )
    floor = results["floor"]["rps"]
    results = {kind: result for kind, result in results.items() if result is not None}
    for kind, result in results.items():
        path = GETS.get(kind, CANCEL_PATH)
        label = f"{kind:<8}{'POST' if kind == 'cancel' else 'GET'} {path}"
        non_2xx = sum(count for status, count in result["statuses"].items() if status >= 300)
        print(
            f"{label:<56} {result['rps']:8.1f} {result['p50_ms']:8.1f} {result['p99_ms']:8.1f} "
            f"{non_2xx:8d} {queries[kind]:8d} {result['rps'] / floor:7.2f}"
        )
        odd = {status: count for status, count in result["statuses"].items() if status >= 300}
        if odd or result["socket_errors"]:
            print(
                f"  statuses {dict(sorted(odd.items()))}, socket errors {result['socket_errors']}"
            )
    print()
    aims = []
    if "cancel" in results:
        cancel = results["cancel"]
        aims.append(f"cancel/floor {cancel['rps'] / floor:.2f} (>= 0.3)")
        aims.append(f"cancel p99 {cancel['p99_ms']:.0f} ms (< 150)")
    if "reasons" in results:
        aims.append(f"reasons/floor {results['reasons']['rps'] / floor:.2f} (>= 0.6)")
    print(f"issue #14 aims     {', '.join(aims)}")


if __name__ == "__main__":
    main()
