"""The Django admin of orders, cancellations and the audit trail.

Thin like every other interface: the admin lists and shows; every change goes through
cancellations/services/ (the order form through update_order_details, the actions through
cancel_order and revoke_cancellation). Cancellations and audit entries are never edited here."""

import json

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import ValidationError
from django.db.models import Count, Q
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from backoffice.admin_mixins import ReadOnlyTabularInline, ViewOnlyAdminMixin
from reasons.models import CancellationReason

from . import billing
from .audit import AuditInfo
from .errors import CancellationError
from .external_ids import clean_external_ids
from .models import (
    AuditEntry,
    BulkCancellation,
    BulkCancellationStatus,
    BulkCancellationTarget,
    Cancellation,
    CancellationItem,
    CancellationLine,
    Order,
    OrderItem,
)
from .services import order_changes, quoting, revoking, writing
from .states import CancellationStatus

Via = AuditEntry.Via
# At most this many per-object failure messages; the rest are counted in one more message.
MAX_FAILURE_MESSAGES = 20
# How many of the selected objects the intermediate pages list by name.
MAX_LISTED = 100


def _salesforce_user_id(user) -> str:
    profile = getattr(user, "staff_profile", None)
    return profile.salesforce_user_id if profile else ""


def _report_failures(model_admin, request, failures) -> None:
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


def _action_context(model_admin, request, *, title, form, objects, action):
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


# --- orders -------------------------------------------------------------------------------------


class OrderItemInline(ReadOnlyTabularInline):
    """Items as they came in. Quantities and prices are what cancellations were computed from,
    so they are never edited by hand; cancelled_quantity moves only through cancellations."""

    model = OrderItem
    fields = [
        "sku",
        "description",
        "quantity",
        "cancelled_quantity",
        "unit_price_amount",
        "unit_price_currency",
        "period_start",
        "period_end",
        "billing_item_id",
    ]
    readonly_fields = fields


class OrderCancellationInline(ReadOnlyTabularInline):
    model = Cancellation
    fields = ["id", "status", "reason", "churn_time", "created_by", "created_time"]
    readonly_fields = fields
    show_change_link = True
    verbose_name_plural = _("cancellations")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("reason", "created_by")


def _settlement_line(settlement) -> str:
    text = format_html(
        "#{} · {} {} · {} – {} · {}",
        settlement.pk,
        settlement.amount,
        settlement.currency,
        timezone.localtime(settlement.period_start).date(),
        timezone.localtime(settlement.period_end).date(),
        settlement.get_state_display(),
    )
    if settlement.is_removed:
        return format_html("<del>{}</del> ({})", text, _("removed"))
    return text


class OrderAdminForm(forms.ModelForm):
    class Meta:
        model = Order
        fields = ["customer_name", "customer_email", "external_ids"]

    def clean_external_ids(self):
        # The same validator order_changes.update_order_details applies, so errors show on the form.
        try:
            return clean_external_ids(self.cleaned_data["external_ids"])
        except ValidationError as error:
            # Keys come as "external_ids.callisto": name the provider key in the message.
            raise ValidationError(
                [
                    f"{name.removeprefix('external_ids.')}: {message}"
                    if name != "external_ids"
                    else message
                    for name, field_messages in error.message_dict.items()
                    for message in field_messages
                ]
            ) from error


class CancelOrdersForm(forms.Form):
    """The questions the "Cancel selected orders" action asks once for all selected orders."""

    EFFECTIVE_NOW = "now"
    EFFECTIVE_AT = "at"

    reason = forms.ModelChoiceField(label=_("Reason"), queryset=CancellationReason.objects.none())
    description = forms.CharField(
        label=_("Description"),
        required=False,
        max_length=255,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text=_("Required for reasons that need extra information. Sent to the providers."),
    )
    effective = forms.ChoiceField(
        label=_("Effective"),
        choices=[(EFFECTIVE_NOW, _("Now")), (EFFECTIVE_AT, _("At a date and time"))],
        initial=EFFECTIVE_NOW,
        widget=forms.RadioSelect,
    )
    effective_at = forms.DateTimeField(
        label=_("Effective at"),
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )
    prorated = forms.BooleanField(
        label=_("Prorated"),
        required=False,
        help_text=_("Credit the unused part of each item's service period."),
    )
    comment = forms.CharField(label=_("Audit comment"), required=False, max_length=255)
    ticket_link = forms.CharField(label=_("Ticket link"), required=False, max_length=255)

    # Service argument → form field, for showing the service's errors next to the field.
    SERVICE_FIELDS = {
        "reason": "reason",
        "description": "description",
        "churn_time": "effective_at",
        "prorated": "prorated",
    }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["reason"].queryset = CancellationReason.objects.active().in_catalog_order()
        self.fields["effective_at"].help_text = _("In your time zone, %(zone)s.") % {
            "zone": timezone.get_current_timezone_name()
        }

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("effective") == self.EFFECTIVE_AT and not cleaned.get("effective_at"):
            self.add_error("effective_at", _("Give the date and time, or choose “Now”."))
        return cleaned

    def service_arguments(self) -> dict:
        data = self.cleaned_data
        return {
            "reason": data["reason"],
            "description": data["description"],
            "churn_time": data["effective_at"] if data["effective"] == self.EFFECTIVE_AT else None,
            "prorated": data["prorated"],
        }

    def audit_info(self) -> AuditInfo:
        return AuditInfo(
            comment=self.cleaned_data["comment"], ticket_link=self.cleaned_data["ticket_link"]
        )

    def add_service_errors(self, error: CancellationError) -> bool:
        """Put the service's input errors on their fields; False if none concerned the form."""
        found = False
        for name, field_errors in error.message_dict.items():
            field = self.SERVICE_FIELDS.get(name)
            if field:
                for message in field_errors:
                    self.add_error(field, message)
                found = True
        return found


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    form = OrderAdminForm
    list_display = [
        "number",
        "customer_name",
        "channel",
        "status",
        "placed_at",
        "item_count",
        "parent",
    ]
    list_select_related = ["parent"]
    list_filter = ["status", "channel", ("placed_at", admin.DateFieldListFilter)]
    date_hierarchy = "placed_at"
    search_fields = ["number", "customer_name", "customer_email"]
    show_full_result_count = False
    list_per_page = 50
    readonly_fields = [
        "number",
        "status",
        "channel",
        "parent",
        "placed_at",
        "currency",
        "created_at",
        "updated_at",
        "billing_overview",
    ]
    fieldsets = [
        (None, {"fields": ["number", "status", "channel", "parent", "placed_at", "currency"]}),
        (_("Customer"), {"fields": ["customer_name", "customer_email"]}),
        (
            _("Provider references"),
            {
                "fields": ["external_ids"],
                "description": _(
                    'For example {"callisto": "4711", "rebilly": "ord_1", '
                    '"js7ControllerId": "jobs", "js7OrderIds": ["#1"]}.'
                ),
            },
        ),
        (_("Billing"), {"fields": ["billing_overview"]}),
        (_("History"), {"fields": ["created_at", "updated_at"]}),
    ]
    inlines = [OrderItemInline, OrderCancellationInline]
    actions = ["cancel_orders"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(item_count=Count("items"))

    @admin.display(description=_("items"), ordering="item_count")
    def item_count(self, order):
        return order.item_count

    @admin.display(description=_("settlement items and what blocks cancelling"))
    def billing_overview(self, order):
        """Per item: its settlement items (removed ones struck through) and why it can't be
        cancelled now. Five queries whatever the size of the order."""
        if order.pk is None:
            return "—"
        settlements: dict[int, list] = {}
        for settlement in billing.settlement_items(order):
            settlements.setdefault(settlement.order_item_id, []).append(settlement)
        blocked = billing.blocked_items(order)
        rows = [
            format_html(
                "<li><strong>{}</strong> {}<ul>{}</ul>{}</li>",
                item.sku,
                item.description,
                format_html_join(
                    "", "<li>{}</li>", ((_settlement_line(s),) for s in settlements[item.pk])
                )
                if item.pk in settlements
                else format_html("<li>{}</li>", _("no settlement items")),
                format_html(
                    '<p class="errornote">{} {}</p>',
                    _("Can't be cancelled:"),
                    " ".join(blocked[item.pk]),
                )
                if item.pk in blocked
                else "",
            )
            for item in order.items.order_by("id")
        ]
        return format_html("<ul>{}</ul>", format_html_join("", "{}", ((row,) for row in rows)))

    # Orders come in through the API (order_changes.create_order) and are kept for the audit trail.
    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_cancel_permission(self, request):
        return request.user.has_perm("cancellations.cancel_order")

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        try:
            order_changes.update_order_details(
                obj,
                actor=request.user,
                via=Via.ADMIN,
                customer_name=data["customer_name"],
                customer_email=data["customer_email"],
                external_ids=data["external_ids"],
            )
        except CancellationError as error:
            # Only reached if the order changed between validation and saving.
            self.message_user(request, " ".join(error.messages), messages.ERROR)

    @admin.action(description=_("Cancel selected orders"), permissions=["cancel"])
    def cancel_orders(self, request, queryset):
        orders = list(queryset.order_by("placed_at", "pk"))
        form = CancelOrdersForm(request.POST if "apply" in request.POST else None)
        if form.is_bound and form.is_valid() and self._input_accepted(form, orders):
            self._cancel_each(request, orders, form)
            return None
        context = _action_context(
            self,
            request,
            title=_("Cancel orders"),
            form=form,
            objects=orders,
            action="cancel_orders",
        )
        return TemplateResponse(request, "admin/cancellations/order/cancel_orders.html", context)

    def _input_accepted(self, form, orders) -> bool:
        """Ask the service whether reason, description and time are acceptable before cancelling
        anything, so that bad input changes nothing. These rules don't depend on the order, so
        one order that can still be cancelled is enough to judge them."""
        sample = next((order for order in orders if order.is_cancellable), None)
        if sample is None:
            return True  # every order will be refused with its own message
        try:
            quoting.quote_cancellation(sample, **form.service_arguments())
        except CancellationError as error:
            return not form.add_service_errors(error)
        return True

    def _cancel_each(self, request, orders, form) -> None:
        done, scheduled, failures = 0, 0, []
        for order in orders:
            try:
                cancellation = writing.cancel_order(
                    order,
                    actor=request.user,
                    via=Via.ADMIN,
                    external_user_id=_salesforce_user_id(request.user),
                    audit=form.audit_info(),
                    **form.service_arguments(),
                )
            except CancellationError as error:
                failures.append((order.number, error))
                continue
            if cancellation.status == CancellationStatus.CONFIRMED:
                scheduled += 1
            else:
                done += 1
        if done:
            self.message_user(
                request,
                ngettext("Cancelled %(count)d order.", "Cancelled %(count)d orders.", done)
                % {"count": done},
                messages.SUCCESS,
            )
        if scheduled:
            self.message_user(
                request,
                ngettext(
                    "Scheduled the cancellation of %(count)d order.",
                    "Scheduled the cancellation of %(count)d orders.",
                    scheduled,
                )
                % {"count": scheduled},
                messages.SUCCESS,
            )
        _report_failures(self, request, failures)


# --- cancellations ------------------------------------------------------------------------------


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
        "created_by",
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
    readonly_fields = [
        "id",
        "staff_page",
        "order",
        "status",
        "is_whole_order",
        "reason",
        "description",
        "canceled_by",
        "canceled_time",
        "churn_time",
        "churn_time_policy",
        "completed_time",
        "created_time",
        "updated_time",
        "currency",
        "prorated",
        "prorated_credit_amount",
        "line_item_subtotal_amount",
        "net_amount_display",
        "prorated_invoice_id",
        "applied_invoice_id",
        "created_by",
        "external_user_id",
        "audit_comment",
        "audit_time_spent",
        "audit_ticket_link",
        "order_status_before",
        "revoked_time",
        "revoked_by",
        "revoke_comment",
    ]
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
            _report_failures(self, request, failures)
            return None
        context = _action_context(
            self,
            request,
            title=_("Revoke cancellations"),
            form=form,
            objects=cancellations,
            action="revoke_cancellations",
        )
        return TemplateResponse(
            request, "admin/cancellations/cancellation/revoke_cancellations.html", context
        )


# --- audit trail --------------------------------------------------------------------------------


@admin.register(AuditEntry)
class AuditEntryAdmin(ViewOnlyAdminMixin, admin.ModelAdmin):
    """The audit trail is written by services only and never edited, not even by a superuser."""

    list_display = [
        "created_at",
        "action",
        "order",
        "cancellation_id",
        "actor_label",
        "via",
        "comment",
    ]
    list_display_links = ["created_at", "action"]
    list_select_related = ["order"]
    list_filter = ["action", "via", ("created_at", admin.DateFieldListFilter)]
    date_hierarchy = "created_at"
    search_fields = ["order__number", "actor_label"]
    show_full_result_count = False
    list_per_page = 100
    fields = [
        "created_at",
        "action",
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

    @admin.display(description=_("cancellation"), ordering="cancellation_id")
    def cancellation_id(self, entry):
        return entry.cancellation_id or "-"

    @admin.display(description=_("data"))
    def pretty_data(self, entry):
        text = json.dumps(entry.data, indent=2, sort_keys=True, ensure_ascii=False)
        return format_html("<pre>{}</pre>", text)


# --- bulk cancellations -------------------------------------------------------------------------


@admin.register(BulkCancellation)
class BulkCancellationAdmin(ViewOnlyAdminMixin, admin.ModelAdmin):
    """Read-only: jobs start from the staff page or the API (bulk.start_bulk_cancellation)
    and are run by the worker. The one action queues a stalled job again."""

    list_display = [
        "id",
        "status",
        "progress",
        "total",
        "cancelled_count",
        "skipped_count",
        "failed_count",
        "reason",
        "created_by",
        "created_at",
    ]
    list_select_related = ["reason", "created_by"]
    list_filter = ["status", "reason"]
    search_fields = ["=id"]
    show_full_result_count = False
    list_per_page = 50
    fieldsets = [
        (None, {"fields": ["id", "staff_page", "targets_link", "status", "progress"]}),
        (
            _("Counts"),
            {"fields": ["total", "cancelled_count", "skipped_count", "failed_count"]},
        ),
        (_("Filter"), {"fields": ["pretty_filter", "missing_order_refs"]}),
        (
            _("Cancellation"),
            {"fields": ["reason", "description", "canceled_by", "churn_time", "prorated"]},
        ),
        (
            _("Who and when"),
            {
                "fields": [
                    "created_by",
                    "via",
                    "created_at",
                    "started_at",
                    "finished_at",
                    "worker",
                    "lease_until",
                    "audit_comment",
                    "audit_time_spent",
                    "audit_ticket_link",
                ]
            },
        ),
    ]
    # Everything shown is read-only: the fields are the fieldsets'.
    readonly_fields = [name for _title, options in fieldsets for name in options["fields"]]
    actions = ["resume_jobs"]

    @admin.display(description=_("progress"))
    def progress(self, job):
        return f"{job.processed} / {job.total} ({job.progress_percent} %)"

    @admin.display(description=_("staff page"))
    def staff_page(self, job):
        return format_html(
            '<a href="{}">{}</a>', job.get_absolute_url(), _("Open on the staff pages")
        )

    @admin.display(description=_("orders"))
    def targets_link(self, job):
        url = reverse("admin:cancellations_bulkcancellationtarget_changelist")
        return format_html(
            '<a href="{}?bulk_cancellation__id__exact={}">{}</a>',
            url,
            job.pk,
            _("The orders of this job and what became of them"),
        )

    @admin.display(description=_("filter"))
    def pretty_filter(self, job):
        text = json.dumps(job.filter, indent=2, sort_keys=True, ensure_ascii=False)
        return format_html("<pre>{}</pre>", text)

    def has_run_permission(self, request):
        return request.user.has_perm("cancellations.run_bulk_cancellation")

    @admin.action(description=_("Resume selected stalled jobs"), permissions=["run"])
    def resume_jobs(self, request, queryset):
        """Queue the selected jobs that should run and don't: queued, or running with an
        expired lease (the worker died). The task's claim makes a double start harmless."""
        from .tasks import run_bulk_cancellation

        now = timezone.now()
        selected = queryset.count()
        stalled = list(
            queryset.filter(
                Q(status=BulkCancellationStatus.QUEUED)
                | Q(status=BulkCancellationStatus.RUNNING, lease_until__lt=now)
            ).values_list("pk", flat=True)
        )
        queued, failures = 0, []
        for job_id in stalled:
            try:
                run_bulk_cancellation.delay(job_id)
            except Exception as exc:  # the broker is down: say so, don't fail the page
                failures.append((job_id, exc))
            else:
                queued += 1
        if queued:
            self.message_user(
                request,
                ngettext("Resumed %(count)d job.", "Resumed %(count)d jobs.", queued)
                % {"count": queued},
                messages.SUCCESS,
            )
        left = selected - len(stalled)
        if left:
            self.message_user(
                request,
                ngettext(
                    "%(count)d job was left alone: finished, or a worker is on it.",
                    "%(count)d jobs were left alone: finished, or a worker is on them.",
                    left,
                )
                % {"count": left},
                messages.WARNING,
            )
        for job_id, exc in failures[:MAX_FAILURE_MESSAGES]:
            self.message_user(
                request,
                _("Job %(id)s could not be queued: %(error)s") % {"id": job_id, "error": exc},
                messages.ERROR,
            )


@admin.register(BulkCancellationTarget)
class BulkCancellationTargetAdmin(ViewOnlyAdminMixin, admin.ModelAdmin):
    """One order of a bulk job and its outcome; written by the job only."""

    list_display = ["order", "job", "outcome", "message", "processed_at"]
    list_select_related = ["order"]
    list_filter = ["outcome"]
    search_fields = ["order__number"]
    show_full_result_count = False
    list_per_page = 100
    fields = ["bulk_cancellation", "order", "outcome", "message", "processed_at"]
    readonly_fields = fields

    @admin.display(description=_("bulk cancellation"), ordering="bulk_cancellation_id")
    def job(self, target):
        # Linked by id: loading the job would load its filter once per row.
        url = reverse(
            "admin:cancellations_bulkcancellation_change", args=[target.bulk_cancellation_id]
        )
        return format_html('<a href="{}">#{}</a>', url, target.bulk_cancellation_id)
