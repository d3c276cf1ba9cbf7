"""The admin of the audit trail: written by services only, never edited."""

import json

from django.contrib import admin
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from backoffice.admin_mixins import ViewOnlyAdminMixin

from .. import audit_labels
from ..models import (
    AuditEntry,
)


class ActionFilter(admin.SimpleListFilter):
    """The actions by their labels (the codes stay in the URL). Listed from the labels, not
    read from the table: no scan of the whole trail for its distinct codes."""

    title = _("action")
    parameter_name = "action"

    def lookups(self, request, model_admin):
        return audit_labels.action_choices()

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(action=self.value())
        return queryset


@admin.register(AuditEntry)
class AuditEntryAdmin(ViewOnlyAdminMixin, admin.ModelAdmin):
    """The audit trail is written by services only and never edited, not even by a superuser."""

    list_display = [
        "created_at",
        "label",
        "order",
        "cancellation_id",
        "actor_label",
        "via",
        "comment",
    ]
    list_display_links = ["created_at", "label"]
    list_select_related = ["order"]
    list_filter = [ActionFilter, "via", ("created_at", admin.DateFieldListFilter)]
    date_hierarchy = "created_at"
    search_fields = ["order__number", "actor_label"]
    show_full_result_count = False
    list_per_page = 100
    fields = [
        "created_at",
        "label",
        "action_code",
        "order",
        "cancellation",
        "actor",
        "actor_label",
        "via",
        "comment",
        "ticket_link",
        "time_spent",
        "pretty_data",
    ]
    readonly_fields = fields

    @admin.display(description=_("action"), ordering="action")
    def label(self, entry):
        return audit_labels.describe(entry.action, entry.data)

    @admin.display(description=_("action code"))
    def action_code(self, entry):
        """What the API shows as the entry's action."""
        return entry.action

    @admin.display(description=_("cancellation"), ordering="cancellation_id")
    def cancellation_id(self, entry):
        return entry.cancellation_id or "-"

    @admin.display(description=_("data"))
    def pretty_data(self, entry):
        text = json.dumps(entry.data, indent=2, sort_keys=True, ensure_ascii=False)
        return format_html("<pre>{}</pre>", text)
