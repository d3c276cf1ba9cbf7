"""What the security settings point at: the client address that lockouts count, the page a
locked-out login gets, and the API docs page's relaxed Content-Security-Policy."""

import ipaddress
import math
from urllib.parse import urlsplit

from axes.handlers.database import AxesDatabaseHandler
from axes.handlers.proxy import AxesProxyHandler
from axes.helpers import get_client_username, get_cool_off
from axes.models import AccessAttempt
from csp.constants import UNSAFE_INLINE
from csp.decorators import csp_update
from django.conf import settings
from django.db import models
from django.shortcuts import render
from django.utils import timezone
from drf_spectacular.settings import spectacular_settings
from drf_spectacular.views import SpectacularSwaggerSplitView
from rest_framework.throttling import BaseThrottle


def client_ip(request) -> str | None:
    """The client's address as the API throttles see it (REST_FRAMEWORK NUM_PROXIES, from
    TRUSTED_PROXY_COUNT), so login lockouts and throttles count the same clients. Anything
    that is not an address falls back to the peer's."""
    candidate = BaseThrottle().get_ident(request)
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return request.META.get("REMOTE_ADDR")


def lockout_minutes(request, credentials=None) -> int:
    """Whole minutes until the lock ends (at the latest), 0 without a cool-off."""
    cool_off = get_cool_off(request)
    if not cool_off:
        return 0
    credentials = credentials or getattr(request, "axes_credentials", None)
    ends_at = AxesProxyHandler.get_implementation().lock_ends_at(request, credentials, cool_off)
    seconds = (ends_at - timezone.now()).total_seconds() if ends_at else cool_off.total_seconds()
    return max(1, math.ceil(seconds / 60))


def lockout_response(request, original_response=None, credentials=None):
    """django-axes' AXES_LOCKOUT_CALLABLE: the login page's lockout message, 429.

    Refused tries while locked don't count (AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT is
    off): the lock ends a cool-off after the failure that set it."""
    minutes = lockout_minutes(request, credentials)
    response = render(request, "registration/locked_out.html", {"minutes": minutes}, status=429)
    if minutes:
        response["Retry-After"] = str(minutes * 60)
    return response


class LoginFailureHandler(AxesDatabaseHandler):
    """django-axes' database handler (AXES_HANDLER) with a limit per address of its own.

    AXES_LOCKOUT_PARAMETERS counts failures per user name and address, then per address across
    user names (password spraying); axes compares both with one AXES_FAILURE_LIMIT, so the
    address's count is scaled onto it: LOGIN_ADDRESS_FAILURE_LIMIT failures from one address
    lock it as AXES_FAILURE_LIMIT failures lock one user name there. A successful login forgets
    that user name's failures from that address only: one valid account must not wipe the
    address's count of failures at other user names."""

    def get_failures(self, request, credentials=None) -> int:
        per_name, per_address = (
            attempts.aggregate(total=models.Sum("failures_since_start"))["total"] or 0
            for attempts in self.get_user_attempts(request, credentials)
        )
        address_limit = max(1, settings.LOGIN_ADDRESS_FAILURE_LIMIT)
        return max(per_name, per_address * settings.AXES_FAILURE_LIMIT // address_limit)

    def lock_ends_at(self, request, credentials, cool_off):
        """A cool-off after the last failure counted towards the lock (the user name's at this
        address if that pair is locked, else the address's); None without any."""
        per_name, per_address = self.get_user_attempts(request, credentials)
        name_failures = per_name.aggregate(total=models.Sum("failures_since_start"))["total"]
        locking = per_name if (name_failures or 0) >= settings.AXES_FAILURE_LIMIT else per_address
        latest = locking.aggregate(latest=models.Max("attempt_time"))["latest"]
        return latest + cool_off if latest else None

    def reset_user_attempts(self, request, credentials=None) -> int:
        username = get_client_username(request, credentials)
        deleted, _by_model = AccessAttempt.objects.filter(
            username=username, ip_address=request.axes_ip_address
        ).delete()
        return deleted


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


def swagger_ui_view():
    """Swagger UI with its start-up script served from Storno (no inline script); its files
    come from SWAGGER_UI_DIST (a CDN unless configured), which this page alone may load, with
    the one inline <style> drf-spectacular's page carries."""
    cdn = [
        origin
        for origin in {_origin(spectacular_settings.SWAGGER_UI_DIST)}
        | {_origin(spectacular_settings.SWAGGER_UI_FAVICON_HREF)}
        if origin
    ]
    view = SpectacularSwaggerSplitView.as_view(url_name="api-schema")
    return csp_update(
        {
            "script-src": cdn,
            "style-src": [*cdn, UNSAFE_INLINE],
            "img-src": [*cdn, "data:"],
        }
    )(view)
