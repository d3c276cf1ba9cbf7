"""The staff pages: find an order, look at it, cancel it, undo a cancellation.

Thin on purpose: parse the request with a form, call selectors to read and services to write,
render. Every rule lives in cancellations/services/."""

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from backoffice.permissions import staff_required
from backoffice.templatetags.moments import moment
from providers.base import VerdictReason
from providers.models import Delivery
from providers.services import RETRYABLE as RETRYABLE_DELIVERY_STATUSES
from providers.services import resolve_delivery, retry_delivery

from . import audit_labels, billing, delivery_views, ownership, preview_money, selectors
from .errors import CancellationError
from .forms import CancelOrderForm, OrderFilterForm, ResolveTaskForm, RevokeForm
from .models import AuditEntry
from .pagination import BigTablePaginator
from .services import quoting, refusals, revoking, verdicts, writing
from .states import CancellationStatus

ORDERS_PER_PAGE = 50
AUDIT_ENTRIES_SHOWN = 50


def _safe_link(value: str) -> str:
    """Only web links become clickable; anything else (javascript:…) stays text."""
    return value if value.lower().startswith(("https://", "http://")) else ""


def _sections(user) -> dict[str, bool]:
    """The parts of a page that show other models: each needs that model's view permission
    (answered from the permissions the backend keeps, no query per section)."""
    return {
        "show_audit": user.has_perm("cancellations.view_auditentry"),
        "show_deliveries": user.has_perm("providers.view_delivery"),
        "show_attempts": user.has_perm("providers.view_deliveryattempt"),
    }


def _audit_rows(entries) -> list:
    """The entries with what the table shows: a readable action and a safe ticket link."""
    rows = list(entries)
    for entry in rows:
        entry.label = audit_labels.describe(entry.action, entry.data)
        entry.ticket_url = _safe_link(entry.ticket_link)
    return rows


@staff_required
@permission_required("cancellations.view_order", raise_exception=True)
def order_list(request):
    form = OrderFilterForm(request.GET, channels=selectors.order_channels())
    form.is_valid()  # an invalid filter is shown with its error and otherwise ignored
    orders = form.filter(selectors.order_list(search=form.cleaned_data.get("q", "").strip()))
    page = BigTablePaginator(orders, ORDERS_PER_PAGE).get_page(request.GET.get("page"))
    return render(
        request,
        "cancellations/order_list.html",
        {"form": form, "page": page, "orders": page.object_list},
    )


@staff_required
@permission_required("cancellations.view_order", raise_exception=True)
def order_detail(request, pk):
    order = get_object_or_404(selectors.order_detail_queryset().prefetch_related("children"), pk=pk)
    cancellations = list(order.cancellations.all())
    scheduled = [c for c in cancellations if c.status == CancellationStatus.CONFIRMED]
    # Per order item: the scheduled cancellations that will take some of it.
    scheduled_by_item: dict[int, list] = {}
    for cancellation in scheduled:
        for row in cancellation.items.all():
            scheduled_by_item.setdefault(row.order_item_id, []).append(
                {"quantity": row.quantity, "cancellation": cancellation}
            )
    # Per order item: its settlement items (removed ones too) and why it can't be cancelled.
    settlements_by_item: dict[int, list] = {}
    for settlement in billing.settlement_items(order):
        settlements_by_item.setdefault(settlement.order_item_id, []).append(settlement)
    blocked = billing.blocked_items(order)
    items = [
        (
            item,
            scheduled_by_item.get(item.pk, []),
            settlements_by_item.get(item.pk, []),
            blocked.get(item.pk, []),
        )
        for item in order.items.all()
    ]

    sections = _sections(request.user)
    deliveries = {}
    if sections["show_deliveries"]:
        deliveries = delivery_views.order_page_deliveries(order, cancellations)
    audit_entries, audit_count = [], 0
    if sections["show_audit"]:
        trail = selectors.order_audit_trail(order)
        audit_count = trail.count()
        audit_entries = _audit_rows(trail[:AUDIT_ENTRIES_SHOWN])

    return render(
        request,
        "cancellations/order_detail.html",
        {
            "order": order,
            "totals": selectors.order_totals(order),
            "items": items,
            "external_ids": [
                (key, ", ".join(map(str, value)) if isinstance(value, list) else value)
                for key, value in order.external_ids.items()
            ],
            "cancellations": cancellations,
            "scheduled": scheduled,
            "audit_entries": audit_entries,
            "audit_count": audit_count,
            **sections,
            **deliveries,
            **_what_can_be_cancelled(request.user, order, scheduled_by_item),
        },
    )


def _what_can_be_cancelled(user, order, scheduled_by_item) -> dict:
    """Whether the order page offers Cancel order (the quote's rules: something is open and
    not promised to a scheduled cancellation yet), and if not, why."""
    reserved = {
        item_id: sum(row["quantity"] for row in rows) for item_id, rows in scheduled_by_item.items()
    }
    refused = refusals.whole_order_refusal(order, reserved=reserved)
    nothing_left = refused is not None and refused.code == refusals.Refusal.NOTHING_LEFT
    return {
        "can_cancel": refused is None and user.has_perm("cancellations.cancel_order"),
        "nothing_left": nothing_left and order.is_cancellable,
        "nothing_left_message": refused.message if nothing_left else "",
    }


@staff_required
@permission_required("cancellations.cancel_order", raise_exception=True)
@require_http_methods(["GET", "POST"])
def order_cancel(request, pk):
    order = get_object_or_404(selectors.order_detail_queryset(), pk=pk)
    # The quote's own refusal, before the form: the status, or nothing left unscheduled.
    refused = refusals.whole_order_refusal(order, reserved=quoting.scheduled_quantities(order))
    if refused:
        messages.error(request, refused.message)
        return redirect(order)

    if request.method == "GET":
        form = CancelOrderForm(order=order)
        return _render_cancel_form(request, order, form)

    form = CancelOrderForm(request.POST, order=order)
    action = request.POST.get("action", "preview")
    if not form.is_valid() or action == "edit":
        return _render_cancel_form(request, order, form)

    if action == "confirm":
        try:
            cancellation = writing.cancel_order(
                order,
                actor=request.user,
                via=AuditEntry.Via.WEB,
                external_user_id=_salesforce_user_id(request.user),
                **form.cancel_arguments(),
            )
        except CancellationError as error:
            form.add_service_errors(error)
            return _render_cancel_form(request, order, form)
        if cancellation.is_scheduled:
            message = _("Cancellation %(id)s is scheduled for %(when)s") % {
                "id": cancellation.pk,
                "when": moment(cancellation.churn_time),
            }
        else:
            message = _("Order %(number)s: cancellation %(id)s is done.") % {
                "number": order.number,
                "id": cancellation.pk,
            }
        messages.success(request, message)
        return redirect(cancellation)

    try:
        quote = quoting.quote_cancellation(order, **form.service_arguments())
    except CancellationError as error:
        form.add_service_errors(error)
        return _render_cancel_form(request, order, form)
    provider_verdicts = verdicts.quote_verdicts(
        quote, actor=request.user, external_user_id=_salesforce_user_id(request.user)
    )
    return render(
        request,
        "cancellations/order_cancel_preview.html",
        {
            "order": order,
            "form": form,
            "quote": quote,
            "money": preview_money.explain(quote),
            "provider_verdicts": provider_verdicts,
        },
    )


def _render_cancel_form(request, order, form):
    return render(request, "cancellations/order_cancel.html", {"order": order, "form": form})


def _salesforce_user_id(user) -> str:
    profile = getattr(user, "staff_profile", None)
    return profile.salesforce_user_id if profile else ""


@staff_required
@permission_required("cancellations.view_cancellation", raise_exception=True)
def cancellation_detail(request, pk):
    sections = _sections(request.user)
    cancellation = get_object_or_404(
        selectors.cancellation_detail_queryset(
            deliveries=sections["show_deliveries"], audit_trail=sections["show_audit"]
        ),
        pk=pk,
    )
    audit_entries = _audit_rows(cancellation.audit_entries.all()) if sections["show_audit"] else []
    deliveries = list(cancellation.deliveries.all()) if sections["show_deliveries"] else []
    if deliveries and sections["show_attempts"]:
        delivery_views.attach_attempt_rows(deliveries)
    elif deliveries:
        delivery_views.attach_attempt_counts(deliveries)
    return render(
        request,
        "cancellations/cancellation_detail.html",
        {
            "cancellation": cancellation,
            "order": cancellation.order,
            "audit_entries": audit_entries,
            "deliveries": deliveries,
            **sections,
            "ticket_url": _safe_link(cancellation.audit_ticket_link),
            "can_revoke": cancellation.is_revocable
            and request.user.has_perm("cancellations.revoke_cancellation")
            and ownership.may_act_on(request.user, cancellation),
            "can_retry": request.user.has_perm("providers.retry_delivery"),
            "can_resolve": _may_resolve(request.user),
            "retryable_statuses": RETRYABLE_DELIVERY_STATUSES,
            "deliveries_live": delivery_views.is_live(deliveries),
            "delivery_poll": delivery_views.poll_config(
                reverse("staff:cancellation-deliveries", args=[cancellation.pk])
            ),
        },
    )


@staff_required
@permission_required("providers.retry_delivery", raise_exception=True)
@require_http_methods(["POST"])
def delivery_retry(request, pk):
    """The retry button on the cancellation page: send a failed (or waiting) delivery now."""
    delivery = get_object_or_404(Delivery.objects.select_related("cancellation"), pk=pk)
    try:
        retry_delivery(delivery, actor=request.user, via=AuditEntry.Via.WEB)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(
            request,
            _("Delivery to %(provider)s will be sent again now.")
            % {"provider": delivery.get_provider_display()},
        )
    return redirect(delivery.cancellation.get_absolute_url())


def _may_resolve(user) -> bool:
    return user.is_staff and user.has_perm("providers.resolve_delivery")


@staff_required
@require_http_methods(["POST"])
def delivery_resolve(request, pk):
    """Close what needs someone: mark a staff task done (a change a provider couldn't be told,
    made there by hand) or a failed delivery resolved, saying what was done."""
    if not _may_resolve(request.user):
        raise PermissionDenied
    delivery = get_object_or_404(Delivery.objects.select_related("cancellation"), pk=pk)
    form = ResolveTaskForm(request.POST)
    if not form.is_valid():
        messages.error(request, " ".join(form.errors["comment"]))
        return redirect(delivery.cancellation.get_absolute_url())
    try:
        resolve_delivery(delivery, actor=request.user, via=AuditEntry.Via.WEB, **form.cleaned_data)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        provider = {"provider": delivery.get_provider_display()}
        if delivery.needs_manual_action:
            messages.success(request, _("The task at %(provider)s is marked done.") % provider)
        else:
            messages.success(
                request, _("The failed delivery to %(provider)s is marked resolved.") % provider
            )
    return redirect(delivery.cancellation.get_absolute_url())


@staff_required
@permission_required("cancellations.revoke_cancellation", raise_exception=True)
@require_http_methods(["GET", "POST"])
def cancellation_revoke(request, pk):
    cancellation = get_object_or_404(selectors.cancellation_detail_queryset(), pk=pk)
    if not ownership.may_act_on(request.user, cancellation):
        raise PermissionDenied  # like a missing permission; the service would refuse it too
    if not cancellation.is_revocable:
        messages.error(
            request,
            _("This cancellation is %(status)s and can't be undone.")
            % {"status": cancellation.get_status_display().lower()},
        )
        return redirect(cancellation)

    form = RevokeForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            revoking.revoke_cancellation(
                cancellation,
                actor=request.user,
                via=AuditEntry.Via.WEB,
                comment=form.cleaned_data["comment"],
            )
        except CancellationError as error:
            form.add_service_errors(error)
        else:
            messages.success(request, _("Cancellation %(id)s is undone.") % {"id": cancellation.pk})
            return redirect(cancellation)
    provider_verdicts = verdicts.revoke_verdicts(cancellation)
    return render(
        request,
        "cancellations/cancellation_revoke.html",
        {
            "cancellation": cancellation,
            "order": cancellation.order,
            "form": form,
            "provider_verdicts": provider_verdicts,
            # Providers that heard of the cancellation and can't hear of its undo keep it.
            "kept_by": [v.label for v in provider_verdicts if v.reason == VerdictReason.NO_REVOKE],
        },
    )
