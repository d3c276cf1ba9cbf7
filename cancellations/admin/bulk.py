"""The admin of bulk cancellation jobs and their orders: read-only, with the resume action."""

import json

from django.contrib import admin, messages
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from backoffice.admin_mixins import ViewOnlyAdminMixin
from backoffice.broker import publish

from ..models import (
    BulkCancellation,
    BulkCancellationStatus,
    BulkCancellationTarget,
)
from ..tasks import run_bulk_cancellation
from .common import MAX_FAILURE_MESSAGES


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
                publish(run_bulk_cancellation, job_id)
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

    list_display = ["order", "job", "outcome", "message_shown", "processed_at"]
    list_select_related = ["order"]
    list_filter = ["outcome"]
    search_fields = ["order__number"]
    show_full_result_count = False
    list_per_page = 100
    fields = [
        "bulk_cancellation",
        "order",
        "outcome",
        "message_shown",
        "message_code",
        "processed_at",
    ]
    readonly_fields = fields

    @admin.display(description=_("message"))
    def message_shown(self, target):
        return target.message_text  # in the reader's language

    @admin.display(description=_("bulk cancellation"), ordering="bulk_cancellation_id")
    def job(self, target):
        # Linked by id: loading the job would load its filter once per row.
        url = reverse(
            "admin:cancellations_bulkcancellation_change", args=[target.bulk_cancellation_id]
        )
        return format_html('<a href="{}">#{}</a>', url, target.bulk_cancellation_id)
