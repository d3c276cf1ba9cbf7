"""The admin of orders: their items, settlement items and cancellations; the order form
(update_order_details) and the cancel action (cancel_order). Their forms: order_forms.py."""

from django.contrib import admin, messages
from django.db.models import Count
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from backoffice.admin_mixins import ReadOnlyTabularInline

from .. import billing, bulk
from ..errors import CancellationError
from ..models import Cancellation, Order, OrderItem
from ..order_filter import OrderFilter
from ..services import order_changes, quoting, verdicts, writing
from ..states import CancellationStatus, OrderStatus
from .common import MAX_LISTED, Via, action_context, report_failures, salesforce_user_id
from .order_forms import CancelOrdersForm, OrderAdminForm

RUN_BULK_PERMISSION = "cancellations.run_bulk_cancellation"


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
        """Up to a page of orders is cancelled in this request; more (or "select all") start a
        bulk cancellation job, which cancels them in the background and reports each one."""
        orders = queryset.order_by("placed_at", "pk")
        count = orders.count()
        as_job = count > self.list_per_page
        if as_job and not request.user.has_perm(RUN_BULK_PERMISSION):
            self.message_user(request, self._job_refused_message(), messages.ERROR)
            return None
        form = CancelOrdersForm(request.POST if "apply" in request.POST else None)
        if form.is_bound and form.is_valid() and self._input_accepted(form, orders):
            if as_job:
                return self._start_job(request, orders, form)
            self._cancel_each(request, list(orders), form)
            return None
        context = action_context(
            self,
            request,
            title=_("Cancel orders"),
            form=form,
            objects=list(orders.prefetch_related("items")[:MAX_LISTED]),
            action="cancel_orders",
        )
        context.update(object_count=count, unlisted_count=max(count - MAX_LISTED, 0), as_job=as_job)
        self._attach_verdicts(request, context["objects"])
        return TemplateResponse(request, "admin/cancellations/order/cancel_orders.html", context)

    def _job_refused_message(self) -> str:
        return _(
            "More than %(count)d orders are cancelled by a bulk cancellation job, which needs "
            "the permission to run bulk cancellations. Select at most %(count)d orders."
        ) % {"count": self.list_per_page}

    @staticmethod
    def _attach_verdicts(request, orders) -> None:
        """Each listed order's provider verdicts, shown before confirming: who will be told."""
        external_user_id = salesforce_user_id(request.user)
        for order in orders:
            order.provider_verdicts = (
                verdicts.whole_order_verdicts(
                    order, actor=request.user, external_user_id=external_user_id
                )
                if order.is_cancellable
                else []
            )

    def _input_accepted(self, form, orders) -> bool:
        """Ask the service whether reason, description and time are acceptable before cancelling
        anything, so that bad input changes nothing. These rules don't depend on the order, so
        one order that can still be cancelled is enough to judge them."""
        sample = orders.filter(status__in=OrderStatus.cancellable).first()
        if sample is None:
            return True  # every order will be refused with its own message
        try:
            quoting.quote_cancellation(sample, **form.service_arguments())
        except CancellationError as error:
            return not form.add_service_errors(error)
        return True

    def _start_job(self, request, orders, form) -> HttpResponseRedirect | None:
        order_filter = OrderFilter(
            order_ids=tuple(orders.values_list("pk", flat=True)), audit=form.audit_info()
        )
        try:
            job = bulk.start_bulk_cancellation(
                order_filter, actor=request.user, via=Via.ADMIN, **form.service_arguments()
            )
        except CancellationError as error:
            self.message_user(request, " ".join(error.messages), messages.ERROR)
            return None
        self.message_user(
            request,
            _(
                "Bulk cancellation #%(id)s has started for %(count)d orders. Its page shows "
                "the progress and each order's result."
            )
            % {"id": job.pk, "count": len(order_filter.order_ids)},
            messages.SUCCESS,
        )
        return HttpResponseRedirect(reverse("staff:bulk-detail", args=[job.pk]))

    def _cancel_each(self, request, orders, form) -> None:
        done, scheduled, failures = 0, 0, []
        for order in orders:
            try:
                cancellation = writing.cancel_order(
                    order,
                    actor=request.user,
                    via=Via.ADMIN,
                    external_user_id=salesforce_user_id(request.user),
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
        report_failures(self, request, failures)
