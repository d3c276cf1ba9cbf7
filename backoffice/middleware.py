import logging
import sys
import zoneinfo

from django.http import HttpResponse
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views import defaults

from .api import DATABASE_ERRORS, DATABASE_RETRY_AFTER_SECONDS, DatabaseUnavailable
from .idempotency import problem

logger = logging.getLogger(__name__)


class UserTimezoneMiddleware:
    """Show times in the staff user's own zone; the database stays in UTC."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        zone_name = None
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            profile = getattr(user, "staff_profile", None)
            zone_name = profile.time_zone if profile else None
        if zone_name:
            try:
                timezone.activate(zoneinfo.ZoneInfo(zone_name))
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                timezone.deactivate()
        else:
            timezone.deactivate()
        return self.get_response(request)


def is_database_unavailable(exc) -> bool:
    """The database connection was lost or refused (not a bug in a query)."""
    return isinstance(exc, DATABASE_ERRORS)


def database_unavailable_response(request) -> HttpResponse:
    """503 with Retry-After: a problem object under /api/, the 503 page elsewhere."""
    headers = {"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)}
    if request.path_info.startswith("/api/"):
        return problem(
            503,
            "service-unavailable",
            _("Service unavailable"),
            str(DatabaseUnavailable.default_detail),
            headers=headers,
        )
    # Rendered without the request: its context processors would look up the session's user
    # and permissions, in the database that just failed.
    page = render_to_string("503.html", {"path": request.get_full_path()})
    return HttpResponse(page, status=503, headers=headers)


class DatabaseUnavailableMiddleware:
    """A view that lost its database connection answers 503, not 500. The service's
    transaction was rolled back with the connection, so nothing is half written, and Django
    drops the broken connection when the request ends (the next one connects afresh)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not is_database_unavailable(exception):
            return None
        logger.warning("Database unavailable, answering 503: %s", exception, exc_info=exception)
        return database_unavailable_response(request)


def server_error(request):
    """handler500: the same 503 for a connection lost outside any view (a middleware's own
    query, such as the Idempotency-Key claim), Django's 500 page for everything else."""
    if is_database_unavailable(sys.exc_info()[1]):
        return database_unavailable_response(request)
    return defaults.server_error(request)
