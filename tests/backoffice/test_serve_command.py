"""`make serve` and the Procfile (#17); tests/integration/test_serve.py runs them for real."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

VENV = Path(sys.executable).parent.parent


def make_serve(**env) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            shutil.which("make") or "make",
            "--no-print-directory",
            "-o",
            f"{VENV}/.installed",
            "-o",
            "static/vendor/chart.umd.min.js.map",
            "serve",
            f"VENV={VENV}",
        ],
        cwd=settings.BASE_DIR,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("database", "broker", "named"),
    [
        ("", "redis://127.0.0.1:6379/0", "DATABASE_URL"),
        ("sqlite:///var/storno.sqlite3", "redis://127.0.0.1:6379/0", "DATABASE_URL"),
        ("postgres://storno@127.0.0.1:5432/storno", "", "CELERY_BROKER_URL"),
        ("postgres://storno@127.0.0.1:5432/storno", "filesystem://", "CELERY_BROKER_URL"),
    ],
    ids=["no-database", "sqlite", "no-broker", "filesystem-broker"],
)
def test_make_serve_refuses_to_start_without_postgresql_and_a_broker(database, broker, named):
    result = make_serve(DATABASE_URL=database, CELERY_BROKER_URL=broker)

    assert result.returncode != 0
    assert f"set {named}" in result.stderr
    assert "migrate" not in result.stdout  # refused before touching anything


def test_the_procfile_runs_web_worker_and_beat_and_the_worker_consumes_every_queue():
    procfile = (Path(settings.BASE_DIR) / "Procfile").read_text()
    processes = dict(re.findall(r"^(\w+): (.+)$", procfile, re.MULTILINE))

    assert set(processes) == {"web", "worker", "beat"}
    assert "gunicorn -c gunicorn.conf.py backoffice.wsgi" in processes["web"]
    assert f"-Q {settings.CELERY_WORKER_QUEUES}" in processes["worker"]
    assert "celery -A backoffice beat" in processes["beat"]
