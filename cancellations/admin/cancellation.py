"""The admin of cancellations: read-only, with the revoke action (revoke_cancellation)."""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import flatten_fieldsets
from django.template.response import TemplateResponse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from backoffice.admin_mixins import ReadOnlyTabularInline, ViewOnlyAdminMixin

from ..errors import CancellationError
from ..models import (
    Cancellation,
    CancellationItem,
    CancellationLine,
)
from ..services import revoking, verdicts
from .common import Via, action_context, report_failures


class CancellationItemInline(ReadOnlyTabularInline):
    model = CancellationItem
    fields = ["order_item", "quantity", "prorated_credit_amount"]
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("order_item")


class CancellationLineInline(ReadOnlyTabularInline):
    model = CancellationLine
    fields = [
        "type",
        "description",
        "unit_price_amount",
        "unit_price_currency",
        "quantity",
        "period_start",
        "period_end",
    ]
    readonly_fields = fields


class RevokeCancellationsForm(forms.Form):
    comment = forms.CharField(
        label=_("Comment"),
        required=False,
        max_length=255,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text=_("Why the cancellations are undone; kept in the audit trail."),
    )


@admin.register(Cancellation)
class CancellationAdmin(ViewOnlyAdminMixin, admin.ModelAdmin):
    """Read-only: cancellations are made, changed and revoked through services (the staff
    pages, the API and the revoke action), which also tell the providers."""

    list_display = [
        "id",
        "order_number",
        "reason",
        "status",
        "churn_time",
        "net_amount_display",
        "created_time",
    ]
    list_select_related = ["order", "reason", "created_by"]
    list_filter = [
        "status",
        "reason",
        ("churn_time", admin.DateFieldListFilter),
        ("created_time", admin.DateFieldListFilter),
    ]
    search_fields = ["=id", "order__number"]
    show_full_result_count = False
    list_per_page = 50
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "id",
                    "staff_page",
                    "order",
                    "status",
                    "is_whole_order",
                    "reason",
                    "description",
                    "canceled_by",
                ]
            },
        ),
        (
            _("Times"),
            {
                "fields": [
                    "canceled_time",
                    "churn_time",
                    "churn_time_policy",
                    "completed_time",
                    "created_time",
                    "updated_time",
                ]
            },
        ),
        (
            _("Money"),
            {
                "fields": [
                    "currency",
                    "prorated",
                    "prorated_credit_amount",
                    "line_item_subtotal_amount",
                    "net_amount_display",
                    "prorated_invoice_id",
                    "applied_invoice_id",
                ]
            },
        ),
        (
            _("Who and why"),
            {
                "fields": [
                    "created_by",
                    "external_user_id",
                    "audit_comment",
                    "audit_time_spent",
                    "audit_ticket_link",
                    "order_status_before",
                ]
            },
        ),
        (_("Revoked"), {"fields": ["revoked_time", "revoked_by", "revoke_comment"]}),
    ]
    readonly_fields = flatten_fieldsets(fieldsets)  # every field shown, none editable
    inlines = [CancellationItemInline, CancellationLineInline]
    actions = ["revoke_cancellations"]

    @admin.display(description=_("order"), ordering="order__number")
    def order_number(self, cancellation):
        return cancellation.order.number

    @admin.display(description=_("net amount"))
    def net_amount_display(self, cancellation):
        return f"{cancellation.net_amount} {cancellation.currency}"

    @admin.display(description=_("staff page"))
    def staff_page(self, cancellation):
        return format_html(
            '<a href="{}">{}</a>', cancellation.get_absolute_url(), _("Open on the staff pages")
        )

    def has_revoke_permission(self, request):
        return request.user.has_perm("cancellations.revoke_cancellation")

    @admin.action(description=_("Revoke selected cancellations"), permissions=["revoke"])
    def revoke_cancellations(self, request, queryset):
        cancellations = list(queryset.select_related("order").order_by("created_time", "pk"))
        form = RevokeCancellationsForm(request.POST if "apply" in request.POST else None)
        if form.is_bound and form.is_valid():
            revoked, failures = 0, []
            for cancellation in cancellations:
                try:
                    revoking.revoke_cancellation(
                        cancellation,
                        actor=request.user,
                        via=Via.ADMIN,
                        comment=form.cleaned_data["comment"],
                    )
                except CancellationError as error:
                    failures.append((cancellation.pk, error))
                else:
                    revoked += 1
            if revoked:
                self.message_user(
                    request,
                    ngettext(
                        "Revoked %(count)d cancellation.",
                        "Revoked %(count)d cancellations.",
                        revoked,
                    )
                    % {"count": revoked},
                    messages.SUCCESS,
                )
            report_failures(self, request, failures)
            return None
        context = action_context(
            self,
            request,
            title=_("Revoke cancellations"),
            form=form,
            objects=cancellations,
            action="revoke_cancellations",
        )
        for cancellation in context["objects"]:  # who will hear of the revoke, shown first
            cancellation.provider_verdicts = (
                verdicts.revoke_verdicts(cancellation) if cancellation.is_revocable else []
            )
        return TemplateResponse(
            request, "admin/cancellations/cancellation/revoke_cancellations.html", context
        )
