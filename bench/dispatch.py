"""Deliveries per second through the dispatcher, against the strict fakes on loopback.

    .venv/bin/python bench/dispatch.py                   # 300 cancellations → 600 deliveries
    .venv/bin/python bench/dispatch.py --count 1000 --workers 4
    DATABASE_URL=postgres://… .venv/bin/python bench/dispatch.py --workers 8

Without DATABASE_URL it uses a fresh SQLite file in a temporary folder. The cancellations are
written first with the after-commit kick switched off; then `--workers` threads each run the
sweep (providers.dispatch.deliver_due: claim, HTTP call, record) until nothing is due. What is
measured is the dispatcher's whole loop: two short transactions and one HTTP request per
delivery.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def setup_django(var_dir: str) -> None:
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
    parser.add_argument("--count", type=int, default=300, help="cancellations (× 2 providers)")
    parser.add_argument("--workers", type=int, default=1, help="dispatcher threads")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="storno-bench-") as var_dir:
        setup_django(var_dir)
        run(args.count, args.workers)


def run(count: int, workers: int) -> None:
    from django.db import connection

    from cancellations.models import AuditEntry
    from cancellations.services import writing
    from providers import dispatch, outbox
    from providers.fakes.callisto import CallistoFake
    from providers.fakes.rebilly import RebillyFake
    from providers.models import Delivery, ProviderSetting
    from tests.factories import CancellationReasonFactory, OrderFactory, OrderItemFactory

    if connection.vendor != "sqlite":
        Delivery.objects.all().delete()  # a shared database: start from an empty outbox
        ProviderSetting.objects.filter(kind__in=["callisto", "rebilly"]).delete()

    offset = int(time.time())
    known = range(offset, offset + count)  # the Callisto ids of the orders made below
    with CallistoFake(known_ids=known) as callisto, RebillyFake() as rebilly:
        os.environ.update(
            CALLISTO_USERNAME=callisto.username,
            CALLISTO_PASSWORD=callisto.password,
            REBILLY_API_KEY=rebilly.api_key,
        )
        ProviderSetting.objects.create(kind="callisto", base_url=callisto.url)
        ProviderSetting.objects.create(kind="rebilly", base_url=rebilly.base_url)

        outbox.kick = lambda ids: None  # measure the dispatcher alone, not the broker
        reason = CancellationReasonFactory()
        for n in range(count):
            order = OrderFactory(
                number=f"BENCH-{offset}-{n}",
                external_ids={"callisto": str(offset + n), "rebilly": f"ord_{offset}_{n}"},
            )
            OrderItemFactory(order=order)
            rebilly.add_orders([order.external_ids["rebilly"]])
            writing.cancel_order(
                order,
                reason=reason,
                actor=None,
                via=AuditEntry.Via.API,
                external_user_id="005000000000001AAA",
            )
        due = Delivery.objects.filter(status="pending").count()

        done = []

        def sweep():
            try:
                done.append(dispatch.deliver_due(budget_seconds=3600))
            finally:
                connection.close()

        threads = [threading.Thread(target=sweep) for _ in range(workers)]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started

        delivered = Delivery.objects.filter(status="delivered").count()
        assert delivered == due == sum(done), (delivered, due, done)
        print(
            f"{delivered} deliveries in {elapsed:.2f} s: {delivered / elapsed:.0f} deliveries/s "
            f"({workers} dispatcher thread(s), {connection.vendor}, fakes on loopback)"
        )


if __name__ == "__main__":
    main()
