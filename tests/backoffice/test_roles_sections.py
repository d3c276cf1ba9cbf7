"""What each role sees on the staff pages (backoffice/roles.py, the demo's agent, lead and admin):
the deliveries, their attempts and the audit trail are there only with their view permissions,
and then without an empty shell or a link to them. The pages themselves: test_roles.MATRIX.

SECTIONS is the spec: one row per page section, one column per role (a staff user in those
groups; the admin is a superuser). Y: the section is on the page; N: nothing of it is."""

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from backoffice import auth_backends
from backoffice.roles import (
    API_CLIENT,
    AUDITOR,
    BULK_OPERATOR,
    CUSTOMER_SERVICE,
    REASON_MANAGER,
)
from cancellations.models import AuditEntry
from cancellations.services import writing
from providers.models import Delivery, DeliveryAttempt, DeliveryStatus
from tests.factories import (
    CancellationReasonFactory,
    OrderItemFactory,
    SuperUserFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

Y, N = True, False
AGENT, LEAD, ADMIN = "agent", "lead", "admin"
# The demo's users (backoffice/management/commands/demo_data.py) and the other roles alone.
USERS = {
    AGENT: [CUSTOMER_SERVICE],
    LEAD: [BULK_OPERATOR, REASON_MANAGER],
    REASON_MANAGER: [REASON_MANAGER],
    API_CLIENT: [API_CLIENT],
    AUDITOR: [AUDITOR],
}
COLUMNS = (AGENT, LEAD, ADMIN, REASON_MANAGER, API_CLIENT, AUDITOR)

# page, what marks the section on it (each of them is absent without it)
SECTIONS = [
    # page            marks                                                   ag le ad RM AP AU
    ("order",         ['id="order-audit"', "Cancellation created"],           Y, Y, Y, N, N, Y),
    ("cancellation",  ['id="cancellation-audit"', "Cancellation created"],    Y, Y, Y, N, N, Y),
    ("cancellation",  ['id="cancellation-deliveries"', 'data-provider="rebilly"'],
                                                                              Y, Y, Y, N, N, Y),
    ("cancellation",  ['class="attempts"', "HTTP 502"],                       Y, Y, Y, N, N, Y),
    ("dashboard",     ['id="panel-deliveries"', "/admin/providers/"],         Y, Y, Y, N, N, Y),
]  # fmt: skip


def section_cases():
    for page, marks, *shown in SECTIONS:
        for role, expected in zip(COLUMNS, shown, strict=True):
            yield pytest.param(role, page, marks, expected, id=f"{role}-{page}-{marks[0]}")


def user_as(role):
    if role == ADMIN:
        return SuperUserFactory()
    user = UserFactory()
    user.groups.add(*Group.objects.filter(name__in=USERS[role]))
    return user


class World:
    """A cancellation with an audit trail and a failed delivery that was tried once."""

    def __init__(self):
        order = OrderItemFactory(quantity=2).order
        self.cancellation = writing.cancel_order(
            order, reason=CancellationReasonFactory(), actor=None, via=AuditEntry.Via.API
        )
        self.order = order
        delivery = Delivery.objects.create(
            cancellation=self.cancellation,
            provider="rebilly",
            action="add",
            status=DeliveryStatus.FAILED,
            attempts=1,
        )
        DeliveryAttempt.objects.create(delivery=delivery, number=1, status_code=502)

    def url(self, page):
        return {
            "order": self.order.get_absolute_url(),
            "cancellation": self.cancellation.get_absolute_url(),
            "dashboard": reverse("staff:dashboard"),
        }[page]


@pytest.mark.parametrize(("role", "page", "marks", "expected"), list(section_cases()))
def test_each_role_sees_a_section_as_the_matrix_says(client, role, page, marks, expected):
    world = World()
    client.force_login(user_as(role))

    response = client.get(world.url(page))

    assert response.status_code == 200
    content = response.content.decode()
    for mark in marks:
        assert (mark in content) is expected, mark


def test_deliveries_without_their_attempts_for_a_user_who_may_not_see_attempts(client):
    world = World()
    client.force_login(
        UserFactory(permissions=["cancellations.view_cancellation", "providers.view_delivery"])
    )

    content = client.get(world.url("cancellation")).content.decode()

    assert 'data-provider="rebilly"' in content
    assert 'class="attempts"' not in content
    assert 'id="cancellation-audit"' not in content


SECTION_TABLES = ["providers_delivery", "providers_deliveryattempt", "cancellations_auditentry"]


def permission_reads(queries) -> list[str]:
    return [q["sql"] for q in queries if "auth_permission" in q["sql"]]


@pytest.mark.parametrize("role", [AGENT, REASON_MANAGER])
def test_the_sections_read_the_kept_permissions_and_skip_what_is_not_shown(
    client, monkeypatch, role
):
    monkeypatch.setenv("PERMISSIONS_MAX_AGE", "600")  # no expiry between the two requests
    auth_backends.forget_permissions()
    world = World()
    client.force_login(user_as(role))

    with CaptureQueriesContext(connection) as first:
        client.get(world.url("cancellation"))
    with CaptureQueriesContext(connection) as again:
        client.get(world.url("cancellation"))
    auth_backends.forget_permissions()

    # Once the user's and once their groups' permissions, whatever the number of sections;
    # then none: the backend keeps them (backoffice/auth_backends.py).
    assert len(permission_reads(first.captured_queries)) == 2
    assert permission_reads(again.captured_queries) == []
    sections_read = [
        table
        for table in SECTION_TABLES
        if any(f'FROM "{table}"' in q["sql"] for q in again.captured_queries)
    ]
    assert sections_read == (SECTION_TABLES if role == AGENT else [])
