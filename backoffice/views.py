"""The root URLconf's own views: the page after login and the 404 handler. They sit above every
app (the 404 answers in the Callisto dialect under /callisto/), like backoffice.urls."""

from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.http import JsonResponse
from django.shortcuts import redirect
from django.templatetags.static import static
from django.utils.translation import gettext as _
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_safe
from django.views.defaults import bad_request as django_bad_request
from django.views.defaults import page_not_found

from providers.inbound_callisto import problem_body as callisto_problem_body

from .api import PROBLEM_CONTENT_TYPE, PayloadTooLarge, TooManyFields, problem_body
from .permissions import staff_required


@staff_required
def home(request):
    """The page after login: the dashboard for those who may see cancellations, else the
    order list (a user with fewer rights must not land on a 403)."""
    if request.user.has_perm("cancellations.view_cancellation"):
        return redirect("staff:dashboard")
    return redirect("staff:order-list")


@require_safe
@cache_control(max_age=86400, public=True)
def favicon(request):
    """/favicon.ico, which browsers ask for on every page that names no icon (the admin's):
    the static file, under its versioned name. Not permanent: that name changes with it."""
    return redirect(static("favicon.ico"))


# Paths no view answered (`/api/v1/orders/abc/`: the id isn't a number) are API paths all the same.
CALLISTO_PREFIX = "/callisto/"
API_PREFIXES = ("/api/", CALLISTO_PREFIX)


def not_found(request, exception=None):
    """handler404: a problem object for an API path, the staff page for everything else."""
    if not request.path_info.startswith(API_PREFIXES):
        return page_not_found(request, exception)
    return api_problem(request, 404, str(_("Not found.")))


def bad_request(request, exception=None):
    """handler400: what Django refuses before or around a view (a body over
    DATA_UPLOAD_MAX_MEMORY_SIZE, too many query parameters, a bad Host) is a problem object
    for an API path (413 for the body), the staff page for everything else."""
    if not request.path_info.startswith(API_PREFIXES):
        return django_bad_request(request, exception)
    if isinstance(exception, RequestDataTooBig):
        return api_problem(request, 413, str(PayloadTooLarge.default_detail))
    if isinstance(exception, (TooManyFieldsSent, TooManyFilesSent)):
        return api_problem(request, 400, str(TooManyFields.default_detail))
    return api_problem(request, 400, str(_("The request could not be understood.")))


def api_problem(request, status_code: int, detail: str) -> JsonResponse:
    """A problem object outside DRF, in Callisto's dialect under /callisto/."""
    if request.path_info.startswith(CALLISTO_PREFIX):
        body = callisto_problem_body(status_code, detail)
    else:
        body = problem_body(status_code, detail)
    return JsonResponse(
        body,
        status=status_code,
        content_type=PROBLEM_CONTENT_TYPE,
        json_dumps_params={"ensure_ascii": False},
    )


class ApiNotFoundMiddleware:
    """With DEBUG on, Django answers a path no URL matches with its HTML debug page instead of
    handler404; an API client gets the same problem object as in production all the same."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if (
            response.status_code == 404
            and request.path_info.startswith(API_PREFIXES)
            and response.get("Content-Type", "").startswith("text/html")
        ):
            return not_found(request)
        return response
