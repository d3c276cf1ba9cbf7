"""Run every strict provider fake on its fixed loopback port, for the demo and manual testing.

    python manage.py run_fakes                 # all of them, until Ctrl-C
    python manage.py run_fakes --only callisto --only rebilly

It prints the environment variables that point Storno at the fakes. Each fake also answers its
control API under /_fake/ (faults, requests, state, reset: see providers/fakes/faults.py).
Adding a fake is one line in FAKES.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass

from django.core.management.base import BaseCommand, CommandError

from providers.fakes import billing, callisto, js7, omnitron, rebilly


@dataclass(frozen=True)
class FakeEntry:
    name: str
    port: int
    build: Callable  # build(port) -> a started-or-startable FakeServer
    env: Callable  # env(fake) -> {"VAR": "value"} to reach it


FAKES = [
    FakeEntry(
        "omnitron",
        8101,
        lambda port: omnitron.OmnitronFake(catalog=omnitron.demo_catalog(), port=port),
        lambda fake: {"OMNITRON_BASE_URL": fake.url, "OMNITRON_TOKEN": fake.token},
    ),
    FakeEntry(
        "callisto",
        8102,
        lambda port: callisto.CallistoFake(port=port, known_ids=callisto.DEMO_ORDER_IDS),
        lambda fake: {
            "CALLISTO_BASE_URL": fake.url,
            "CALLISTO_USERNAME": fake.username,
            "CALLISTO_PASSWORD": fake.password,
        },
    ),
    FakeEntry(
        "rebilly",
        8103,
        lambda port: rebilly.RebillyFake(port=port),
        lambda fake: {"REBILLY_BASE_URL": fake.base_url, "REBILLY_API_KEY": fake.api_key},
    ),
    FakeEntry(
        "billing",
        8104,
        lambda port: billing.BillingFake(port=port),
        lambda fake: {
            "BILLING_BASE_URL": fake.base_url,
            "BILLING_USERNAME": fake.username,
            "BILLING_PASSWORD": fake.password,
            "BILLING_CLIENT_SYSTEM_ID": "STORNO-DEMO",
            "BILLING_CLIENT_IDENT_CODE": fake.client_ident_code,
            "BILLING_USER_NAME": billing.DEFAULT_USER_NAME,
        },
    ),
    FakeEntry(
        "js7",
        8105,
        lambda port: js7.Js7Fake(port=port),
        lambda fake: {
            "JS7_BASE_URL": fake.url,
            "JS7_USERNAME": fake.username,
            "JS7_PASSWORD": fake.password,
        },
    ),
]


def wait_for_interrupt() -> None:
    with contextlib.suppress(KeyboardInterrupt):
        threading.Event().wait()


# The fakes' ports, in FAKES' order, start here (8101 unless the environment says otherwise).
FIRST_PORT_VARIABLE = "DEMO_FAKES_FIRST_PORT"


def configured_port(entry: FakeEntry) -> int:
    """The entry's fixed port, moved along with DEMO_FAKES_FIRST_PORT when that is set."""
    first = os.environ.get(FIRST_PORT_VARIABLE, "").strip()
    if not first:
        return entry.port
    if not first.isdigit() or not 1 <= int(first) <= 65535 - len(FAKES):
        raise CommandError(f"{FIRST_PORT_VARIABLE} must be a port number, not {first!r}.")
    return int(first) + FAKES.index(entry)


def start_fakes(names=None, *, port_for=None) -> list[tuple[FakeEntry, object]]:
    """Start the chosen fakes (all by default) in background threads; returns (entry, fake)."""
    port_for = port_for or configured_port
    started = []
    try:
        for entry in FAKES:
            if names and entry.name not in names:
                continue
            started.append((entry, entry.build(port_for(entry)).start()))
    except OSError:
        for _entry, fake in started:
            fake.stop()
        raise
    return started


class Command(BaseCommand):
    help = "Run the strict provider fakes on fixed loopback ports until interrupted."

    def add_arguments(self, parser):
        parser.add_argument(
            "--only",
            action="append",
            choices=[entry.name for entry in FAKES],
            help="Run only this fake (repeatable).",
        )

    def handle(self, *args, only=None, **options):
        try:
            running = start_fakes(only)
        except OSError as exc:
            raise CommandError(f"Could not start the fakes: {exc}") from exc
        for entry, fake in running:
            self.stdout.write(f"{entry.name}: {fake.url}")
        self.stdout.write("\nPoint Storno at them with:")
        for entry, fake in running:
            for name, value in entry.env(fake).items():
                self.stdout.write(f"export {name}={value}")
        self.stdout.write("\nCtrl-C stops them.")
        try:
            wait_for_interrupt()
        finally:
            for _entry, fake in running:
                fake.stop()
