"""p95 time and query count of the staff order pages and the API lists with 1,000,000 orders.

    .venv/bin/python bench/pages.py                       # 1,000,000 orders, 100,000 cancelled
    .venv/bin/python bench/pages.py --orders 200000 --cancellations 20000 --requests 20
    .venv/bin/python bench/pages.py --refill              # write the data again

Uses DATABASE_URL, by default postgres://postgres@127.0.0.1:5432/storno_bench_pages (created if
missing, migrated). The data is written with INSERT … SELECT from generate_series (a minute or
two for a million orders) and kept: a re-run with the same --orders and --cancellations reuses
it. Orders: two items each, twelve channels, one placed every minute going back about two years.
Every tenth order (up to --cancellations) is cancelled: a completed whole-order cancellation
with its items, one delivered Callisto delivery and one audit entry.

Each page is requested --requests times in-process with Django's test Client, logged in as a
superuser (DEBUG off; templates, middleware and the database as in production, no HTTP server),
after one unmeasured request. It prints p50 and p95 in ms and the queries of one request, and
flags p95 above 300 ms.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.support import ensure_database  # noqa: E402 - after the path is set

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/storno_bench_pages"
CHANNELS = [
    "/shop/de",
    "/shop/at",
    "/shop/ch",
    "/shop/tr",
    "/shop/en",
    "/b2b/de",
    "/b2b/at",
    "/partner/de/reseller-1",
    "/partner/de/reseller-2",
    "/partner/tr/reseller-3",
    "/app/ios",
    "/app/android",
]
SLOW_MS = 300


def setup_django() -> None:
    url = os.environ.setdefault("DATABASE_URL", DEFAULT_DATABASE_URL)
    if not url.startswith("postgres"):
        raise SystemExit("bench/pages.py fills the tables with PostgreSQL's generate_series.")
    ensure_database(url)
    # The test settings: the production settings with DEBUG off and plain static files (no
    # collectstatic needed); the API throttles must not refuse the measured requests.
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    for name in ("API_THROTTLE_ANON", "API_THROTTLE_USER", "API_THROTTLE_BULK_CANCEL"):
        os.environ.setdefault(name, "1000000/s")
    # WhiteNoise warns that STATIC_ROOT is missing; the pages don't need collected files.
    warnings.filterwarnings("ignore", message="No directory at")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


# --- data ----------------------------------------------------------------------------------------


def insert_select(model, expressions: dict[str, str], source: str, params=()) -> int:
    """INSERT INTO the model's table SELECT … FROM `source`: `expressions` are SQL for the named
    fields; every other column gets its field's default (NULL when it has none and may be
    null), so a new field with a default doesn't break the bench. Returns the rows written."""
    from django.db import connection

    columns, selects, values = [], [], []
    for field in model._meta.concrete_fields:
        if field.primary_key and field.name not in expressions:
            continue  # an auto id
        columns.append(connection.ops.quote_name(field.column))
        if field.name in expressions:
            selects.append(expressions[field.name])
        elif getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
            selects.append("now()")
        elif field.has_default() or (field.empty_strings_allowed and not field.null):
            selects.append("%s")  # its default, or "" for a text field without one
            values.append(field.get_db_prep_save(field.get_default(), connection))
        elif field.null:
            selects.append("NULL")
        else:
            raise SystemExit(f"bench/pages.py: no value for {model.__name__}.{field.name}")
    table = connection.ops.quote_name(model._meta.db_table)
    # Our own table, column and expression text; values go as parameters.
    sql = f"INSERT INTO {table} ({', '.join(columns)}) SELECT {', '.join(selects)} FROM {source}"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, [*values, *params])
        return cursor.rowcount


def fill(order_count: int, cancellation_count: int, reason_id: int) -> None:
    from django.apps import apps
    from django.db import connection, transaction

    from cancellations.models import AuditEntry, Cancellation, CancellationItem, Order, OrderItem
    from providers.models import Delivery

    tables = [
        model._meta.db_table
        for model in (
            *apps.get_app_config("cancellations").get_models(),
            *apps.get_app_config("providers").get_models(),
        )
        if model._meta.managed and not model._meta.proxy
    ]
    every = max(order_count // max(cancellation_count, 1), 1)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
        channels = "ARRAY[" + ", ".join(f"'{channel}'" for channel in CHANNELS) + "]"
        cancelled = f"(n %% {every} = 0 AND n / {every} <= {cancellation_count})"
        started = time.perf_counter()
        insert_select(
            Order,
            {
                "number": "'P' || lpad(n::text, 8, '0')",
                "customer_name": "'Customer ' || n",
                "customer_email": "'customer' || n || '@example.com'",
                "channel": f"({channels})[1 + n %% {len(CHANNELS)}]",
                "status": f"CASE WHEN {cancelled} THEN 'cancelled' ELSE 'open' END",
                "placed_at": "now() - n * interval '1 minute'",
                "currency": "'EUR'",
                "external_ids": "jsonb_build_object('callisto', (100000 + n)::text, "
                "'rebilly', 'ord_' || n)",
            },
            "generate_series(1, %s) AS g(n)",
            [order_count],
        )
        print(f"  orders             {time.perf_counter() - started:6.1f} s")
        started = time.perf_counter()
        insert_select(
            OrderItem,
            {
                "order": "o.id",
                "sku": "v.sku",
                "quantity": "v.quantity",
                "unit_price_amount": "19.90",
                "unit_price_currency": "'EUR'",
                "cancelled_quantity": "CASE WHEN o.status = 'cancelled' THEN v.quantity ELSE 0 END",
            },
            f"{Order._meta.db_table} o CROSS JOIN (VALUES ('PLAN', 1), ('ADDON', 2)) "
            "AS v(sku, quantity) ORDER BY o.id, v.sku DESC",
        )
        print(f"  order items        {time.perf_counter() - started:6.1f} s")
        started = time.perf_counter()
        done_at = "o.placed_at + interval '1 hour'"
        insert_select(
            Cancellation,
            {
                "id": "'cnl_' || lpad(to_hex(o.id), 24, '0')",
                "order": "o.id",
                "reason": str(int(reason_id)),
                "status": "'completed'",
                "canceled_time": done_at,
                "churn_time": done_at,
                "completed_time": done_at,
                "currency": "'EUR'",
                "order_status_before": "'open'",
                "created_time": done_at,
                "updated_time": done_at,
            },
            f"{Order._meta.db_table} o WHERE o.status = 'cancelled' ORDER BY o.id",
        )
        cancellations = f"{Cancellation._meta.db_table} c"
        insert_select(
            CancellationItem,
            {"cancellation": "c.id", "order_item": "i.id", "quantity": "i.quantity"},
            f"{cancellations} JOIN {OrderItem._meta.db_table} i ON i.order_id = c.order_id",
        )
        insert_select(
            Delivery,
            {
                "cancellation": "c.id",
                "provider": "'callisto'",
                "action": "'add'",
                "status": "'delivered'",
                "attempts": "1",
                "next_attempt_at": "c.created_time",
                "delivered_at": "c.created_time",
                "last_status_code": "200",
                "created_at": "c.created_time",
                "updated_at": "c.created_time",
            },
            cancellations,
        )
        insert_select(
            AuditEntry,
            {
                "created_at": "c.created_time",
                "action": "'cancellation.created'",
                "order": "c.order_id",
                "cancellation": "c.id",
                "actor_label": "'bench'",
                "via": "'api'",
            },
            cancellations,
        )
        print(f"  cancellations      {time.perf_counter() - started:6.1f} s")
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")  # fresh statistics and visibility map, as in production
    print(f"  vacuum analyze     {time.perf_counter() - started:6.1f} s")


def ensure_data(order_count: int, cancellation_count: int, refill: bool) -> None:
    from django.contrib.auth import get_user_model

    from cancellations.models import Cancellation, Order
    from reasons.models import CancellationReason

    if not get_user_model().objects.filter(username="bench-pages").exists():
        get_user_model().objects.create_superuser("bench-pages", "bench@example.com", None)
    reason, _created = CancellationReason.objects.get_or_create(
        omnitron_id=990003,
        defaults={"subject": "Bench: pages", "cancellation_type": "cancel", "is_active": True},
    )
    have = (Order.objects.count(), Cancellation.objects.count())
    if not refill and have == (order_count, cancellation_count):
        print(f"data               reused: {have[0]:,} orders, {have[1]:,} cancellations")
        return
    print(f"data               writing {order_count:,} orders, {cancellation_count:,} cancelled")
    started = time.perf_counter()
    fill(order_count, cancellation_count, reason.pk)
    print(f"  total              {time.perf_counter() - started:6.1f} s")


# --- measuring -----------------------------------------------------------------------------------


def pages(order_count: int) -> list[tuple[str, str]]:
    from cancellations.models import Cancellation
    from cancellations.views import ORDERS_PER_PAGE

    cancelled_order = Cancellation.objects.order_by("order_id").values_list("order_id", flat=True)
    middle = cancelled_order[Cancellation.objects.count() // 2] if cancelled_order else 1
    late_page = max(order_count // ORDERS_PER_PAGE * 3 // 4, 1)
    someone = order_count // 3 or 1
    return [
        ("staff order list, page 1", "/staff/orders/"),
        ("staff order list, search", f"/staff/orders/?q=customer{someone}%40"),
        ("staff order list, channel", f"/staff/orders/?channel={CHANNELS[1]}"),
        (f"staff order list, page {late_page:,}", f"/staff/orders/?page={late_page}"),
        ("staff order detail (cancelled)", f"/staff/orders/{middle}/"),
        ("API orders ?limit=50", "/api/v1/orders/?limit=50"),
        ("API order-cancellations ?limit=50", "/api/v1/order-cancellations/?limit=50"),
    ]


def measure(client, path: str, requests: int) -> tuple[float, float, int, int]:
    """(p50 ms, p95 ms, queries of one request, status)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        response = client.get(path)  # also the warm-up: caches, first compile of templates
    # Now: the next request's request_started signal empties the connection's query log.
    queries = len(captured.captured_queries)
    if response.status_code != 200:
        raise SystemExit(f"{path} answered {response.status_code}")
    times = []
    for _n in range(requests):
        started = time.perf_counter()
        client.get(path)
        times.append((time.perf_counter() - started) * 1000)
    cuts = statistics.quantiles(times, n=20, method="inclusive")
    return statistics.median(times), cuts[18], queries, response.status_code


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--cancellations", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=50, help="measured requests per page")
    parser.add_argument("--refill", action="store_true", help="write the data even if it fits")
    args = parser.parse_args(argv)
    if args.cancellations * 10 > args.orders:
        parser.error("--cancellations may be at most a tenth of --orders")

    setup_django()
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client

    ensure_data(args.orders, args.cancellations, args.refill)
    client = Client()
    client.force_login(get_user_model().objects.get(username="bench-pages"))

    print(f"database           {connection.vendor} {connection.settings_dict['NAME']}")
    print(f"requests           {args.requests} per page, in-process test Client, superuser")
    print()
    print(f"{'page':<38} {'p50 ms':>8} {'p95 ms':>8} {'queries':>8}")
    slow = []
    for label, path in pages(args.orders):
        p50, p95, queries, _status = measure(client, path, args.requests)
        flag = "  SLOW" if p95 > SLOW_MS else ""
        print(f"{label:<38} {p50:8.1f} {p95:8.1f} {queries:8d}{flag}")
        if flag:
            slow.append(path)
    if slow:
        print()
        print(f"p95 above {SLOW_MS} ms: {', '.join(slow)}")


if __name__ == "__main__":
    main()
