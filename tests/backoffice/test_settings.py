"""Settings come from the environment, and production mode passes Django's deploy checks."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_manage(*args, **env):
    # Drop what tests/settings.py put into this process's environment (DEBUG, SECURE_*, …).
    inherited = {"DJANGO_SETTINGS_MODULE", "DEBUG", "SECRET_KEY", "ALLOWED_HOSTS"}
    clean = {
        k: v for k, v in os.environ.items() if k not in inherited and not k.startswith("SECURE_")
    }
    clean.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_production_mode_passes_the_deploy_check_without_warnings(tmp_path):
    result = run_manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DEBUG="0",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="storno.example.com",
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        STORNO_VAR_DIR=str(tmp_path),
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_mode_refuses_to_start_without_a_secret_key(tmp_path):
    result = run_manage(
        "check", DEBUG="0", SECRET_KEY="", ALLOWED_HOSTS="x", STORNO_VAR_DIR=str(tmp_path)
    )

    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_database_url_selects_the_database(tmp_path):
    result = run_manage(
        "shell",
        "-c",
        "from django.db import connection as c; print(c.vendor, c.settings_dict['NAME'])",
        DEBUG="1",
        DATABASE_URL="postgres://someone@db.example:5432/storno_prod",
        STORNO_VAR_DIR=str(tmp_path),
    )

    assert result.stdout.split()[-2:] == ["postgresql", "storno_prod"]
