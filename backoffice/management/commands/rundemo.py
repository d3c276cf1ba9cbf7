"""`make run`: the whole product on one machine. Starts the provider fakes, points Storno at
them, pulls the reason catalog, adds demo data, then runs a Celery worker with beat and the web
server, and stops everything together on Ctrl-C."""

import os
import signal
import subprocess
import sys

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from backoffice.management.commands.demo_data import login_lines
from cancellations.external_ids import JS7_CONTROLLER, JS7_ORDERS, REBILLY
from cancellations.models import Order, SettlementItem
from providers.management.commands.run_fakes import start_fakes


class Command(BaseCommand):
    help = "Run Storno with its provider fakes, a worker with beat and the web server."

    def add_arguments(self, parser):
        parser.add_argument("--addrport", default="127.0.0.1:8000")
        parser.add_argument("--no-worker", action="store_true")

    def handle(self, *args, addrport, no_worker, **options):
        try:
            fakes = start_fakes()
        except OSError as exc:
            raise CommandError(f"Could not start the provider fakes: {exc}") from exc
        for entry, fake in fakes:
            # The worker and web processes inherit this environment.
            os.environ.update(entry.env(fake))
            self.stdout.write(f"Fake {entry.name} on {fake.url}")

        children: list[subprocess.Popen] = []

        def stop(*_args):
            for child in reversed(children):
                if child.poll() is None:
                    child.terminate()
            for child in children:
                try:
                    child.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    child.kill()
            for _entry, fake in fakes:
                fake.stop()

        signal.signal(signal.SIGTERM, lambda *a: (stop(), sys.exit(0)))
        try:
            try:
                call_command("pull_reasons")
            except Exception as exc:  # the demo still runs on its fallback catalog
                self.stderr.write(f"Pulling reasons failed: {exc}")
            call_command("demo_data")
            self._seed_js7({entry.name: fake for entry, fake in fakes}.get("js7"))
            self._seed_rebilly({entry.name: fake for entry, fake in fakes}.get("rebilly"))
            self._seed_billing({entry.name: fake for entry, fake in fakes}.get("billing"))
            if not no_worker:
                children.append(
                    subprocess.Popen(
                        [
                            sys.executable,
                            "-m",
                            "celery",
                            "-A",
                            "backoffice",
                            "worker",
                            "-B",
                            "--loglevel",
                            "INFO",
                            "--concurrency",
                            "2",
                        ]
                    )
                )
            # Again after the worker's start-up lines, which push demo_data's print out of view.
            self.stdout.write(
                self.style.SUCCESS(f"Storno runs on http://{addrport}/\n{login_lines()}")
            )
            server = subprocess.Popen(
                [sys.executable, "manage.py", "runserver", "--noreload", addrport]
            )
            children.append(server)
            server.wait()
        except KeyboardInterrupt:
            pass
        finally:
            stop()

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
