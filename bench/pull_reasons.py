"""Benchmark: pull a 10,000-reason catalog from the fake Omnitron into a throwaway SQLite DB.

    .venv/bin/python bench/pull_reasons.py [--size 10000] [--page-size 100]

Prints the time of the first pull (all created), of a pull with no upstream change, and of a
pull where 10% changed and 1% disappeared, each followed by ANALYZE. Nothing outside a temporary
directory is touched. The fake listens on BENCH_OMNITRON_PORT, or on a free port.
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=10_000)
    parser.add_argument("--page-size", type=int, default=100)
    args = parser.parse_args()

    workdir = tempfile.TemporaryDirectory(prefix="storno-bench-")
    os.environ["STORNO_VAR_DIR"] = workdir.name
    os.environ["DATABASE_URL"] = f"sqlite:///{Path(workdir.name) / 'bench.sqlite3'}"
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    from providers.fakes.omnitron import DEFAULT_TOKEN, OmnitronFake, make_catalog
    from reasons.models import CancellationReason
    from reasons.sync import pull_reasons

    call_command("migrate", verbosity=0)
    from django.db import connection

    from bench.support import env_port

    catalog = make_catalog(args.size)
    port = env_port("BENCH_OMNITRON_PORT")  # 0: a free one
    with OmnitronFake(catalog=catalog, page_size=args.page_size, port=port) as fake:
        settings.OMNITRON_BASE_URL = fake.url
        settings.OMNITRON_TOKEN = DEFAULT_TOKEN

        def timed(label):
            started = time.perf_counter()
            run = pull_reasons()
            seconds = time.perf_counter() - started
            assert run.succeeded, run.error
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE")  # what the pull wrote, for the next one's plans
            print(
                f"{label:<38} {seconds:7.2f} s   created {run.created_count:>6}  "
                f"updated {run.updated_count:>5}  deactivated {run.deactivated_count:>4}"
            )
            return run

        pages = fake.page_count
        print(f"{args.size} reasons, {pages} pages of {args.page_size}, SQLite in {workdir.name}")
        timed("first pull (everything new)")
        timed("second pull (no upstream change)")
        for reason in fake.catalog[::10]:
            reason["subject"] = reason["subject"] + " (neu)"
        fake.set_catalog(fake.catalog[: args.size - args.size // 100])
        timed("pull with 10% changed, 1% gone")
        assert CancellationReason.objects.count() == args.size
    workdir.cleanup()


if __name__ == "__main__":
    main()
