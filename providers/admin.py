"""The outbox in the admin: every delivery with its attempts, the ones needing attention, a
retry action (through providers.services), and the provider settings."""

from django.contrib import admin, messages
from django.contrib.admin.utils import quote
from django.db import models
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from backoffice.admin_mixins import ReadOnlyTabularInline, ViewOnlyAdminMixin

from . import selectors, services
from .errors import DeliveryError
from .models import Delivery, DeliveryAttempt, DeliveryNeedingAttention, ProviderSetting
from .registry import config_from_env


class DeliveryAttemptInline(ReadOnlyTabularInline):
    model = DeliveryAttempt
    fields = (
        "number",
        "started_at",
        "duration_ms",
        "worker",
        "outcome",
        "status_code",
        "error",
        "request_excerpt",
        "response_excerpt",
    )
    readonly_fields = fields
    ordering = ("-started_at", "-id")


@admin.register(Delivery)
class DeliveryAdmin(ViewOnlyAdminMixin, admin.ModelAdmin):
    # Only the retry action changes a delivery, through the service.
    list_display = (
        "id",
        "cancellation_display",
        "order_number",
        "provider",
        "action",
        "status",
        "attempts",
        "next_attempt_at",
        "last_status_code",
        "credentials_problem",
        "updated_at",
    )
    list_filter = ("status", "provider", "action", "credentials_problem", "needs_manual_action")
    search_fields = ("=cancellation__id", "cancellation__order__number")
    search_help_text = _("A cancellation id, or (part of) an order number.")
    list_select_related = ("cancellation__order",)
    date_hierarchy = "created_at"
    ordering = ("-created_at", "-id")
    fields = (
        "cancellation",
        "provider",
        "action",
        "status",
        "attempts",
        "next_attempt_at",
        "claimed_at",
        "claimed_by",
        "last_status_code",
        "answer",
        "message_code",
        "credentials_problem",
        # A staff task (marked done on the cancellation's staff page).
        "needs_manual_action",
        "resolved_at",
        "resolved_by",
        "resolution_comment",
        "delivered_at",
        "references",
        "created_at",
        "updated_at",
    )
    readonly_fields = fields
    inlines = [DeliveryAttemptInline]

    @admin.display(description=_("last answer"))
    def answer(self, delivery):
        # Storno's words in the reader's language; a provider's own words verbatim.
        return delivery.message_text

    actions = ["retry_selected"]

    def get_queryset(self, request):
        return selectors.delivery_list()

    def has_retry_permission(self, request):
        return request.user.has_perm("providers.retry_delivery")

    @admin.display(description=_("cancellation"), ordering="cancellation_id")
    def cancellation_display(self, obj):
        try:
            # quote(): the admin reads "_23" in an id as "#" (cnl_bulk1_2301).
            url = reverse(
                "admin:cancellations_cancellation_change", args=[quote(obj.cancellation_id)]
            )
        except NoReverseMatch:
            return obj.cancellation_id
        return format_html('<a href="{}">{}</a>', url, obj.cancellation_id)

    @admin.display(description=_("order"), ordering="cancellation__order__number")
    def order_number(self, obj):
        return obj.cancellation.order.number

    @admin.action(description=_("Retry selected deliveries"), permissions=["retry"])
    def retry_selected(self, request, queryset):
        retried, refused = 0, []
        for delivery in queryset.order_by("id"):
            try:
                services.retry_delivery(delivery, actor=request.user)
            except DeliveryError as exc:
                refused.append(f"#{delivery.pk}: {' '.join(exc.messages)}")
            else:
                retried += 1
        if retried:
            self.message_user(
                request,
                ngettext(
                    "%(count)d delivery will be sent again.",
                    "%(count)d deliveries will be sent again.",
                    retried,
                )
                % {"count": retried},
                messages.SUCCESS,
            )
        for message in refused:
            self.message_user(request, message, messages.ERROR)


@admin.register(DeliveryNeedingAttention)
class DeliveryNeedingAttentionAdmin(DeliveryAdmin):
    """What still needs someone (providers.selectors.deliveries_needing_attention): failures
    nobody resolved (nor an undo made moot), stuck deliveries, open staff tasks."""

    date_hierarchy = None

    def get_queryset(self, request):
        return selectors.deliveries_needing_attention()

    # A view of the deliveries, so the deliveries' permissions apply.
    def has_view_permission(self, request, obj=None):
        return request.user.has_perm("providers.view_delivery")

    def has_module_permission(self, request):
        return request.user.has_perm("providers.view_delivery")


@admin.register(ProviderSetting)
class ProviderSettingAdmin(admin.ModelAdmin):
    list_display = ("kind", "enabled", "base_url", "timeout_seconds", "environment")
    list_filter = ("enabled",)
    readonly_fields = ("environment", "updated_at")
    fields = ("kind", "enabled", "base_url", "timeout_seconds", "environment", "updated_at")
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    @admin.display(description=_("from the environment"))
    def environment(self, obj):
        """Where the environment points and whether credentials are set (never their values)."""
        if not obj or not obj.kind:
            return "—"
        try:
            config = config_from_env(obj.kind)
        except Exception:  # a broken environment must not break the admin page
            return _("cannot be read")
        has_credentials = bool(config.token or config.username or config.password)
        return format_html(
            "{} · {}",
            config.base_url or _("no base URL"),
            _("credentials set") if has_credentials else _("no credentials"),
        )
