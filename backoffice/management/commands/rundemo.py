"""`make run`: the whole product on one machine. Starts the provider fakes, points Storno at
them, pulls the reason catalog, adds demo data, then runs a Celery worker with beat and the web
server, and stops everything together within a few seconds of Ctrl-C or SIGTERM.

Each child runs in its own process group (the worker's pool and beat processes join the
worker's): Ctrl-C in the terminal reaches only this command, which asks each child to stop and,
after STOP_GRACE_SECONDS, kills whatever of their groups is left."""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from backoffice.management.commands.demo_data import login_lines
from cancellations.external_ids import JS7_CONTROLLER, JS7_ORDERS, REBILLY
from cancellations.models import Order, SettlementItem
from providers.management.commands.run_fakes import (
    FAKES,
    FIRST_PORT_VARIABLE,
    configured_port,
    start_fakes,
)

# A warm worker shutdown finishes the tasks it runs; one that takes longer is killed (its
# deliveries' leases expire and the sweep sends them again; a bulk job resumes).
STOP_GRACE_SECONDS = 2.0
WORKER = [sys.executable, "-m", "celery", "-A", "backoffice", "worker", "-B"]
# Every queue (settings.CELERY_TASK_ROUTES): one worker does all the work of the demo.
WORKER_OPTIONS = ["--loglevel", "INFO", "--concurrency", "2", "-Q", settings.CELERY_WORKER_QUEUES]


WEB_PORT_VARIABLE = "DEMO_WEB_PORT"


def port_taken(host: str, port: int) -> bool:
    """Whether something listens on host:port already (a bind as the servers do it fails)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


def check_ports(addrport: str, *, fakes: bool) -> None:
    """Refuse to start, naming the port, rather than fail a minute later (or, worse, leave
    whatever holds port 8000 answering as if it were the demo)."""
    host, _sep, port = addrport.rpartition(":")
    if not port.isdigit():
        raise CommandError(f"--addrport must be host:port, not {addrport!r}.")
    wanted = [(host or "127.0.0.1", int(port), f"the web server ({WEB_PORT_VARIABLE})")]
    if fakes:
        wanted += [
            ("127.0.0.1", configured_port(entry), f"the {entry.name} fake ({FIRST_PORT_VARIABLE})")
            for entry in FAKES
        ]
    taken = [(port, what) for host, port, what in wanted if port_taken(host, port)]
    if taken:
        raise CommandError(
            "\n".join(
                f"Port {port}, for {what}, is taken by another program." for port, what in taken
            )
            + f"\nStop that program, or choose other ports, e.g. {WEB_PORT_VARIABLE}=8010 "
            f"{FIRST_PORT_VARIABLE}=8111 make run."
        )


def _interrupt(*_args):
    raise KeyboardInterrupt


def spawn(command: list[str]) -> subprocess.Popen:
    return subprocess.Popen(command, process_group=0)


def group_alive(pgid: int) -> bool:
    """Whether any process of the group is still running (zombies don't count)."""
    proc = Path("/proc")
    if not proc.is_dir():  # not Linux: ask the kernel, zombies included
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        return True
    for stat in proc.glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid and fields[0] != "Z":
                return True
    return False


def stop_children(children: list[subprocess.Popen], grace: float = STOP_GRACE_SECONDS) -> None:
    """SIGTERM to each child, then SIGKILL to each child's process group still there."""
    for child in children:
        if child.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        for child in children:
            child.poll()  # reap, so an exited child isn't counted as a zombie member
        if not any(group_alive(child.pid) for child in children):
            return
        time.sleep(0.05)
    for child in children:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(timeout=1)


class Command(BaseCommand):
    help = "Run Storno with its provider fakes, a worker with beat and the web server."

    def add_arguments(self, parser):
        parser.add_argument(
            "--addrport",
            default=f"127.0.0.1:{os.environ.get(WEB_PORT_VARIABLE, '').strip() or 8000}",
        )
        parser.add_argument("--no-worker", action="store_true")
        parser.add_argument(
            "--free-fake-ports",
            action="store_true",
            help="Run the fakes on free ports instead of their fixed ones (8101-8105, or from "
            f"{FIRST_PORT_VARIABLE}).",
        )

    def handle(self, *args, addrport, no_worker, free_fake_ports, **options):
        check_ports(addrport, fakes=not free_fake_ports)
        try:
            fakes = start_fakes(port_for=(lambda entry: 0) if free_fake_ports else None)
        except OSError as exc:
            raise CommandError(f"Could not start the provider fakes: {exc}") from exc
        for entry, fake in fakes:
            # The worker and web processes inherit this environment.
            os.environ.update(entry.env(fake))
            self.stdout.write(f"Fake {entry.name} on {fake.url}")

        children: list[subprocess.Popen] = []
        # Both set here, not inherited: a shell script's background job (`make run &`, CI)
        # starts with SIGINT ignored, and Python then never turns it into KeyboardInterrupt.
        signal.signal(signal.SIGINT, _interrupt)
        signal.signal(signal.SIGTERM, _interrupt)  # the same way out as Ctrl-C
        try:
            self._prepare(fakes)
            if not no_worker:
                children.append(spawn(WORKER + WORKER_OPTIONS))
            self.stdout.write(
                self.style.SUCCESS(f"Storno runs on http://{addrport}/\n{login_lines()}")
            )
            server = spawn([sys.executable, "manage.py", "runserver", "--noreload", addrport])
            children.append(server)
            server.wait()
        except KeyboardInterrupt:
            pass
        finally:
            # A second Ctrl-C must not cut the stopping short and leave processes behind.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            stop_children(children)
            for _entry, fake in fakes:
                fake.stop()

    def _prepare(self, fakes) -> None:
        try:
            call_command("pull_reasons")
        except Exception as exc:  # the demo still runs on its fallback catalog
            self.stderr.write(f"Pulling reasons failed: {exc}")
        call_command("demo_data", logins=False)  # printed once, below the worker's start-up
        by_name = {entry.name: fake for entry, fake in fakes}
        self._seed_js7(by_name.get("js7"))
        self._seed_rebilly(by_name.get("rebilly"))
        self._seed_billing(by_name.get("billing"))

    def _seed_js7(self, fake) -> None:
        """Give the JS7 fake the pending workflow orders of the demo orders, so cancelling one
        shows a real effect there."""
        if fake is None:
            return
        by_controller: dict[str, list[str]] = {}
        for refs in Order.objects.values_list("external_ids", flat=True).iterator():
            if refs.get(JS7_CONTROLLER) and refs.get(JS7_ORDERS):
                by_controller.setdefault(refs[JS7_CONTROLLER], []).extend(refs[JS7_ORDERS])
        for controller_id, order_ids in by_controller.items():
            fake.seed_orders(controller_id, order_ids)

    def _seed_rebilly(self, fake) -> None:
        """Tell the Rebilly fake the demo orders' Rebilly ids: like Rebilly, it refuses a
        cancellation of an order it doesn't know."""
        if fake is None:
            return
        refs = Order.objects.values_list("external_ids", flat=True).iterator()
        fake.add_orders(ref[REBILLY] for ref in refs if ref.get(REBILLY))

    def _seed_billing(self, fake) -> None:
        """Give the billing engine's fake the demo's service items (by their billing item id)
        with their settlement items' states, so that it knows what Storno asks it to cancel."""
        if fake is None:
            return
        states: dict[str, list[str]] = {}
        rows = SettlementItem.objects.exclude(order_item__billing_item_id="").order_by("pk")
        for item_id, state in rows.values_list("order_item__billing_item_id", "state"):
            states.setdefault(item_id, []).append(state)
        for item_id, item_states in states.items():
            fake.add_service_item(item_id, item_states)
