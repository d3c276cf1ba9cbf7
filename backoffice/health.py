"""Liveness and readiness for load balancers and orchestrators (issue #17).

    GET /healthz  the process answers: no database, no broker (a restart would not help them).
    GET /readyz   this process can serve: database, broker and cache reachable, migrations
                  applied. 200 or 503.

Both answer JSON without authentication, so they say nothing a stranger may not know: each
check is "ok" or "unavailable", never a host, URL or driver message (those go to the log).

django-health-check runs the checks (each with its own time budget, side by side, errors
caught and logged); its Database and Cache checks are used as they are, the broker and
migration checks below are Storno's. Its view answers 500 and by content negotiation; these
answer 503 and JSON always.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor
from django.http import JsonResponse
from django.utils.cache import add_never_cache_headers
from django.views.decorators.http import require_safe
from health_check.base import HealthCheck
from health_check.checks import Cache, Database
from health_check.exceptions import ServiceUnavailable
from health_check.views import HealthCheckView


@dataclasses.dataclass
class Broker(HealthCheck):
    """The Celery broker accepts a connection (Redis, RabbitMQ, or the filesystem folder)."""

    timeout = datetime.timedelta(seconds=3)

    def run(self) -> None:
        from backoffice.celery import app

        try:
            with app.connection_for_write() as connection:
                connection.ensure_connection(max_retries=0, timeout=2)
        except Exception as exc:
            # The message may carry the broker's URL; the log has it, the answer doesn't.
            raise ServiceUnavailable("broker unreachable") from exc


@dataclasses.dataclass
class Migrations(HealthCheck):
    """Every migration of this code is applied: a process started before `migrate` finished
    would fail on columns that don't exist yet."""

    # Once applied, they stay applied for this process's code: checked until then only.
    applied_once = False

    def run(self) -> None:
        if Migrations.applied_once:
            return
        connection = connections[DEFAULT_DB_ALIAS]
        try:
            executor = MigrationExecutor(connection)
            unapplied = executor.migration_plan(executor.loader.graph.leaf_nodes())
        finally:
            connection.close()  # this ran in a worker thread: its connection stays there
        if unapplied:
            raise ServiceUnavailable(f"{len(unapplied)} migrations not applied")
        Migrations.applied_once = True


# The name each check has in /readyz's answer.
READINESS_CHECKS: dict[str, type[HealthCheck]] = {
    "database": Database,
    "migrations": Migrations,
    "cache": Cache,
    "broker": Broker,
}


class ReadinessView(HealthCheckView):
    checks = tuple(READINESS_CHECKS.values())

    async def get(self, request, *args, **kwargs):
        with self.get_executor() as executor:
            results = await asyncio.gather(
                *(check.get_result(executor) for check in self.get_checks())
            )
        checks = {
            name: "unavailable" if result.error else "ok"
            for name, result in zip(READINESS_CHECKS, results, strict=True)
        }
        ready = all(state == "ok" for state in checks.values())
        return JsonResponse(
            {"status": "ok" if ready else "unavailable", "checks": checks},
            status=200 if ready else 503,
        )


readyz = ReadinessView.as_view()


@require_safe
def healthz(request):
    """The process runs and answers: nothing else is asked."""
    response = JsonResponse({"status": "ok"})
    add_never_cache_headers(response)
    return response
