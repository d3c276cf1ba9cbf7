"""The API's token and HTTP Basic authentication, with refused credentials counted per address.

- Every refused `Authorization` (unknown token, wrong password, malformed header) counts
  against the client address (the `failed-auth` throttle rate). Past the limit, every request
  from that address that carries credentials is a 429 with Retry-After until the window ends,
  before any credential is checked: the right ones too, so guessing learns nothing.
- HTTP Basic logins also count in django-axes like the login pages (user name + address, and
  address across user names); a locked-out Basic login is a 429 with Retry-After, as the pages
  answer, instead of a 401.

Requests without an Authorization header (sessions, anonymous) are not counted here.
"""

from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions

from .throttling import FailedCredentialsThrottle


class TooManyFailedLogins(exceptions.Throttled):
    default_detail = _("Too many failed logins from this address.")


def refuse_if_failing_too_often(request) -> None:
    throttle = FailedCredentialsThrottle()
    if throttle.is_exceeded(request):
        raise TooManyFailedLogins(wait=throttle.wait())


def count_failure(request) -> None:
    FailedCredentialsThrottle().record_failure(request)


class CountedFailures:
    """Mixed into a DRF authentication class whose scheme sends an Authorization header."""

    def authenticate(self, request):
        if request.META.get("HTTP_AUTHORIZATION"):
            refuse_if_failing_too_often(request)
        try:
            return super().authenticate(request)
        except exceptions.AuthenticationFailed:
            count_failure(request)
            raise


class TokenAuthentication(CountedFailures, authentication.TokenAuthentication):
    """DRF's `Authorization: Token <key>`, with the user's staff profile read in the same
    query: the time zone middleware and Callisto's Salesforce user id read it on every
    request or cancellation (one query less per cancel)."""

    def authenticate_credentials(self, key):
        model = self.get_model()
        try:
            token = model.objects.select_related("user", "user__staff_profile").get(key=key)
        except model.DoesNotExist:
            raise exceptions.AuthenticationFailed(_("Invalid token.")) from None
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        return (token.user, token)


class BasicAuthentication(CountedFailures, authentication.BasicAuthentication):
    """DRF's HTTP Basic; django-axes (the first authentication backend) refuses a locked-out
    user name or address before the password is checked."""

    def authenticate_credentials(self, userid, password, request=None):
        try:
            return super().authenticate_credentials(userid, password, request)
        except exceptions.AuthenticationFailed:
            if request is not None and getattr(request, "axes_locked_out", False):
                # Imported here: backoffice.security imports DRF's views, which import this.
                from .security import lockout_minutes

                minutes = lockout_minutes(request, {"username": userid})
                raise TooManyFailedLogins(wait=minutes * 60 if minutes else None) from None
            raise
