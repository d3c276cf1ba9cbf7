"""The root URLconf's own views: the page after login and the 404 handler. They sit above every
app (the 404 answers in the Callisto dialect under /callisto/), like backoffice.urls."""

from django.contrib.auth.decorators import login_required
from django.http import JsonResponse
from django.shortcuts import redirect
from django.utils.translation import gettext as _
from django.views.defaults import page_not_found

from providers.inbound_callisto import problem_body as callisto_problem_body

from .api import PROBLEM_CONTENT_TYPE, problem_body


@login_required
def home(request):
    """The page after login: the dashboard for those who may see cancellations, else the
    order list (a user with fewer rights must not land on a 403)."""
    if request.user.has_perm("cancellations.view_cancellation"):
        return redirect("staff:dashboard")
    return redirect("staff:order-list")


# Paths no view answered (`/api/v1/orders/abc/`: the id isn't a number) are API paths all the same.
CALLISTO_PREFIX = "/callisto/"
API_PREFIXES = ("/api/", CALLISTO_PREFIX)


def not_found(request, exception=None):
    """handler404: a problem object for an API path, the staff page for everything else."""
    if not request.path_info.startswith(API_PREFIXES):
        return page_not_found(request, exception)
    if request.path_info.startswith(CALLISTO_PREFIX):
        body = callisto_problem_body(404, str(_("Not found.")))
    else:
        body = problem_body(404, str(_("Not found.")))
    return JsonResponse(
        body,
        status=404,
        content_type=PROBLEM_CONTENT_TYPE,
        json_dumps_params={"ensure_ascii": False},
    )
