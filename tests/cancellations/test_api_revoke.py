"""POST /api/v1/order-cancellations/{id}/revoke/: undo a cancellation."""

import pytest
from rest_framework.test import APIClient

from cancellations.models import AuditEntry
from cancellations.services import writing
from cancellations.states import OrderStatus
from tests.factories import UserFactory


def revoke_url(cancellation_id: str) -> str:
    return f"/api/v1/order-cancellations/{cancellation_id}/revoke/"


def invalid_fields(response) -> dict:
    return {error["field"]: error["code"] for error in response.json()["invalidFields"]}


@pytest.fixture
def api(agent):
    client = APIClient()
    client.force_authenticate(agent)
    return client


@pytest.fixture
def cancellation(order_with_items, reason):
    return writing.cancel_order(
        order_with_items, reason=reason, actor=None, via=AuditEntry.Via.SYSTEM
    )


def test_revoking_gives_the_order_back(api, agent, cancellation, order_with_items):
    response = api.post(revoke_url(cancellation.pk), {"comment": "Customer stays"}, format="json")

    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "revoked"
    assert response.json()["revokedTime"] is not None
    order_with_items.refresh_from_db()
    assert order_with_items.status == OrderStatus.OPEN
    entry = AuditEntry.objects.get(action="cancellation.revoked")
    assert (entry.via, entry.actor, entry.comment) == (AuditEntry.Via.API, agent, "Customer stays")


def test_revoking_without_a_body_is_fine(api, cancellation):
    assert api.post(revoke_url(cancellation.pk)).status_code == 200


def test_revoking_twice_is_a_409_cancellation_not_revocable(api, cancellation):
    api.post(revoke_url(cancellation.pk), {}, format="json")

    response = api.post(revoke_url(cancellation.pk), {}, format="json")

    assert response.status_code == 409
    assert response.json()["type"] == "urn:storno:problem:cancellation-not-revocable"
    assert invalid_fields(response) == {"status": "not_revocable"}


def test_a_comment_over_255_characters_is_refused(api, cancellation):
    response = api.post(revoke_url(cancellation.pk), {"comment": "x" * 256}, format="json")

    assert response.status_code == 400
    assert "comment" in invalid_fields(response)
    cancellation.refresh_from_db()
    assert cancellation.status == "completed"


def test_revoking_an_unknown_cancellation_is_a_404(api):
    assert api.post(revoke_url("nope"), {}, format="json").status_code == 404


def test_revoking_needs_the_revoke_permission(cancellation):
    client = APIClient()
    client.force_authenticate(
        UserFactory(
            permissions=["cancellations.view_cancellation", "cancellations.change_cancellation"]
        )
    )

    response = client.post(revoke_url(cancellation.pk), {}, format="json")

    assert response.status_code == 403
    cancellation.refresh_from_db()
    assert cancellation.status == "completed"


def test_revoking_needs_credentials(cancellation):
    assert APIClient().post(revoke_url(cancellation.pk), {}, format="json").status_code == 401
