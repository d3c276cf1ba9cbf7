"""The one small interface every provider adapter implements.

An adapter turns a Cancellation into the provider's request and the provider's answer into an
Outcome. It knows nothing about Celery, the outbox tables or the admin: providers/dispatch.py
claims a Delivery, calls `adapter.deliver(...)`, and records what came back.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.utils.translation import gettext as _

if TYPE_CHECKING:
    from cancellations.models import Cancellation


class Action(enum.StrEnum):
    ADD = "add"  # tell the provider about a cancellation
    REVOKE = "revoke"  # tell the provider it was undone


class Outcome(enum.StrEnum):
    DELIVERED = "delivered"
    RETRY = "retry"  # transient: 5xx, 408, 429, timeout, connection error
    FAILED = "failed"  # permanent: the provider refused; retrying the same request won't help
    SKIPPED = "skipped"  # nothing to do at this provider (e.g. the order has no reference there)


@dataclass
class Result:
    outcome: Outcome
    status_code: int | None = None
    message: str = ""  # the provider's own words, shown to staff
    request_excerpt: str = ""  # what was sent, secrets masked, truncated
    response_excerpt: str = ""  # what came back, truncated
    duration_ms: int | None = None
    credentials_problem: bool = False  # 401/403: someone must fix the configuration
    bug: bool = False  # 406/415 and the like: we sent something the contract forbids
    references: dict = field(default_factory=dict)  # ids the provider gave back, to store
    # RETRY: the provider's own "not before" (e.g. Rebilly's X-RateLimit-Retry-After); the
    # dispatcher waits for it when it is later than its backoff.
    retry_after: datetime | None = None
    # SKIPPED: the provider can't carry this change, so staff must make it there by hand.
    needs_manual_action: bool = False


class VerdictReason(enum.StrEnum):
    """Why a provider will or won't be told: a stable code for the API, beside the message."""

    WILL_BE_TOLD = "will_be_told"
    NOT_ENABLED = "not_enabled"  # switched off (or not configured) in the provider settings
    NOT_APPLICABLE = "not_applicable"  # the order has nothing at this provider
    PLAN_PROBLEM = "plan_problem"  # plan_problems(): the cancellation would be refused
    WHOLE_ORDERS_ONLY = "whole_orders_only"  # e.g. Callisto: staff change it there by hand
    NO_PROVIDER_ID = "no_provider_id"  # e.g. items the billing engine has no id for
    NO_REVOKE = "no_revoke"  # the provider can't be told about revokes
    NOTHING_TO_REVOKE = "nothing_to_revoke"  # the add never reached the provider


VERDICT_REASONS = [reason.value for reason in VerdictReason]  # the API's enum


@dataclass(frozen=True)
class Verdict:
    """One provider's answer to "will you be told about this?", asked before confirming."""

    provider: str
    label: str
    will_be_told: bool
    reason: VerdictReason
    message: str = ""  # for staff, in the active language; may note a part left out
    needs_manual_action: bool = False  # staff must make the change at the provider by hand


@dataclass(frozen=True)
class ProviderConfig:
    """Where and how to reach a provider. Credentials come from the environment only."""

    kind: str
    base_url: str
    timeout: float = 10.0
    username: str = ""
    password: str = ""
    token: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def is_configured(self) -> bool:
        return bool(self.base_url)


class ProviderAdapter:
    """Base class: one subclass per external system, registered in providers/registry.py."""

    kind: str = ""
    label: str = ""
    supports_revoke: bool = False
    # True when sending the add again replaces what the provider has (an upsert), so a changed
    # cancellation is delivered again.
    supports_update: bool = False

    def __init__(self, config: ProviderConfig):
        self.config = config

    def applies_to(self, cancellation: Cancellation) -> bool:
        """False when this provider has nothing to do for the cancellation's order."""
        return False

    def applicable(self, cancellations: Iterable[Cancellation]) -> set[str]:
        """The pks of those cancellations this provider has something to do for. Adapters whose
        applies_to reads the database override this to ask once for many (bulk jobs)."""
        return {cancellation.pk for cancellation in cancellations if self.applies_to(cancellation)}

    def deliver(self, cancellation: Cancellation, action: Action) -> Result:
        raise NotImplementedError

    def deliver_again(self, cancellation: Cancellation, references: dict[str, Any]) -> Result:
        """Deliver an add again after an earlier try got through and stored `references`
        (the cancellation was re-planned, or is retried by staff). By default the add is
        simply sent again: right for an upsert (`supports_update`)."""
        return self.deliver(cancellation, Action.ADD)

    def verdict(
        self, will_be_told: bool, reason: VerdictReason, message: str = "", *, manual: bool = False
    ) -> Verdict:
        label = str(self.label or self.kind)
        return Verdict(self.kind, label, will_be_told, reason, str(message), manual)

    def add_verdict(
        self, cancellation: Cancellation, planned_items: list[tuple[Any, int]] | None = None
    ) -> Verdict:
        """Will this provider be told about the cancellation (its add), and if not why?
        `cancellation` may be planned (unsaved, built from a quote); then `planned_items` are
        its (order item, quantity) pairs, else the saved cancellation's items are read."""
        if not self.applies_to(cancellation):
            return self.verdict(False, VerdictReason.NOT_APPLICABLE, not_applicable_message())
        problems = self.plan_problems(cancellation)
        if problems:
            text = " ".join(str(problem) for problem in problems.values())
            return self.verdict(False, VerdictReason.PLAN_PROBLEM, text)
        return self.verdict(True, VerdictReason.WILL_BE_TOLD)

    @classmethod
    def revoke_refusal(cls) -> str:
        """Why a revoke can't be told here (supports_revoke False), for staff."""
        return _("This provider can't be told about revokes.")

    def plan_problems(self, cancellation: Cancellation) -> dict[str, str]:
        """{service argument: message} for what makes the planned cancellation impossible to
        deliver here, asked before its add is written so that it is refused when it is made
        rather than failing later. Only asked when applies_to() is true. Default: none."""
        return {}


def not_applicable_message() -> str:
    return _("The order has no reference at this provider.")
