"""factory-boy factories shared by every test module."""

from datetime import timedelta
from decimal import Decimal

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.utils import timezone

from cancellations.models import Cancellation, Order, OrderItem, SettlementItem
from cancellations.states import CancellationStatus, OrderStatus
from reasons.models import CancellationReason


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"agent{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.django.Password("correct horse battery staple")
    is_staff = True

    @factory.post_generation
    def permissions(self, create, extracted, **kwargs):
        """UserFactory(permissions=["cancellations.view_order", ...])"""
        if not create or not extracted:
            return
        for dotted in extracted:
            app_label, codename = dotted.split(".")
            self.user_permissions.add(
                Permission.objects.get(content_type__app_label=app_label, codename=codename)
            )


class SuperUserFactory(UserFactory):
    username = factory.Sequence(lambda n: f"admin{n}")
    is_superuser = True


class CancellationReasonFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CancellationReason

    # Far from the ids tests pick by hand (the demo catalog's 1-12): a sequence from 1 met them
    # whenever such a test came among the first to make reasons.
    omnitron_id = factory.Sequence(lambda n: 100_001 + n)
    cancellation_type = "cancel"
    subject = factory.Iterator(
        [
            "Yanlış ürün aldım.",
            "Ürünü satın almaktan vazgeçtim.",
            "Lieferung zu spät",
            "Too expensive",
        ]
    )
    extra_information_needed = False
    ordering = 100
    is_active = True


class OrderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Order

    number = factory.Sequence(lambda n: f"ORD-{n:06d}")
    customer_name = factory.Faker("name")
    customer_email = factory.Faker("email")
    channel = "/shop/de"
    status = OrderStatus.OPEN
    placed_at = factory.LazyFunction(lambda: timezone.now() - timedelta(hours=2))
    currency = "EUR"
    external_ids = factory.LazyFunction(dict)


class OrderItemFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = OrderItem

    order = factory.SubFactory(OrderFactory)
    sku = factory.Sequence(lambda n: f"SKU-{n:04d}")
    description = "Monthly plan"
    quantity = 1
    unit_price_amount = Decimal("30.00")
    unit_price_currency = factory.SelfAttribute("order.currency")
    billing_item_id = ""

    class Params:
        # OrderItemFactory(billed=True): a service item the billing engine knows ("SI-0001").
        billed = factory.Trait(billing_item_id=factory.Sequence(lambda n: f"SI-{n:04d}"))
        # OrderItemFactory(subscription=True): a 30-day service period, 10 days used.
        subscription = factory.Trait(
            period_start=factory.LazyFunction(lambda: timezone.now() - timedelta(days=10)),
            period_end=factory.LazyFunction(lambda: timezone.now() + timedelta(days=20)),
        )


class CancellationFactory(factory.django.DjangoModelFactory):
    """A bare cancellation row, for read-side tests. Use writing.cancel_order to test rules."""

    class Meta:
        model = Cancellation

    order = factory.SubFactory(OrderFactory)
    reason = factory.SubFactory(CancellationReasonFactory)
    status = CancellationStatus.COMPLETED
    churn_time = factory.LazyFunction(timezone.now)
    currency = factory.SelfAttribute("order.currency")
    order_status_before = OrderStatus.OPEN


class SettlementItemFactory(factory.django.DjangoModelFactory):
    """One open month billed for an order item (the billing engine's settlement item)."""

    class Meta:
        model = SettlementItem

    order_item = factory.SubFactory(OrderItemFactory, billed=True)
    amount = Decimal("30.00")
    currency = factory.SelfAttribute("order_item.unit_price_currency")
    period_start = factory.LazyFunction(lambda: timezone.now() - timedelta(days=10))
    period_end = factory.LazyFunction(lambda: timezone.now() + timedelta(days=20))
    state = "open"


class DeliveryFactory(factory.django.DjangoModelFactory):
    """One outbox row; DeliveryFactory(task=True): a skipped add staff must make by hand."""

    class Meta:
        model = "providers.Delivery"

    cancellation = factory.SubFactory(CancellationFactory)
    provider = "callisto"
    action = "add"
    status = "pending"

    class Params:
        task = factory.Trait(
            status="skipped",
            needs_manual_action=True,
            last_error="Callisto can only cancel whole orders. Change it in Callisto by hand.",
        )
