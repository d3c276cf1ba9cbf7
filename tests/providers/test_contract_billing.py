"""Every body the billing adapter builds is AEB's BReverseServiceItemsRequestDTO
(docs/contracts/billing/aeb-lcm-cancelServiceItems.openapi-subset.json), with the lengths its
descriptions give and no other keys."""

from datetime import timedelta

import pytest
from django.utils import timezone

from cancellations import billing
from cancellations.models import AuditEntry
from cancellations.services import quoting, writing
from providers.base import ProviderConfig
from providers.billing import BillingAdapter
from providers.contracts import openapi_schema, schema_errors
from providers.fakes.billing import CONTRACT, request_problems
from reasons.models import ProviderKind, ReasonMapping
from tests.factories import (
    CancellationReasonFactory,
    OrderFactory,
    OrderItemFactory,
    SettlementItemFactory,
    UserFactory,
)

API = AuditEntry.Via.API
REQUEST_DTO = openapi_schema(CONTRACT, "BReverseServiceItemsRequestDTO")


def adapter() -> BillingAdapter:
    return BillingAdapter(
        ProviderConfig(
            kind="billing",
            base_url="http://engine.invalid/rest",
            username="u",
            password="p",
            extra={
                "client_system_id": "S" * 20,
                "client_ident_code": "C" * 10,
                "user_name": "STORNO_API",
            },
        )
    )


def service_items(order, count, **item):
    items = OrderItemFactory.create_batch(count, order=order, billed=True, **item)
    for row in items:
        SettlementItemFactory(order_item=row)
    return items


def whole(order, reason, user):
    return writing.cancel_order(order, reason=reason, actor=user, via=API)


def scheduled_partial(order, reason, user):
    first = order.items.order_by("pk").first()
    return writing.cancel_order(
        order,
        reason=reason,
        items=[quoting.ItemPick(first.pk, first.quantity)],
        churn_time=timezone.now() + timedelta(days=3),
        actor=user,
        via=API,
    )


def long_non_ascii_reason(order, reason, user):
    ReasonMapping.objects.create(
        reason=reason, provider_kind=ProviderKind.BILLING, value="Kündigung – çok pahalı " * 10
    )
    return whole(order, reason, user)


@pytest.mark.parametrize("make", [whole, scheduled_partial, long_non_ascii_reason])
@pytest.mark.parametrize("login", ["jdoe", "Ömer.Çelik@example.com", "x" * 150, None])
@pytest.mark.parametrize("count", [1, 3, 80])
def test_every_outbound_body_is_the_request_dto(db, make, login, count):
    order = OrderFactory()
    service_items(order, count, sku="PLAN-Ü")
    OrderItemFactory(order=order)  # a plain item beside them
    user = UserFactory(username=login) if login else None
    cancellation = make(order, CancellationReasonFactory(subject="Zu teuer – çok pahalı"), user)

    item_ids = billing.engine_items(cancellation).item_ids
    body = adapter().build_payload(cancellation, item_ids)

    assert item_ids
    assert schema_errors(body, REQUEST_DTO) == []
    assert request_problems(body) == []
    assert len(body["reasonOfReversal"]) <= 250
    if login:
        assert body["reasonOfReversal"].endswith(f" (by {login})")
    assert body["userName"] == "STORNO_API"


def test_an_item_id_of_fifty_characters_is_sent_as_it_is(db):
    order = OrderFactory()
    item = OrderItemFactory(order=order, billing_item_id="Ж" * 50)
    SettlementItemFactory(order_item=item)
    cancellation = whole(order, CancellationReasonFactory(), None)

    body = adapter().build_payload(cancellation, billing.engine_items(cancellation).item_ids)

    assert body["items"] == [{"itemId": "Ж" * 50}]
    assert request_problems(body) == []
