"""The transactional outbox: the cancellation services call `enqueue_deliveries` inside their
own transaction, so a cancellation and what must be told about it commit (or roll back)
together. After the commit a Celery message asks a worker to deliver at once; the beat sweep
(providers.tasks.deliver_due) finds anything a lost message left behind.

What gets written, per provider:

ADD (a new cancellation): one row per enabled provider, pending when its adapter's add_verdict()
says it will be told, else skipped with the verdict's message; a verdict that needs manual action
(e.g. a partial cancellation Callisto can't carry) makes the skipped row a staff task. Before
anything is written, each adapter with something to do is asked for plan_problems(): any
problem is raised as the service's CancellationError, so the cancellation is refused when it is
made (e.g. Callisto's UserId). The same verdicts are shown before confirming (add_verdicts,
revoke_verdicts: the previews and the API's dryRun).

ADD again (update_cancellation): the adapter builds its request from the cancellation as it is
when the request is sent, so a pending add needs nothing. For providers that take updates
(`supports_update`, e.g. Rebilly's upsert) a delivered or failed add goes back to pending with a
fresh attempt budget, and an add in flight is marked with a new revision: when that request
comes back, the dispatcher sees it carried an older plan and sends again. Providers that don't
take updates are told nothing more.

REVOKE: sent only after its add was delivered.
- add pending and never tried: nothing has reached the provider, so both are skipped;
- add tried but not settled (pending with attempts, or in flight): an earlier try may have got
  through, so the revoke waits and is sent if the add ends delivered (skipped otherwise);
- add delivered: the revoke is due now;
- add failed for good or skipped: nothing to undo, the revoke is skipped.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from datetime import datetime

from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.utils import timezone
from django.utils.translation import gettext as _

from backoffice.broker import publish, publish_at
from backoffice.bulk_update import update_rows
from cancellations.errors import CancellationError

from . import messages
from .base import Action, ProviderAdapter, Verdict, VerdictReason, not_applicable_message
from .messages import MESSAGE_FIELDS
from .models import Delivery, ProviderSetting
from .registry import ADAPTERS, config_from_env, settings_max_age
from .states import DeliveryStatus, move
from .verdicts import revoke_verdict

logger = logging.getLogger(__name__)


def adapter_classes() -> dict[str, type[ProviderAdapter]]:
    return ADAPTERS


# The Celery tasks that deliver (providers.tasks.deliver_one and deliver_due), connected by
# ProvidersConfig.ready: this seam sends them hints but can't import them, since they import
# the dispatcher, which imports this module.
_tasks: dict = {}


def connect_tasks(*, deliver_one, deliver_due) -> None:
    _tasks.update(deliver_one=deliver_one, deliver_due=deliver_due)


def build_adapter(setting: ProviderSetting) -> ProviderAdapter | None:
    """The adapter for one provider setting: environment config, with the setting's base URL
    override and timeout. None when no adapter of that kind exists in this code."""
    adapter_class = adapter_classes().get(setting.kind)
    if adapter_class is None:
        return None
    config = config_from_env(setting.kind)
    config = replace(
        config,
        base_url=setting.base_url or config.base_url,
        timeout=float(setting.timeout_seconds),
    )
    return adapter_class(config)


# The provider settings, as this process last read them: (read at, rows by kind). Every new
# cancellation needs them and they hardly ever change, so they are read again only when this
# process saves or deletes one (the signals below) or when they are older than
# registry.settings_max_age() (PROVIDER_SETTINGS_MAX_AGE, 2 s): that is how changes made by
# other processes, or by queryset updates, get here. Until then a process may still write a
# new cancellation's rows for the providers enabled before the change.
_settings_cache: tuple[float, dict[str, ProviderSetting]] | None = None
_clock = time.monotonic


def forget_provider_settings(**_kwargs) -> None:
    """Make the next enabled_adapters() read the settings again."""
    global _settings_cache
    _settings_cache = None


def _setting_changed(**_kwargs) -> None:
    # Now, and again after the commit: in between another thread could have read (and kept)
    # the rows as they were before this change.
    forget_provider_settings()
    transaction.on_commit(forget_provider_settings)


post_save.connect(_setting_changed, sender=ProviderSetting, dispatch_uid="outbox-settings-save")
post_delete.connect(_setting_changed, sender=ProviderSetting, dispatch_uid="outbox-settings-del")


def _read_settings() -> dict[str, ProviderSetting]:
    return {setting.kind: setting for setting in ProviderSetting.objects.all()}


def provider_settings() -> dict[str, ProviderSetting]:
    """Every registered provider's settings row by kind (ensure_provider_settings), kept for
    a few seconds (see above). The rows are shared: read them, don't change them."""
    global _settings_cache
    max_age = settings_max_age()
    cached = _settings_cache
    now = _clock()
    if cached is not None and now - cached[0] < max_age:
        return cached[1]
    rows = _read_settings()
    if not set(adapter_classes()) <= rows.keys():
        _create_missing_settings(rows)
        rows = _read_settings()
    _settings_cache = (now, rows)
    return rows


def _create_missing_settings(known) -> None:
    missing = [
        ProviderSetting(kind=kind, enabled=config_from_env(kind).is_configured)
        for kind in adapter_classes()
        if kind not in known
    ]
    if missing:
        ProviderSetting.objects.bulk_create(missing, ignore_conflicts=True)


def ensure_provider_settings() -> None:
    """Give every registered provider a settings row, enabled when the environment configures
    it, so a fresh installation delivers to what it was set up for without an admin step."""
    _create_missing_settings(set(ProviderSetting.objects.values_list("kind", flat=True)))
    forget_provider_settings()


def enabled_adapters() -> list[ProviderAdapter]:
    adapters = []
    for setting in sorted(provider_settings().values(), key=lambda setting: setting.kind):
        if not setting.enabled:
            continue
        adapter = build_adapter(setting)
        if adapter is None:
            logger.warning("Provider %s is enabled but has no adapter; ignored.", setting.kind)
            continue
        adapters.append(adapter)
    return adapters


def enqueue_deliveries(cancellation, action: Action) -> list[Delivery]:
    """Write the outbox rows for `action` on `cancellation`. Call inside the service's
    transaction, after the cancellation is saved. Returns the rows written or changed."""
    if action == Action.REVOKE:
        rows = _enqueue_revokes([cancellation])
    else:
        rows = _enqueue_adds(cancellation)
    due = [row.pk for row in rows if row.status == DeliveryStatus.PENDING]
    if due:
        transaction.on_commit(lambda: kick(due))
    return rows


def kick(delivery_ids) -> None:
    """Ask a worker to deliver these now. Only a hint: if the broker is down the beat sweep
    delivers them a little later, so an error here must not reach the caller."""
    for delivery_id in delivery_ids:
        try:
            publish(_tasks["deliver_one"], delivery_id)
        except Exception:
            # The broker is down or hangs (or did a moment ago: backoffice.broker): each further
            # publish would fail as slowly, and the sweep delivers every one of them anyway.
            logger.exception("Could not queue delivery %s; the sweep will pick it up.", delivery_id)
            return


def kick_at(schedule: dict[int, datetime]) -> None:
    """Ask a worker to deliver each of these at its time (a retry after its backoff), so it
    goes when the page says rather than at the next beat sweep, which stays the safety net."""
    for delivery_id, when in schedule.items():
        try:
            publish_at(_tasks["deliver_one"], when, delivery_id)
        except Exception:
            logger.exception(
                "Could not schedule delivery %s; the sweep will pick it up.", delivery_id
            )
            return


def add_verdicts(cancellation, planned_items=None) -> list[Verdict]:
    """Every registered provider's verdict on the cancellation's add, by provider: what the
    previews and the API's dryRun show before anything is written. `cancellation` may be
    planned (unsaved), with its (order item, quantity) pairs in `planned_items`."""
    verdicts = []
    for setting in sorted(provider_settings().values(), key=lambda setting: setting.kind):
        adapter = build_adapter(setting)
        if adapter is None:
            continue
        if setting.enabled:
            verdicts.append(adapter.add_verdict(cancellation, planned_items))
        else:
            verdicts.append(
                adapter.verdict(
                    False,
                    VerdictReason.NOT_ENABLED,
                    _("This provider is switched off in the provider settings."),
                )
            )
    return verdicts


def revoke_verdicts(cancellation) -> list[Verdict]:
    """What each provider that heard of the cancellation's add will hear of its revoke, by
    provider: shown on the undo confirmation. The same rules _enqueue_revokes writes."""
    adds = Delivery.objects.filter(cancellation=cancellation, action=Action.ADD).order_by(
        "provider"
    )
    return [revoke_verdict(add) for add in adds]


def has_plan_rules(adapter: ProviderAdapter) -> bool:
    return type(adapter).plan_problems is not ProviderAdapter.plan_problems


def _enqueue_adds(cancellation) -> list[Delivery]:
    adapters = enabled_adapters()
    if not adapters:
        return []
    now = timezone.now()
    existing = {
        row.provider: row
        for row in Delivery.objects.select_for_update().filter(
            cancellation=cancellation, action=Action.ADD
        )
    }
    _refuse_undeliverable(
        cancellation, [a for a in adapters if has_plan_rules(a) and a.applies_to(cancellation)]
    )
    new_rows, changed = [], []
    for adapter in adapters:
        row = existing.get(adapter.kind)
        if row is None:
            verdict = adapter.add_verdict(cancellation)
            new_rows.append(_new_add(cancellation, adapter.kind, now, verdict))
        elif getattr(adapter, "supports_update", False) and _send_again(row, now):
            changed.append(row)
    Delivery.objects.bulk_create(new_rows)
    return new_rows + changed


def _refuse_undeliverable(cancellation, adapters: list[ProviderAdapter]) -> None:
    """A provider that will be told must be able to take it: its adapter's plan_problems()
    become the service's error (and roll the cancellation back), not a failed delivery later."""
    problems = {}
    for adapter in adapters:
        problems.update(adapter.plan_problems(cancellation))
    if problems:
        raise CancellationError(problems, code="invalid")


def add_new_deliveries(cancellations) -> list[Delivery]:
    """The ADD rows for new cancellations that a caller shows (cancel_order), written with one
    INSERT and returned: enqueue_deliveries without looking for earlier rows, as there are
    none. A provider that will be told but can't take one refuses it (plan_problems)."""
    adapters = enabled_adapters()
    now = timezone.now()
    applicable = {adapter.kind: adapter.applicable(cancellations) for adapter in adapters}
    for cancellation in cancellations:
        told = [adapter for adapter in adapters if cancellation.pk in applicable[adapter.kind]]
        _refuse_undeliverable(cancellation, told)
    rows = [
        _new_add(cancellation, adapter.kind, now, _verdict(adapter, cancellation, applicable))
        for adapter in adapters
        for cancellation in cancellations
    ]
    Delivery.objects.bulk_create(rows)
    due = [row.pk for row in rows if row.status == DeliveryStatus.PENDING]
    if due:
        transaction.on_commit(lambda: kick(due))
    return rows


def _verdict(adapter: ProviderAdapter, cancellation, applicable) -> Verdict:
    """The adapter's verdict on a new cancellation whose applicability is known already."""
    if cancellation.pk not in applicable[adapter.kind]:
        return adapter.verdict(False, VerdictReason.NOT_APPLICABLE, not_applicable_message())
    return adapter.add_verdict(cancellation)


def kick_sweep() -> None:
    """Ask a worker to deliver everything due, now rather than at the next beat."""
    try:
        publish(_tasks["deliver_due"])
    except Exception:
        logger.exception("Could not queue a delivery sweep; the beat will run one.")


def _new_add(cancellation, kind: str, now, verdict: Verdict) -> Delivery:
    row = Delivery(cancellation=cancellation, provider=kind, action=Action.ADD, next_attempt_at=now)
    if not verdict.will_be_told:
        _skip(row, verdict.message)
        row.needs_manual_action = verdict.needs_manual_action
    return row


def _send_again(row: Delivery, now) -> bool:
    """The cancellation was re-planned: make sure the provider hears the new plan."""
    row.revision += 1
    fields = ["revision", "updated_at"]
    if row.status in (DeliveryStatus.DELIVERED, DeliveryStatus.FAILED):
        move(row, DeliveryStatus.PENDING)
        fields += ["status", *row.forget_resolution()]
    if row.status == DeliveryStatus.PENDING:
        row.attempts = 0
        row.next_attempt_at = now
        row.credentials_problem = False
        fields += ["attempts", "next_attempt_at", "credentials_problem"]
    elif row.status != DeliveryStatus.IN_FLIGHT:  # skipped: still nothing to do there
        return False
    row.save(update_fields=fields)
    return True


def enqueue_revokes(cancellations) -> list[Delivery]:
    """enqueue_deliveries(…, REVOKE) for many cancellations at once: one read of their adds,
    one UPDATE of those never sent, one INSERT of the revokes."""
    rows = _enqueue_revokes(cancellations)
    due = [row.pk for row in rows if row.status == DeliveryStatus.PENDING]
    if due:
        transaction.on_commit(lambda: kick(due))
    return rows


def _enqueue_revokes(cancellations) -> list[Delivery]:
    now = timezone.now()
    by_pk = {cancellation.pk: cancellation for cancellation in cancellations}
    adds = list(
        Delivery.objects.select_for_update()
        .filter(cancellation__in=list(by_pk), action=Action.ADD)
        .order_by("cancellation_id", "provider")
    )
    revokes, never_sent = [], []
    for add in adds:
        revoke = Delivery(
            cancellation=by_pk[add.cancellation_id],
            provider=add.provider,
            action=Action.REVOKE,
            next_attempt_at=now,
        )
        verdict = revoke_verdict(add)
        if add.status == DeliveryStatus.PENDING and add.attempts == 0:  # never sent
            move(add, DeliveryStatus.SKIPPED)
            add.last_error = messages.render(messages.REVOKED_BEFORE_SENT)
            add.message_code, add.message_params = messages.REVOKED_BEFORE_SENT, {}
            add.updated_at = now
            never_sent.append(add)
        if not verdict.will_be_told:
            _skip(revoke, verdict.message)
        revokes.append(revoke)
    update_rows(Delivery, never_sent, [*MESSAGE_FIELDS, "status", "updated_at"])
    Delivery.objects.bulk_create(revokes)
    return revokes


def _skip(row: Delivery, why: str) -> None:
    row.status = DeliveryStatus.SKIPPED
    row.last_error = why
    row.message_code, row.message_params = messages.coded(why), {}
