"""`make run` (manage.py rundemo) in a subprocess, on a temporary var dir and free ports: it
prints the logins once and stops within 5 s of SIGTERM or Ctrl-C, leaving no process behind
(the worker, its pool and beat, the web server). About 15 s each: marked slow (-m "not slow"
leaves them out)."""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROC = Path("/proc")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not PROC.is_dir(), reason="reads the process tree from /proc"),
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def demo_environment(var_dir: Path) -> dict[str, str]:
    # Not what tests/settings.py put into this process, nor CI's PostgreSQL, Redis or broker.
    dropped = {"DJANGO_SETTINGS_MODULE", "DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "DATABASE_URL"}
    dropped |= {"CELERY_BROKER_URL", "CELERY_BROKER_WRITE_URL", "CACHE_REDIS_URL"}
    env = {k: v for k, v in os.environ.items() if k not in dropped and "SECURE_" not in k}
    env.update(DEBUG="1", STORNO_VAR_DIR=str(var_dir), PYTHONUNBUFFERED="1")
    return env


def running_processes() -> dict[int, int]:
    """{pid: parent pid} of every process that isn't a zombie."""
    found = {}
    for stat in PROC.glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if fields[0] != "Z":
                found[int(stat.parent.name)] = int(fields[1])
    return found


def descendants(pid: int) -> set[int]:
    parents = running_processes()
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier}
        found |= frontier
    return found


def wait_until(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} within {seconds} s")
        time.sleep(0.2)


def page_answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/accounts/login/", timeout=2) as page:
            return page.status == 200
    except OSError:
        return False


@contextlib.contextmanager
def sigint_ignored():
    """Children started inside inherit SIGINT ignored (a Python handler would not be inherited)."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@pytest.fixture
def demo(tmp_path):
    env = demo_environment(tmp_path / "var")
    manage = [sys.executable, "manage.py"]
    subprocess.run(
        [*manage, "migrate", "--no-input"],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=120,
        capture_output=True,
    )
    port = free_port()
    log = tmp_path / "rundemo.log"
    # Started with SIGINT ignored, as a shell script's background job starts it (and pytest,
    # when it runs as one): rundemo must stop on SIGINT all the same.
    with log.open("w") as out, sigint_ignored():
        process = subprocess.Popen(
            [*manage, "rundemo", "--addrport", f"127.0.0.1:{port}", "--free-fake-ports"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            process_group=0,
        )
    try:
        yield process, port, log
    finally:
        for pid in descendants(process.pid) | {process.pid}:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        process.wait(timeout=10)


# SIGINT: what Ctrl-C sends to the terminal's foreground process group, where only rundemo is.
@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT], ids=["TERM", "INT"])
def test_rundemo_prints_the_logins_once_and_stops_within_5_s_leaving_nothing(demo, stop_signal):
    process, port, log = demo
    wait_until(lambda: page_answers(port), 120, "the demo's page did not answer")
    wait_until(lambda: " ready." in log.read_text(), 60, "the worker was not ready")
    started = descendants(process.pid)
    assert len(started) >= 4  # the server, the worker, its pool of 2 (and beat)

    stopped_at = time.monotonic()
    process.send_signal(stop_signal)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=10)
    took = time.monotonic() - stopped_at

    assert process.returncode == 0, f"still running 10 s after {stop_signal.name}"
    assert took <= 5, f"stopped after {took:.1f} s"
    assert started & running_processes().keys() == set()  # nothing left behind
    assert log.read_text().count("Admin login: admin /") == 1
