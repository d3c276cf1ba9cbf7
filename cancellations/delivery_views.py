"""The deliveries section of the cancellation page, live: where each provider stands, as JSON
for static/js/delivery_status.js to poll (like the bulk page's progress), and the figures the
section and the JSON share so that both say the same.

*Attempts* is the number of attempts in the history (DeliveryAttempt rows), not
Delivery.attempts: that one is the attempt budget of the current round, which a staff retry
starts afresh, so it would say 1 while the history lists 2."""

from django.conf import settings
from django.contrib.auth.decorators import permission_required
from django.db.models import Count
from django.http import Http404, JsonResponse
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.text import Truncator
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from backoffice.permissions import staff_required
from backoffice.templatetags.moments import moment
from providers.models import Delivery, DeliveryAttempt
from providers.services import RETRYABLE
from providers.states import DeliveryStatus

from .models import Cancellation, Order

# What can still change without anyone asking: the page polls while one of these is shown.
LIVE_STATUSES = (DeliveryStatus.PENDING, DeliveryStatus.IN_FLIGHT)
ERROR_SHOWN = 300  # characters of the last answer in the table
ATTEMPTS_TEMPLATE = "cancellations/_delivery_attempts.html"


def poll_seconds() -> float:
    return float(getattr(settings, "DELIVERY_STATUS_POLL_SECONDS", 3))


def is_live(deliveries) -> bool:
    return any(delivery.status in LIVE_STATUSES for delivery in deliveries)


def attach_attempt_rows(deliveries) -> None:
    """Each delivery's history, newest first, as `attempt_rows` (one query)."""
    attempts = DeliveryAttempt.objects.filter(delivery__in=[d.pk for d in deliveries]).order_by(
        "delivery_id", "-number", "-started_at"
    )
    by_delivery: dict[int, list] = {}
    for attempt in attempts:
        by_delivery.setdefault(attempt.delivery_id, []).append(attempt)
    for delivery in deliveries:
        delivery.attempt_rows = by_delivery.get(delivery.pk, [])
        delivery.attempts_made = len(delivery.attempt_rows)


def attach_attempt_counts(deliveries) -> None:
    """`attempts_made`, the history's count, for someone who may not see the history."""
    counts = dict(
        DeliveryAttempt.objects.filter(delivery__in=[d.pk for d in deliveries])
        .values_list("delivery_id")
        .annotate(Count("id"))
    )
    for delivery in deliveries:
        delivery.attempts_made = counts.get(delivery.pk, 0)


def status_label(delivery: Delivery) -> tuple[str, str]:
    """(badge, label) of the status cell: a pending delivery that was tried is retrying."""
    if delivery.status == DeliveryStatus.PENDING and delivery.attempts:
        return "in_progress", _("Retrying")
    return delivery.status, str(delivery.get_status_display())


def when(delivery: Delivery) -> tuple[str, object]:
    """(label, moment) of the When cell, or ("", None)."""
    if delivery.delivered_at:
        return _("Delivered"), delivery.delivered_at
    if delivery.status == DeliveryStatus.PENDING:
        return _("Next try"), delivery.next_attempt_at
    return "", None


def last_answer(delivery: Delivery) -> str:
    code = f"HTTP {delivery.last_status_code} " if delivery.last_status_code else ""
    return code + Truncator(delivery.message_text or "—").chars(ERROR_SHOWN)


def delivery_data(delivery: Delivery, *, history: bool) -> dict:
    badge, label = status_label(delivery)
    when_label, at = when(delivery)
    data = {
        "id": delivery.pk,
        "status": delivery.status,
        "badge": badge,
        "label": label,
        "attempts": delivery.attempts_made,
        "whenLabel": when_label,
        "when": moment(at),
        "whenIso": at.isoformat() if at else "",
        "lastAnswer": last_answer(delivery),
        "credentialsProblem": delivery.credentials_problem,
        "retryable": delivery.status in RETRYABLE,
    }
    if history:
        data["history"] = render_to_string(ATTEMPTS_TEMPLATE, {"delivery": delivery})
    return data


def deliveries_json(request, deliveries: list[Delivery], *, history: bool) -> JsonResponse:
    if history:
        attach_attempt_rows(deliveries)
    else:
        attach_attempt_counts(deliveries)
    return JsonResponse(
        {
            "live": is_live(deliveries),
            "deliveries": [delivery_data(d, history=history) for d in deliveries],
        }
    )


@staff_required
@permission_required("cancellations.view_cancellation", raise_exception=True)
@permission_required("providers.view_delivery", raise_exception=True)
@require_GET
@never_cache
def delivery_status(request, pk):
    """The cancellation's deliveries as the page's deliveries section shows them."""
    deliveries = list(Delivery.objects.filter(cancellation_id=pk).order_by("provider", "action"))
    if not deliveries and not Cancellation.objects.filter(pk=pk).exists():
        raise Http404
    history = request.user.has_perm("providers.view_deliveryattempt")
    return deliveries_json(request, deliveries, history=history)


@staff_required
@permission_required("cancellations.view_order", raise_exception=True)
@permission_required("providers.view_delivery", raise_exception=True)
@require_GET
@never_cache
def order_delivery_status(request, pk):
    """The deliveries of all the order's cancellations, as its Cancellations table shows them."""
    deliveries = list(order_deliveries(pk))
    if not deliveries and not Order.objects.filter(pk=pk).exists():
        raise Http404
    return deliveries_json(request, deliveries, history=False)


def order_deliveries(order_id):
    return Delivery.objects.filter(cancellation__order_id=order_id).order_by(
        "cancellation_id", "provider", "action"
    )


def order_page_deliveries(order, cancellations) -> dict:
    """For the order page: each cancellation's deliveries as `delivery_rows`, and the poll."""
    deliveries = list(order_deliveries(order.pk))
    by_cancellation: dict[str, list] = {}
    for delivery in deliveries:
        by_cancellation.setdefault(delivery.cancellation_id, []).append(delivery)
    for cancellation in cancellations:
        cancellation.delivery_rows = by_cancellation.get(cancellation.pk, [])
    return {
        "deliveries_live": is_live(deliveries),
        "delivery_poll": poll_config(reverse("staff:order-deliveries", args=[order.pk])),
    }


def poll_config(url: str) -> dict:
    """What delivery_status.js reads (json_script): where to poll and how often (ms)."""
    return {"url": url, "interval": int(poll_seconds() * 1000)}
