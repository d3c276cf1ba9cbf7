"""The reason managers' admin: curate the catalog, map reasons to providers, pull from Omnitron,
see every pull. Writes go through reasons.services."""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseNotAllowed
from django.shortcuts import redirect
from django.urls import path
from django.utils.html import format_html_join
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from backoffice.admin_mixins import ViewOnlyAdminMixin
from cancellations.models import AuditEntry

from . import services, sync
from .models import CancellationReason, ProviderKind, ReasonMapping, ReasonSyncRun, SyncTrigger

VIA_ADMIN = AuditEntry.Via.ADMIN


class SourceFilter(admin.SimpleListFilter):
    title = _("source")
    parameter_name = "source"

    def lookups(self, request, model_admin):
        return [("omnitron", _("Omnitron")), ("local", _("Local only"))]

    def queryset(self, request, queryset):
        if self.value() == "omnitron":
            return queryset.filter(omnitron_id__isnull=False)
        if self.value() == "local":
            return queryset.filter(omnitron_id__isnull=True)
        return queryset


class ReasonMappingInline(admin.TabularInline):
    model = ReasonMapping
    extra = 0
    max_num = len(ProviderKind.choices)
    verbose_name_plural = _(
        "provider mappings (without one: Rebilly gets “other”, Callisto and billing the subject)"
    )


@admin.register(CancellationReason)
class CancellationReasonAdmin(admin.ModelAdmin):
    list_display = [
        "subject_shown",
        "cancellation_type",
        "extra_information_needed",
        "ordering",
        "is_active",
        "omnitron_id",
    ]
    list_display_links = ["subject_shown"]
    list_editable = ["ordering", "is_active"]
    list_filter = ["is_active", "cancellation_type", "extra_information_needed", SourceFilter]
    search_fields = ["subject", "subject_de", "subject_en", "subject_tr"]
    readonly_fields = ["omnitron_id", "created_date", "modified_date", "sent_to_providers"]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "subject",
                    "cancellation_type",
                    "extra_information_needed",
                    "ordering",
                    "is_active",
                ]
            },
        ),
        (_("Translations"), {"fields": ["subject_de", "subject_en", "subject_tr"]}),
        (
            _("Source"),
            {"fields": ["omnitron_id", "created_date", "modified_date", "sent_to_providers"]},
        ),
    ]
    inlines = [ReasonMappingInline]

    @admin.display(description=_("subject"), ordering="subject")
    def subject_shown(self, obj):
        """In the reader's language where the catalog has it (Omnitron's subjects are often
        Turkish), as the cancel form shows it."""
        return obj.localized_subject()

    @admin.display(description=_("sent to providers"))
    def sent_to_providers(self, obj):
        if obj.pk is None:
            return "-"
        return format_html_join(
            "",
            "<div>{}: {}</div>",
            ((label, services.mapped_reason(obj, kind)) for kind, label in ProviderKind.choices),
        )

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("mappings")

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # deactivate instead; Omnitron's come back anyway
        return actions

    def has_delete_permission(self, request, obj=None):
        if obj is not None and obj.omnitron_id is not None:
            return False  # Omnitron is its master: deactivate it instead
        return super().has_delete_permission(request, obj)

    def save_model(self, request, obj, form, change):
        services.save_reason(obj, actor=request.user, via=VIA_ADMIN)

    def delete_model(self, request, obj):
        services.delete_reason(obj, actor=request.user, via=VIA_ADMIN)

    def save_formset(self, request, form, formset, change):
        mappings = formset.save(commit=False)
        for mapping in formset.deleted_objects:
            services.delete_reason_mapping(mapping, actor=request.user, via=VIA_ADMIN)
        for mapping in mappings:
            services.save_reason_mapping(mapping, actor=request.user, via=VIA_ADMIN)

    # --- "Pull from Omnitron now" ---------------------------------------------------------------
    def get_urls(self):
        return [
            path(
                "pull/",
                self.admin_site.admin_view(self.pull_view),
                name="reasons_cancellationreason_pull",
            ),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "can_pull_reasons": request.user.has_perm("reasons.pull_reasons"),
        }
        return super().changelist_view(request, extra_context)

    def pull_view(self, request):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not request.user.has_perm("reasons.pull_reasons"):
            raise PermissionDenied
        try:
            run = sync.pull_reasons(actor=request.user, trigger=SyncTrigger.ADMIN)
        except sync.ReasonSyncInProgress as exc:
            messages.warning(request, " ".join(exc.messages))
        else:
            if run.succeeded:
                messages.success(
                    request,
                    gettext(
                        "Pulled %(fetched)s reasons from Omnitron: %(created)s created, "
                        "%(updated)s updated, %(deactivated)s deactivated."
                    )
                    % {
                        "fetched": run.fetched_count,
                        "created": run.created_count,
                        "updated": run.updated_count,
                        "deactivated": run.deactivated_count,
                    },
                )
                if run.warnings:
                    messages.warning(request, run.warnings)
            else:
                messages.error(
                    request,
                    gettext("Pulling from Omnitron failed; nothing changed. %(error)s")
                    % {"error": run.error},
                )
        return redirect("admin:reasons_cancellationreason_changelist")


@admin.register(ReasonSyncRun)
class ReasonSyncRunAdmin(ViewOnlyAdminMixin, admin.ModelAdmin):
    """Read-only: runs are written by the pull only."""

    list_display = [
        "started_at",
        "status",
        "trigger",
        "triggered_by",
        "fetched_count",
        "created_count",
        "updated_count",
        "deactivated_count",
        "error_cause",
        "has_warnings",
    ]
    list_filter = ["status", "trigger", "error_cause"]
    list_select_related = ["triggered_by"]
    date_hierarchy = "started_at"
    search_fields = ["error", "warnings"]

    @admin.display(description=_("warnings"), boolean=True)
    def has_warnings(self, obj):
        return bool(obj.warnings)

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields]
