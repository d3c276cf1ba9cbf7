"""dryRun: true on POST and PUT /api/v1/order-cancellations/: 200 with the quote and every
provider's verdict, writing nothing (no cancellation, audit entry, delivery or kept key)."""

import pytest
from rest_framework.test import APIClient

from backoffice.models import IdempotencyKey
from cancellations.models import AuditEntry, Cancellation, CancellationItem
from providers.models import Delivery, ProviderSetting
from tests.factories import OrderFactory, OrderItemFactory
from tests.providers.outbox_support import cancel

pytestmark = pytest.mark.django_db
LIST = "/api/v1/order-cancellations/"
SALESFORCE_ID = "005000000000001AAA"


@pytest.fixture(autouse=True)
def providers_enabled(db):
    for kind in ("callisto", "rebilly"):
        ProviderSetting.objects.create(kind=kind, enabled=True, base_url=f"http://{kind}.invalid")
    ProviderSetting.objects.create(kind="billing", enabled=False)
    ProviderSetting.objects.create(kind="js7", enabled=False)


@pytest.fixture
def api(agent):
    client = APIClient()
    client.force_authenticate(agent)
    return client


@pytest.fixture
def order(db):
    order = OrderFactory(external_ids={"callisto": "4711", "rebilly": "ord_1"})
    OrderItemFactory(order=order, quantity=2)
    return order


def written() -> dict:
    return {
        "cancellations": Cancellation.objects.count(),
        "items": CancellationItem.objects.count(),
        "audit": AuditEntry.objects.count(),
        "deliveries": Delivery.objects.count(),
        "keys": IdempotencyKey.objects.count(),
    }


NOTHING = {"cancellations": 0, "items": 0, "audit": 0, "deliveries": 0, "keys": 0}


def providers(body) -> dict:
    return {p["provider"]: (p["willBeTold"], p["reason"]) for p in body["providers"]}


def test_a_dry_run_answers_200_with_the_quote_and_the_plan_and_writes_nothing(api, order, reason):
    item = order.items.get()
    body = {
        "orderId": order.pk,
        "reasonId": reason.pk,
        "items": [{"itemId": item.pk, "quantity": 1}],
        "externalUserId": SALESFORCE_ID,
        "dryRun": True,
    }

    response = api.post(LIST, body, format="json", HTTP_IDEMPOTENCY_KEY="dry-1")

    assert response.status_code == 200
    assert written() == NOTHING
    answer = response.json()
    assert answer["dryRun"] is True
    assert answer["quote"]["wholeOrder"] is False
    assert answer["quote"]["items"][0] == {
        "itemId": item.pk,
        "sku": item.sku,
        "quantity": 1,
        "proratedCreditAmount": 0.0,
    }
    assert providers(answer) == {
        "billing": (False, "not_enabled"),
        "callisto": (False, "whole_orders_only"),
        "js7": (False, "not_enabled"),
        "rebilly": (True, "will_be_told"),
    }
    callisto = next(p for p in answer["providers"] if p["provider"] == "callisto")
    assert callisto["needsManualAction"] is True
    assert "whole orders" in callisto["message"]


def test_a_dry_run_keeps_no_idempotency_key(api, order, reason):
    body = {"orderId": order.pk, "reasonId": reason.pk, "externalUserId": SALESFORCE_ID}
    dry = {**body, "dryRun": True}

    first = api.post(LIST, dry, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    second = api.post(LIST, dry, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    # Had the dry run kept the key, another body with it would be a 422 (key reused).
    real = api.post(LIST, body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")

    assert (first.status_code, second.status_code) == (200, 200)
    assert "Idempotent-Replayed" not in second
    assert real.status_code == 201
    assert Cancellation.objects.count() == 1


def test_a_dry_run_refuses_bad_input_as_the_real_request_does(api, order, reason):
    body = {"orderId": order.pk, "reasonId": reason.pk, "items": [{"itemId": 0, "quantity": 1}]}

    dry = api.post(LIST, {**body, "dryRun": True}, format="json")
    real = api.post(LIST, body, format="json")

    assert dry.status_code == real.status_code == 400
    assert dry.json()["invalidFields"] == real.json()["invalidFields"]
    assert written() == NOTHING


def test_a_dry_run_of_an_upsert_writes_nothing(api, order, reason):
    body = {
        "orderId": str(order.pk),
        "reasonId": reason.pk,
        "externalUserId": SALESFORCE_ID,
        "dryRun": True,
    }

    response = api.put(f"{LIST}cnl-dry-1", body, format="json")

    assert response.status_code == 200
    assert written() == NOTHING
    assert response.json()["quote"]["wholeOrder"] is True
    assert providers(response.json())["callisto"] == (True, "will_be_told")


def test_a_dry_run_of_an_upsert_revoke_says_who_will_hear_of_it(api, order, reason):
    cancellation = cancel(order, external_user_id=SALESFORCE_ID)
    before = written()
    body = {"orderId": str(order.pk), "reasonId": reason.pk, "status": "revoked", "dryRun": True}

    response = api.put(f"{LIST}{cancellation.pk}", body, format="json")

    assert response.status_code == 200
    assert written() == before
    assert response.json()["quote"] is None
    # The adds were never sent: nothing to revoke anywhere.
    assert set(providers(response.json()).values()) == {(False, "nothing_to_revoke")}
    cancellation.refresh_from_db()
    assert cancellation.status == "completed"


def test_dry_run_is_documented_in_the_openapi_document(api):
    schema = api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()

    create = schema["paths"][LIST]["post"]
    assert "200" in create["responses"] and "201" in create["responses"]
    assert "dryRun" in schema["components"]["schemas"]["CancellationInputRequest"]["properties"]
    assert "providers" in schema["components"]["schemas"]["DryRun"]["properties"]
