from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect


@login_required
def home(request):
    """The page after login: the dashboard for those who may see cancellations, else the
    order list (a user with fewer rights must not land on a 403)."""
    if request.user.has_perm("cancellations.view_cancellation"):
        return redirect("staff:dashboard")
    return redirect("staff:order-list")
