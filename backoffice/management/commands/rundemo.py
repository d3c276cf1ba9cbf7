"""`make run`: the whole product on one machine. Starts the provider fakes, pulls the reason
catalog, adds demo data, then runs a Celery worker with beat and the web server, and stops them
all together on Ctrl-C."""

import os
import signal
import subprocess
import sys
import time

from django.core.management import call_command, get_commands
from django.core.management.base import BaseCommand

# Where the fakes listen in the demo, and the environment that points Storno at them.
FAKE_HOST = "127.0.0.1"
DEMO_ENV = {
    "OMNITRON_BASE_URL": f"http://{FAKE_HOST}:8101",
    "OMNITRON_TOKEN": "demo-omnitron-token",
    "CALLISTO_BASE_URL": f"http://{FAKE_HOST}:8102",
    "CALLISTO_USERNAME": "storno",
    "CALLISTO_PASSWORD": "demo-callisto-password",
    "REBILLY_BASE_URL": f"http://{FAKE_HOST}:8103/organizations/org-demo",
    "REBILLY_API_KEY": "demo-rebilly-key",
}


class Command(BaseCommand):
    help = "Run Storno with its provider fakes, a worker with beat and the web server."

    def add_arguments(self, parser):
        parser.add_argument("--addrport", default="127.0.0.1:8000")
        parser.add_argument("--no-worker", action="store_true")

    def handle(self, *args, addrport, no_worker, **options):
        for key, value in DEMO_ENV.items():
            os.environ.setdefault(key, value)
        commands = get_commands()
        manage = [sys.executable, "manage.py"]
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

        signal.signal(signal.SIGTERM, lambda *a: (stop(), sys.exit(0)))
        try:
            if "run_fakes" in commands:
                children.append(subprocess.Popen([*manage, "run_fakes"]))
                time.sleep(1.5)
            if "pull_reasons" in commands:
                try:
                    call_command("pull_reasons")
                except Exception as exc:  # the demo still runs on the fallback catalog
                    self.stderr.write(f"Pulling reasons failed: {exc}")
            call_command("demo_data")
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
            self.stdout.write(self.style.SUCCESS(f"Storno runs on http://{addrport}/"))
            server = subprocess.Popen([*manage, "runserver", "--noreload", addrport])
            children.append(server)
            server.wait()
        except KeyboardInterrupt:
            pass
        finally:
            stop()
