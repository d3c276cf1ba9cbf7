"""GET /healthz and /readyz: JSON for probes, no login, no secrets, 200 or 503 (#17)."""

import pytest
from django.db.migrations.executor import MigrationExecutor
from health_check.checks import Database

from backoffice import health
from backoffice.celery import app


@pytest.fixture(autouse=True)
def _migrations_checked_afresh():
    health.Migrations.applied_once = False
    yield
    health.Migrations.applied_once = False


@pytest.fixture
def broker_url(monkeypatch):
    """Point the Celery app at another broker for one test (Celery reads CELERY_BROKER_URL
    from the environment before its settings)."""
    saved = app.conf.broker_url

    def point_at(url):
        monkeypatch.setenv("CELERY_BROKER_URL", url)
        app.conf.broker_url = url

    yield point_at
    app.conf.broker_url = saved


def test_healthz_answers_without_login_or_database(client):
    # No django_db mark: any query would raise here.
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"status": "ok"}
    assert "no-cache" in response["Cache-Control"]


@pytest.mark.django_db
def test_readyz_is_ok_when_database_cache_broker_and_migrations_are(client):
    response = client.get("/readyz")

    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "checks": {"database": "ok", "migrations": "ok", "cache": "ok", "broker": "ok"},
    }


@pytest.mark.django_db
def test_readyz_is_503_without_the_broker_and_names_no_url(client, broker_url):
    broker_url("redis://storno:fake-pass-9x@127.0.0.1:1/0")

    response = client.get("/readyz")

    assert response.status_code == 503
    assert response.json()["status"] == "unavailable"
    assert response.json()["checks"]["broker"] == "unavailable"
    assert response.json()["checks"]["database"] == "ok"
    assert b"fake-pass-9x" not in response.content
    assert b"127.0.0.1" not in response.content


@pytest.mark.django_db
def test_readyz_is_503_while_migrations_are_missing(client, monkeypatch):
    monkeypatch.setattr(MigrationExecutor, "migration_plan", lambda self, targets: [("x", False)])

    response = client.get("/readyz")

    assert response.status_code == 503
    assert response.json()["checks"]["migrations"] == "unavailable"


@pytest.mark.django_db
def test_readyz_is_503_without_the_database(client, monkeypatch):
    def refused(self):
        from django.db import OperationalError

        raise OperationalError('connection to server at "db.internal" failed: password')

    monkeypatch.setattr(Database, "run", refused)

    response = client.get("/readyz")

    assert response.status_code == 503
    assert response.json()["checks"]["database"] == "unavailable"
    assert b"db.internal" not in response.content


def test_probes_over_plain_http_are_not_redirected_to_https(client, settings):
    settings.SECURE_SSL_REDIRECT = True

    assert client.get("/healthz").status_code == 200
    assert client.get("/staff/").status_code == 301
