"""What the admin's actions share: the acting user's Salesforce id, failure messages, the
confirmation page."""

from django.contrib import messages
from django.contrib.admin import helpers
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from ..models import (
    AuditEntry,
)

Via = AuditEntry.Via

# At most this many per-object failure messages; the rest are counted in one more message.
MAX_FAILURE_MESSAGES = 20
# How many of the selected objects the intermediate pages list by name.
MAX_LISTED = 100


def salesforce_user_id(user) -> str:
    profile = getattr(user, "staff_profile", None)
    return profile.salesforce_user_id if profile else ""


def report_failures(model_admin, request, failures) -> None:
    """One error message per object that the service refused, with the service's words."""
    for label, error in failures[:MAX_FAILURE_MESSAGES]:
        model_admin.message_user(
            request,
            _("%(object)s: %(error)s") % {"object": label, "error": " ".join(error.messages)},
            messages.ERROR,
        )
    if len(failures) > MAX_FAILURE_MESSAGES:
        rest = len(failures) - MAX_FAILURE_MESSAGES
        model_admin.message_user(
            request,
            ngettext(
                "%(count)d more was refused as well.", "%(count)d more were refused as well.", rest
            )
            % {"count": rest},
            messages.ERROR,
        )


def action_context(model_admin, request, *, title, form, objects, action):
    objects = list(objects)
    return {
        **model_admin.admin_site.each_context(request),
        "title": title,
        "opts": model_admin.model._meta,
        "form": form,
        "media": model_admin.media + form.media,
        "objects": objects[:MAX_LISTED],
        "object_count": len(objects),
        "unlisted_count": max(len(objects) - MAX_LISTED, 0),
        "action": action,
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "selected": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
        "select_across": request.POST.get("select_across", "0"),
    }
