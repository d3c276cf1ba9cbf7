"""Fill an empty database with a believable demo: orders across channels, a reason catalog in
three languages, and staff users whose logins are printed."""

import random
from datetime import timedelta
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from backoffice.models import StaffProfile
from backoffice.roles import BULK_OPERATOR, CUSTOMER_SERVICE, REASON_MANAGER, sync_roles
from cancellations import billing
from cancellations.errors import CancellationError
from cancellations.models import AuditEntry, Cancellation, Order, SettlementState
from cancellations.services import order_changes, writing
from cancellations.states import OrderStatus
from reasons import services as reason_services
from reasons.models import CancellationReason, ProviderKind, ReasonMapping

CHANNELS = ["/shop/de", "/shop/de/b2b", "/shop/tr", "/shop/tr/mobile", "/shop/en", "/partner/at"]
CURRENCY = {"/shop/tr": "TRY", "/shop/tr/mobile": "TRY", "/shop/en": "GBP"}
CUSTOMERS = [
    "Jürgen Weiß",
    "Ayşe Yılmaz",
    "Emily Clarke",
    "Çağrı Öztürk",
    "Müller GmbH",
    "Zeynep Kaya",
    "Ole Schröder",
    "Mehmet Güneş",
    "Sophie Bauer",
    "İsmail Doğan",
    "Grace Hopper",
    "Lena Groß",
]
PRODUCTS = [
    ("PLAN-BASIC", "Basic plan, monthly", Decimal("9.99"), 30),
    ("PLAN-PRO", "Pro plan, monthly", Decimal("29.00"), 30),
    ("PLAN-YEAR", "Pro plan, yearly", Decimal("290.00"), 365),
    ("ROUTER-X", "Router X", Decimal("89.90"), None),
    ("SETUP", "Installation service", Decimal("49.00"), None),
    ("SIM", "SIM card", Decimal("5.00"), None),
]
# Used only when Omnitron (or its fake) gave us nothing: the real catalog comes from a pull.
FALLBACK_REASONS = [
    ("Yanlış ürün aldım.", False),
    ("Ürünü satın almaktan vazgeçtim.", False),
    ("Lieferung kam zu spät", False),
    ("Zu teuer", False),
    ("Found a better offer", False),
    ("Sonstiges (bitte beschreiben)", True),
]
MONTH = timedelta(days=30)  # a billing month of the demo's subscriptions
DEMO_PASSWORD = "storno-demo"  # noqa: S105 - the demo prints it
# username → (roles, what the printed login says about it); "admin" is a superuser.
DEMO_USERS = {
    "agent": ([CUSTOMER_SERVICE], "customer service"),
    "lead": ([BULK_OPERATOR, REASON_MANAGER], "bulk operator, reason manager"),
}


def billing_item_id(order_number: str, index: int) -> str:
    """The demo's id of an order's index-th item in the billing engine (rundemo seeds its fake)."""
    return f"SI-{order_number}-{index}"


def login_lines(password: str = DEMO_PASSWORD) -> str:
    """The demo's logins, as demo_data and rundemo print them."""
    lines = [
        f"Staff login: {username} / {password}   ({description})"
        for username, (_roles, description) in DEMO_USERS.items()
    ]
    lines.append(f"Admin login: admin / {password}   (superuser)")
    return "\n".join(lines)


class Command(BaseCommand):
    help = "Create demo orders, reasons and staff users (does nothing to a non-empty database)."

    def add_arguments(self, parser):
        parser.add_argument("--orders", type=int, default=300)
        parser.add_argument("--password", default=DEMO_PASSWORD)
        parser.add_argument("--seed", type=int, default=2026)
        parser.add_argument(
            "--no-logins", dest="logins", action="store_false", help="Don't print the logins."
        )

    def handle(self, *args, orders, password, seed, logins=True, **options):
        rng = random.Random(seed)  # noqa: S311 - demo data, not security
        agent = self._users(password)
        if not CancellationReason.objects.exists():
            for index, (subject, extra) in enumerate(FALLBACK_REASONS):
                CancellationReason.objects.create(
                    subject=subject, extra_information_needed=extra, ordering=10 * (index + 1)
                )
        added = add_demo_mappings()
        if added:
            self.stdout.write(f"Added {added} provider mappings to the reasons.")
        if Order.objects.exists():
            self.stdout.write("Orders exist already; no demo orders added.")
        else:
            self._orders(orders, rng, agent)
        if logins:
            self.stdout.write(self.style.SUCCESS(login_lines(password)))

    def _users(self, password):
        user_model = get_user_model()
        admin, _ = user_model.objects.get_or_create(
            username="admin", defaults={"is_staff": True, "is_superuser": True}
        )
        agent, _ = user_model.objects.get_or_create(
            username="agent", defaults={"is_staff": True, "first_name": "Demo"}
        )
        lead, _ = user_model.objects.get_or_create(
            username="lead", defaults={"is_staff": True, "first_name": "Team lead"}
        )
        for user in (admin, agent, lead):
            user.set_password(password)
            user.save()
        # Callisto needs a Salesforce user id (15 or 18 characters) for every cancellation.
        for user, salesforce_id, zone in (
            (agent, "0055e00000AGENT", "Europe/Berlin"),
            (lead, "0055e000000LEAD", "Europe/Berlin"),
            (admin, "0055e00000ADMIN", "Europe/Istanbul"),
        ):
            StaffProfile.objects.get_or_create(
                user=user, defaults={"salesforce_user_id": salesforce_id, "time_zone": zone}
            )
        # The migration made the groups; syncing again costs little and repairs a demo
        # database whose groups were edited or deleted.
        sync_roles()
        for user in (agent, lead):
            roles, _description = DEMO_USERS[user.username]
            user.groups.add(*Group.objects.filter(name__in=roles))
        return agent

    @transaction.atomic
    def _orders(self, count, rng, agent):
        now = timezone.now()
        reasons = list(CancellationReason.objects.active().filter(extra_information_needed=False))
        for n in range(count):
            channel = rng.choice(CHANNELS)
            # A third placed in the last day, so that "this channel, last day" (a bulk
            # cancellation's usual filter) finds a few dozen orders; the rest over 45 days.
            recent = rng.random() < 0.35
            placed = now - timedelta(minutes=rng.randint(5, 60 * 24 * (1 if recent else 45)))
            number = f"{placed:%y%m}-{10000 + n}"
            items = []
            for index, (sku, text, price, days) in enumerate(
                rng.sample(PRODUCTS, rng.randint(1, 3)), start=1
            ):
                subscription = {}
                if days:
                    # A subscription is a service item in the billing engine: its itemId there.
                    start = placed.replace(hour=0, minute=0, second=0, microsecond=0)
                    subscription = {
                        "period_start": start,
                        "period_end": start + timedelta(days=days),
                        "billing_item_id": billing_item_id(number, index),
                    }
                items.append(
                    order_changes.NewOrderItem(
                        sku=sku,
                        description=text,
                        quantity=rng.choice([1, 1, 1, 2, 3]),
                        unit_price_amount=price,
                        **subscription,
                    )
                )
            order = order_changes.create_order(
                number=number,
                customer_name=rng.choice(CUSTOMERS),
                customer_email=f"customer{n}@example.com",
                channel=channel,
                currency=CURRENCY.get(channel, "EUR"),
                placed_at=placed,
                items=items,
                status=rng.choice(
                    [OrderStatus.OPEN] * 6
                    + [OrderStatus.IN_PROGRESS, OrderStatus.ON_HOLD, OrderStatus.COMPLETED]
                ),
                external_ids={
                    "callisto": str(400000 + n),
                    "rebilly": f"ord_{number}",
                    "js7ControllerId": "storno-controller",
                    "js7OrderIds": [f"#{placed:%Y-%m-%d}#T{n:05d}-fulfil"],
                },
                actor=None,
                via=AuditEntry.Via.SYSTEM,
            )
            self._settlement_items(order, now, rng)
            # Some history, so that lists, filters and the dashboard have something to show.
            if reasons and order.is_cancellable and rng.random() < 0.12:
                try:
                    with transaction.atomic():
                        cancellation = writing.cancel_order(
                            order,
                            reason=rng.choice(reasons),
                            actor=agent,
                            via=AuditEntry.Via.WEB,
                            prorated=True,
                        )
                        _backdate(cancellation, _some_time_since(placed, now, rng))
                except CancellationError:
                    pass  # e.g. a subscription month is settled already: the service refuses
        self.stdout.write(f"Created {count} demo orders.")

    def _settlement_items(self, order, now, rng):
        """One settlement item per month of each subscription item: the months that are over
        are settled or exported (so the item can't be cancelled any more), the running and
        coming ones are open."""
        for item in order.items.all():
            if not item.has_service_period:
                continue
            months = []
            start = item.period_start
            while start < item.period_end:
                months.append((start, min(start + MONTH, item.period_end)))
                start += MONTH
            total = item.unit_price_amount * (item.quantity - item.cancelled_quantity)
            amount = (total / len(months)).quantize(Decimal("0.01"))
            for start, end in months:
                state = SettlementState.OPEN
                if end <= now:
                    state = rng.choice([SettlementState.SETTLED, SettlementState.EXPORTED])
                billing.add_settlement_item(
                    item,
                    amount=amount,
                    period_start=start,
                    period_end=end,
                    state=state,
                    actor=None,
                    via=AuditEntry.Via.SYSTEM,
                )


HISTORY = timedelta(days=30)


def _some_time_since(placed, now, rng):
    """A moment in the last 30 days after the order was placed: the dashboard's chart then
    shows a month of cancellations, not one bar for today."""
    start = max(placed, now - HISTORY)
    return start + (now - start) * rng.random()


def _backdate(cancellation: Cancellation, when) -> None:
    """Make a demo cancellation look as if it had been made at `when` (demo data only: the
    services always write the real time)."""
    Cancellation.objects.filter(pk=cancellation.pk).update(
        created_time=when, canceled_time=when, completed_time=when, churn_time=when
    )
    AuditEntry.objects.filter(cancellation=cancellation).update(created_at=when)


# Rebilly's reason code for the demo reasons, by a word of their English (or only) subject.
REBILLY_CODE_BY_WORD = [
    ("expensive", "too-expensive"),
    ("cheaper", "too-expensive"),
    ("teuer", "too-expensive"),
    ("did not use", "did-not-use"),
    ("damaged", "bugs-or-problems"),
    ("not as described", "bugs-or-problems"),
    ("too long", "bugs-or-problems"),
    ("spät", "bugs-or-problems"),
    ("payment", "billing-failure"),
    ("contract", "contract-expired"),
    ("mind", "did-not-want"),
    ("wrong", "did-not-want"),
    ("mistake", "did-not-want"),
    ("better offer", "too-expensive"),
]


def rebilly_code(subject: str) -> str:
    text = subject.lower()
    return next((code for word, code in REBILLY_CODE_BY_WORD if word in text), "other")


def add_demo_mappings() -> int:
    """Give every reason a mapping for each provider it lacks one for, so the demo shows what
    each provider hears (without one, Rebilly always hears "other"): Rebilly's code, Callisto's
    CancelReason in English, the billing engine's reason for reversal in German."""
    added = 0
    for reason in CancellationReason.objects.prefetch_related("mappings"):
        mapped = {mapping.provider_kind for mapping in reason.mappings.all()}
        english = reason.subject_en or reason.subject
        values = {
            ProviderKind.REBILLY: rebilly_code(english),
            ProviderKind.CALLISTO: english,
            ProviderKind.BILLING: reason.subject_de or reason.subject,
        }
        for kind, value in values.items():
            if kind not in mapped:
                reason_services.save_reason_mapping(
                    ReasonMapping(reason=reason, provider_kind=kind, value=value)
                )
                added += 1
    return added
