"""The staff pages of bulk cancellations: the jobs, a new one (form → preview → confirm), one
job with its progress and results, and the progress as JSON for the page to poll.

Thin like views.py: bulk_forms.BulkCancelForm parses the input, bulk.py previews, starts and
runs the job."""

from functools import wraps

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from backoffice.permissions import staff_required

from . import bulk, bulk_batch, selectors, target_messages
from .bulk_forms import BulkCancelForm
from .errors import CancellationError
from .filter_parsing import parse_state
from .filter_words import explain_bound
from .models import AuditEntry, BulkCancellation, BulkCancellationStatus, TargetOutcome
from .states import OrderStatus

VIEW_PERMISSION = "cancellations.view_bulkcancellation"
RUN_PERMISSION = "cancellations.run_bulk_cancellation"
JOBS_PER_PAGE = 25
TARGETS_PER_PAGE = 50
REFS_SHOWN = 50  # order ids or numbers of a filter listed by name on the job page

# Result tabs of the job page: name → (label, outcomes shown).
PROBLEMS = "problems"
RESULT_TABS = {
    PROBLEMS: (gettext_lazy("Failed and skipped"), (TargetOutcome.FAILED, TargetOutcome.SKIPPED)),
    TargetOutcome.FAILED: (gettext_lazy("Failed"), (TargetOutcome.FAILED,)),
    TargetOutcome.SKIPPED: (gettext_lazy("Skipped"), (TargetOutcome.SKIPPED,)),
    TargetOutcome.CANCELLED: (gettext_lazy("Cancelled"), (TargetOutcome.CANCELLED,)),
}


def _safe_link(value: str) -> str:
    """Only web links become clickable; anything else (javascript:…) stays text."""
    return value if value.lower().startswith(("https://", "http://")) else ""


def can_view_bulk(user) -> bool:
    return user.has_perm(VIEW_PERMISSION) or user.has_perm(RUN_PERMISSION)


def bulk_view_required(view):
    """Staff, and allowed to see bulk cancellations (either permission); 403 otherwise."""

    @staff_required
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not can_view_bulk(request.user):
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return wrapper


def bulk_run_required(view):
    @staff_required
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.has_perm(RUN_PERMISSION):
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return wrapper


@bulk_view_required
@require_GET
def bulk_list(request):
    jobs = BulkCancellation.objects.select_related("reason", "created_by").order_by(
        "-created_at", "-id"
    )
    page = Paginator(jobs, JOBS_PER_PAGE).get_page(request.GET.get("page"))
    return render(
        request,
        "cancellations/bulk_list.html",
        {
            "page": page,
            "jobs": page.object_list,
            "can_run": request.user.has_perm(RUN_PERMISSION),
        },
    )


@bulk_run_required
@require_http_methods(["GET", "POST"])
def bulk_new(request):
    channels = selectors.order_channels()
    if request.method == "GET":
        return _render_new(request, BulkCancelForm(channels=channels))

    form = BulkCancelForm(request.POST, channels=channels)
    if not form.is_valid():
        return _render_new(request, form)

    if request.POST.get("confirm") == "1":
        try:
            job = bulk.start_bulk_cancellation(
                form.order_filter,
                actor=request.user,
                via=AuditEntry.Via.WEB,
                **form.start_arguments(),
            )
        except CancellationError as error:
            form.add_service_errors(error)
            return _render_new(request, form)
        messages.success(
            request,
            _("Bulk cancellation #%(id)s has started. This page shows its progress.")
            % {"id": job.pk},
        )
        return redirect(job)

    preview = bulk.preview_bulk_cancellation(form.order_filter)
    return _render_new(request, form, preview=preview)


def _preview_filter_rows(order_filter) -> list[tuple[str, str]]:
    """What the filter will match, dates resolved as of now (the job resolves them again when
    it starts, a moment later)."""
    try:
        bounds = order_filter.bounds(timezone.now())
    except (CancellationError, ValueError, OverflowError):
        bounds = (None, None)
    return filter_rows(order_filter.to_dict(), bounds)


def _render_new(request, form, *, preview=None):
    context = {"form": form, "preview": preview}
    if preview is not None:
        context["preview_statuses"] = _status_rows(preview.by_status)
        context["preview_filter_rows"] = _preview_filter_rows(form.order_filter)
        context["preview_sample"] = _staff_sample(preview, form.order_filter)
    return render(request, "cancellations/bulk_new.html", context)


def _staff_sample(preview, order_filter) -> list[tuple]:
    """The preview's orders with why each is skipped in staff words (the API says `kill`)."""
    rows = []
    for order, why in preview.sample:
        refused = order_filter.skip_refusal(order) if why else None
        staff_why = refused and target_messages.render(refused.code, refused.stored_params())
        rows.append((order, staff_why or why))
    return rows


def _status_rows(by_status: dict[str, int]) -> list[tuple[str, str, int]]:
    """(status, label, count) in the statuses' own order."""
    return [
        (value, label, by_status[value])
        for value, label in OrderStatus.choices
        if value in by_status
    ]


@bulk_view_required
@require_GET
def bulk_detail(request, pk):
    job = get_object_or_404(BulkCancellation.objects.select_related("reason", "created_by"), pk=pk)
    tab = request.GET.get("outcome", PROBLEMS)
    if tab not in RESULT_TABS:
        tab = PROBLEMS
    targets = (
        job.targets.filter(outcome__in=RESULT_TABS[tab][1])
        .select_related("order")
        .order_by("outcome", "order_id")
    )
    page = Paginator(targets, TARGETS_PER_PAGE).get_page(request.GET.get("page"))
    counts = {
        PROBLEMS: job.failed_count + job.skipped_count,
        TargetOutcome.FAILED: job.failed_count,
        TargetOutcome.SKIPPED: job.skipped_count,
        TargetOutcome.CANCELLED: job.cancelled_count,
    }
    return render(
        request,
        "cancellations/bulk_detail.html",
        {
            "job": job,
            "filter_rows": _filter_summary(job),
            "tabs": [(name, label, counts[name]) for name, (label, _o) in RESULT_TABS.items()],
            "tab": tab,
            "page": page,
            "targets": page.object_list,
            "cancelled_outcome": TargetOutcome.CANCELLED,
            # For bulk_progress.js, which shows the figures it polls in the page's language.
            "progress_texts": {
                "statuses": {str(v): str(label) for v, label in BulkCancellationStatus.choices},
                "progress": _("%(processed)s of %(total)s orders"),
            },
            "ticket_url": _safe_link(job.audit_ticket_link),
        },
    )


def _refs_shown(refs) -> str:
    shown = ", ".join(str(ref) for ref in refs[:REFS_SHOWN])
    if len(refs) > REFS_SHOWN:
        shown += " " + _("and %(count)s more") % {"count": len(refs) - REFS_SHOWN}
    return shown


def _folder_shown(folder) -> str:
    if folder.get("recursive", True):
        return _("%(folder)s and below") % {"folder": folder.get("folder")}
    return str(folder.get("folder"))


def _filter_summary(job: BulkCancellation) -> list[tuple[str, str]]:
    """The job's filter as (label, value) rows for people, dates as resolved at its start."""
    try:
        bounds = bulk_batch.order_filter_of(job).bounds(job.created_at)
    except (CancellationError, ValueError, OverflowError):
        bounds = (None, None)  # shown as given
    return filter_rows(job.filter or {}, bounds)


def filter_rows(data: dict, bounds) -> list[tuple[str, str]]:
    """An order filter (its camelCase dict) as (label, value) rows for people; `bounds`: its
    dates resolved (dateFrom, dateTo), or None where they could not be."""
    rows = []
    refs = data.get("orderIds") or []
    if refs:
        rows.append((_("Orders"), _refs_shown(refs)))
    folders = [_folder_shown(folder) for folder in data.get("folders") or ()]
    if folders:
        rows.append((_("Channels"), ", ".join(folders)))
    labels = dict(OrderStatus.choices)
    states = [str(labels.get(parse_state(state), state)) for state in data.get("states") or ()]
    if states:
        rows.append((_("Statuses"), ", ".join(states)))
    start, end = bounds
    for key, label, resolved in (
        ("dateFrom", _("Placed from"), start),
        ("dateTo", _("Placed before"), end),
    ):
        if data.get(key):
            explained = explain_bound(
                data[key], resolved, zone_name=data.get("timeZone"), is_to=key == "dateTo"
            )
            rows.append((label, explained))
    if data.get("deep"):
        rows.append((_("Child orders"), _("included")))
    if data.get("kill"):
        rows.append((_("Orders in progress"), _("included (running workflow orders stopped)")))
    if not rows:
        rows.append((_("Orders"), _("every order")))
    return rows


@bulk_view_required
@require_GET
@never_cache
def bulk_progress(request, pk):
    job = get_object_or_404(
        BulkCancellation.objects.only(
            "status", "total", "cancelled_count", "skipped_count", "failed_count"
        ),
        pk=pk,
    )
    return JsonResponse(progress_data(job))


def progress_data(job: BulkCancellation) -> dict:
    return {
        "status": job.status,
        "total": job.total,
        "processed": job.processed,
        "cancelled": job.cancelled_count,
        "skipped": job.skipped_count,
        "failed": job.failed_count,
        "percent": job.progress_percent,
        "finished": job.is_finished,
    }
