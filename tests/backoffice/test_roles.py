"""The staff roles (backoffice/roles.py): the groups the migration made, sync_roles, the demo's
users, and what each role may do on every page and endpoint.

MATRIX is the spec. One row per page or endpoint and method, one column per role (a staff
user in that group and nothing else), an API client as other apps have it (AC: the API client
role without is_staff) and anonymous visitors:
  Y  allowed: the permission checks let the request through. Any answer but 401, 403, 405 or a
     redirect to a login page; a 400 for the deliberately minimal body counts as allowed.
  N  denied: 403 for a logged-in user (staff pages need is_staff too); for anonymous visitors a
     redirect to the login page (staff pages, admin) or 401 (API); for a user who isn't staff
     the admin's own login page.
`theirs` was made by another API client: the API client column (a user in that role,
is_staff or not) may read it but not change or revoke it (cancellations/ownership.py).
"""

import importlib
import io
import json
from types import SimpleNamespace

import pytest
from django.apps import apps
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.management import call_command
from django.db import connection
from django.db.migrations.loader import MigrationLoader
from django.urls import reverse

from backoffice.roles import (
    API_CLIENT,
    AUDITOR,
    BULK_OPERATOR,
    CUSTOMER_SERVICE,
    REASON_MANAGER,
    ROLE_LABELS,
    ROLES,
    UnknownPermissions,
    sync_roles,
)
from cancellations import bulk
from cancellations.filter_parsing import parse_order_filter
from cancellations.models import AuditEntry
from cancellations.ownership import ACT_FOR_OTHERS
from providers.models import Delivery, DeliveryStatus
from reasons.models import ReasonSyncRun, SyncTrigger
from tests.factories import (
    CancellationFactory,
    CancellationReasonFactory,
    OrderFactory,
    OrderItemFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

Y, N = True, False
ANONYMOUS = "anonymous"
NOT_STAFF_API_CLIENT = "API client, not staff"
# The matrix's columns: CS RM BO AP AU AC an
COLUMNS = (
    CUSTOMER_SERVICE,
    REASON_MANAGER,
    BULK_OPERATOR,
    API_CLIENT,
    AUDITOR,
    NOT_STAFF_API_CLIENT,
    ANONYMOUS,
)


def dry_run(world):
    return {"folders": [{"folder": "/"}], "reasonId": world.reason.pk, "dryRun": True}


def revoke(world):
    """PUT's body revoking `theirs`."""
    return {"orderId": str(world.theirs.order_id), "reasonId": world.reason.pk, "status": "revoked"}


# URL name, its object (an attribute of `world`), method, body (a dict or world → dict)
MATRIX = [
    # URL name                                object          method  body     CS RM BO AP AU AC an
    # --- staff pages ---
    ("home",                                  None,           "GET",  None,    Y, Y, Y, Y, Y, N, N),
    ("staff:dashboard",                       None,           "GET",  None,    Y, Y, Y, Y, Y, N, N),
    ("staff:dashboard-csv",                   None,           "GET",  None,    Y, Y, Y, Y, Y, N, N),
    ("staff:order-list",                      None,           "GET",  None,    Y, Y, Y, Y, Y, N, N),
    ("staff:order-detail",                    "order",        "GET",  None,    Y, Y, Y, Y, Y, N, N),
    ("staff:order-cancel",                    "order",        "GET",  None,    Y, N, Y, Y, N, N, N),
    ("staff:order-cancel",                    "order",        "POST", {},      Y, N, Y, Y, N, N, N),
    ("staff:cancellation-detail",             "cancellation", "GET",  None,    Y, Y, Y, Y, Y, N, N),
    ("staff:cancellation-revoke",             "cancellation", "GET",  None,    Y, N, Y, Y, N, N, N),
    ("staff:cancellation-revoke",             "cancellation", "POST", {},      Y, N, Y, Y, N, N, N),
    # Made by another API client: only staff (or a client allowed to act for others) may act.
    ("staff:cancellation-revoke",             "theirs",       "GET",  None,    Y, N, Y, N, N, N, N),
    ("staff:cancellation-revoke",             "theirs",       "POST", {},      Y, N, Y, N, N, N, N),
    ("staff:delivery-retry",                  "delivery",     "POST", {},      Y, N, Y, N, N, N, N),
    ("staff:bulk-list",                       None,           "GET",  None,    N, N, Y, N, Y, N, N),
    ("staff:bulk-new",                        None,           "GET",  None,    N, N, Y, N, N, N, N),
    ("staff:bulk-new",                        None,           "POST", {},      N, N, Y, N, N, N, N),
    ("staff:bulk-detail",                     "bulk_job",     "GET",  None,    N, N, Y, N, Y, N, N),
    ("staff:bulk-progress",                   "bulk_job",     "GET",  None,    N, N, Y, N, Y, N, N),
    # --- admin ---
    ("admin:cancellations_order_changelist",  None,           "GET",  None,    Y, Y, Y, Y, Y, N, N),
    ("admin:cancellations_auditentry_changelist", None,       "GET",  None,    Y, N, Y, N, Y, N, N),
    ("admin:reasons_cancellationreason_changelist", None,     "GET",  None,    Y, Y, Y, Y, Y, N, N),
    ("admin:reasons_cancellationreason_add",  None,           "GET",  None,    N, Y, N, N, N, N, N),
    ("admin:reasons_cancellationreason_pull", None,           "POST", {},      N, Y, N, N, N, N, N),
    ("admin:reasons_reasonsyncrun_changelist",  None,         "GET",  None,    N, Y, N, N, Y, N, N),
    ("admin:providers_delivery_changelist",   None,           "GET",  None,    Y, N, Y, N, Y, N, N),
    ("admin:providers_providersetting_changelist", None,      "GET",  None,    N, N, N, N, Y, N, N),
    ("admin:cancellations_bulkcancellation_changelist", None, "GET",  None,    N, N, Y, N, Y, N, N),
    ("admin:auth_user_changelist",            None,           "GET",  None,    N, N, N, N, N, N, N),
    ("admin:auth_group_changelist",           None,           "GET",  None,    N, N, N, N, N, N, N),
    # --- API ---
    ("cancellations-api:order-list",          None,           "GET",  None,    Y, Y, Y, Y, Y, Y, N),
    ("cancellations-api:order-list",          None,           "POST", {},      N, N, N, Y, N, Y, N),
    ("cancellations-api:order-detail",        "order",        "GET",  None,    Y, Y, Y, Y, Y, Y, N),
    ("cancellations-api:cancellation-list",   None,           "GET",  None,    Y, Y, Y, Y, Y, Y, N),
    ("cancellations-api:cancellation-list",   None,           "POST", {},      Y, N, Y, Y, N, Y, N),
    ("cancellations-api:cancellation-detail", "cancellation", "PUT",  {},      Y, N, Y, Y, N, Y, N),
    ("cancellations-api:cancellation-revoke", "cancellation", "POST", {},      Y, N, Y, Y, N, Y, N),
    ("cancellations-api:cancellation-detail", "theirs",       "GET",  None,    Y, Y, Y, Y, Y, Y, N),
    ("cancellations-api:cancellation-detail", "theirs",       "PUT",  revoke,  Y, N, Y, N, N, N, N),
    ("cancellations-api:cancellation-revoke", "theirs",       "POST", {},      Y, N, Y, N, N, N, N),
    ("cancellations-api:service-items-cancel",  None,         "POST", {},      Y, N, Y, Y, N, Y, N),
    ("cancellations-api:orders-cancel",       None,           "POST", dry_run, N, N, Y, N, N, N, N),
    ("cancellations-api:bulk-cancellation-list", None,        "GET",  None,    N, N, Y, N, Y, N, N),
    ("cancellation-reason-list",              None,           "GET",  None,    Y, Y, Y, Y, Y, Y, N),
    ("cancellation-reason-pull-from-omnitron",  None,         "GET",  None,    N, Y, N, N, N, N, N),
]  # fmt: skip


def matrix_cases():
    for url_name, obj, method, body, *allowed in MATRIX:
        for role, expected in zip(COLUMNS, allowed, strict=True):
            yield pytest.param(
                role,
                url_name,
                obj,
                method,
                body,
                expected,
                id=f"{role}-{method}-{url_name}",
            )


class World:
    """One of everything the rows point at."""

    def __init__(self):
        self.reason = CancellationReasonFactory()
        self.order = OrderFactory()
        OrderItemFactory(order=self.order, quantity=2)
        self.cancellation = CancellationFactory(order=OrderFactory(), reason=self.reason)
        # Made by another API client (cancellations/ownership.py).
        self.theirs = CancellationFactory(
            order=OrderFactory(),
            reason=self.reason,
            created_by=user_in(API_CLIENT, is_staff=False),
        )
        # Retrying a delivered delivery is refused with a message: nothing is sent.
        self.delivery = Delivery.objects.create(
            cancellation=self.cancellation,
            provider="rebilly",
            action="add",
            status=DeliveryStatus.DELIVERED,
        )
        self.bulk_job = bulk.start_bulk_cancellation(
            parse_order_filter({"folders": [{"folder": "/"}]}),
            reason=self.reason,
            actor=None,
            via=AuditEntry.Via.API,
        )
        # A pull already running: an allowed pull is refused with a message, Omnitron isn't
        # called.
        ReasonSyncRun.objects.create(trigger=SyncTrigger.SCHEDULE)


def user_in(role, *, is_staff=True):
    user = UserFactory(is_staff=is_staff)
    user.groups.add(Group.objects.get(name=role))
    return user


def send(client, method, url, body, *, is_api):
    if method == "GET":
        return client.get(url)
    if is_api:
        return client.generic(method, url, data=json.dumps(body), content_type="application/json")
    return client.post(url, body)


def is_login_redirect(response) -> bool:
    return response.status_code == 302 and (
        response["Location"].startswith(reverse("login"))
        or response["Location"].startswith(reverse("admin:login"))
    )


@pytest.mark.parametrize(
    ("role", "url_name", "obj", "method", "body", "expected"), list(matrix_cases())
)
def test_each_role_is_allowed_or_denied_as_the_matrix_says(
    client, role, url_name, obj, method, body, expected
):
    world = World()
    if role == NOT_STAFF_API_CLIENT:
        client.force_login(user_in(API_CLIENT, is_staff=False))
    elif role != ANONYMOUS:
        client.force_login(user_in(role))
    url = reverse(url_name, args=[getattr(world, obj).pk] if obj else [])
    is_api = url.startswith("/api/")
    response = send(client, method, url, body(world) if callable(body) else body, is_api=is_api)

    status = response.status_code
    if expected:
        assert status not in (401, 403, 405), status
        assert not is_login_redirect(response)
        assert status < 500
    elif role == ANONYMOUS:
        assert status == 401 if is_api else is_login_redirect(response), status
    elif role == NOT_STAFF_API_CLIENT and url.startswith("/admin/"):
        assert is_login_redirect(response), status  # the admin asks for a staff login
    else:
        assert status == 403, status


# --- the groups ----------------------------------------------------------------------------------


def permissions_of(group) -> set[str]:
    return {
        f"{app_label}.{codename}"
        for app_label, codename in group.permissions.values_list(
            "content_type__app_label", "codename"
        )
    }


def test_the_migration_made_a_group_per_role_with_exactly_its_permissions():
    groups = {group.name: group for group in Group.objects.filter(name__in=ROLES)}

    assert groups.keys() == ROLES.keys()
    for name, permission_names in ROLES.items():
        assert permissions_of(groups[name]) == set(permission_names), name


def test_syncing_again_changes_nothing():
    changes = sync_roles()

    assert [(c.name, c.created, c.added, c.removed) for c in changes] == [
        (name, False, [], []) for name in ROLES
    ]


def test_sync_removes_what_is_no_longer_listed_and_adds_what_is_missing():
    service = Group.objects.get(name=CUSTOMER_SERVICE)
    service.permissions.add(Permission.objects.get(codename="delete_order"))
    service.permissions.remove(Permission.objects.get(codename="retry_delivery"))

    (change,) = [c for c in sync_roles() if c.name == CUSTOMER_SERVICE]

    assert (change.added, change.removed) == (
        ["providers.retry_delivery"],
        ["cancellations.delete_order"],
    )
    assert permissions_of(service) == set(ROLES[CUSTOMER_SERVICE])


def test_sync_recreates_a_deleted_group_and_leaves_other_groups_alone():
    Group.objects.filter(name=AUDITOR).delete()
    own = Group.objects.create(name="Night shift")
    own.permissions.add(Permission.objects.get(codename="delete_order"))

    sync_roles()

    assert permissions_of(Group.objects.get(name=AUDITOR)) == set(ROLES[AUDITOR])
    assert permissions_of(own) == {"cancellations.delete_order"}


def test_an_unknown_permission_in_roles_is_refused_unless_skipped(monkeypatch):
    monkeypatch.setitem(ROLES, AUDITOR, [*ROLES[AUDITOR], "cancellations.view_nothing"])

    with pytest.raises(UnknownPermissions, match=r"cancellations\.view_nothing"):
        sync_roles()
    (change,) = [c for c in sync_roles(skip_missing=True) if c.name == AUDITOR]
    assert change.missing == ["cancellations.view_nothing"]


def test_the_command_reports_what_it_changed():
    Group.objects.get(name=REASON_MANAGER).permissions.remove(
        Permission.objects.get(codename="pull_reasons")
    )
    out = io.StringIO()

    call_command("sync_roles", stdout=out)

    assert "Reason manager: updated\n  + reasons.pull_reasons\n" in out.getvalue()
    assert "Customer service: unchanged" in out.getvalue()


def test_the_auditor_may_view_every_model_of_the_domain_apps_and_nothing_more():
    every_view = {
        f"{model._meta.app_label}.view_{model._meta.model_name}"
        for label in ("cancellations", "reasons", "providers")
        for model in apps.get_app_config(label).get_models()
    }

    assert set(ROLES[AUDITOR]) == every_view


def test_bulk_operators_can_do_everything_customer_service_can():
    assert set(ROLES[CUSTOMER_SERVICE]) < set(ROLES[BULK_OPERATOR])


def test_staff_roles_act_for_other_clients_and_the_api_client_role_does_not():
    acting_for_others = {
        name for name, permissions in ROLES.items() if ACT_FOR_OTHERS in permissions
    }

    assert acting_for_others == {CUSTOMER_SERVICE, BULK_OPERATOR}


def test_the_ownership_migration_adds_the_permission_and_takes_nothing_away():
    """On a database whose groups an operator changed (cancellations 0006)."""
    migration = importlib.import_module("cancellations.migrations.0006_act_for_other_clients")
    act_for_others = Permission.objects.get(codename="act_for_other_clients")
    service = Group.objects.get(name=CUSTOMER_SERVICE)
    service.permissions.remove(act_for_others)
    service.permissions.add(Permission.objects.get(codename="delete_order"))
    Group.objects.get(name=BULK_OPERATOR).permissions.remove(act_for_others)
    editor = SimpleNamespace(connection=SimpleNamespace(alias="default"))

    # The migration's own historical models, not the live registry, whose app configs it
    # changes for a moment (models_module) as migrations do.
    state = MigrationLoader(connection).project_state(
        ("cancellations", "0006_act_for_other_clients")
    )
    migration.give_staff_roles_the_permission(state.apps, editor)

    assert permissions_of(service) == {*ROLES[CUSTOMER_SERVICE], "cancellations.delete_order"}
    assert ACT_FOR_OTHERS in permissions_of(Group.objects.get(name=BULK_OPERATOR))
    assert ACT_FOR_OTHERS not in permissions_of(Group.objects.get(name=API_CLIENT))


def test_every_role_has_a_translatable_label():
    assert ROLE_LABELS.keys() == ROLES.keys()


# --- the demo ------------------------------------------------------------------------------------


def test_the_demo_puts_agent_and_lead_into_their_roles():
    out = io.StringIO()

    call_command("demo_data", orders=0, stdout=out)

    agent = get_user_model().objects.get(username="agent")
    lead = get_user_model().objects.get(username="lead")
    assert set(agent.groups.values_list("name", flat=True)) == {CUSTOMER_SERVICE}
    assert set(lead.groups.values_list("name", flat=True)) == {BULK_OPERATOR, REASON_MANAGER}
    assert agent.has_perm("cancellations.revoke_cancellation")
    assert lead.has_perm("cancellations.run_bulk_cancellation")
    assert lead.has_perm("reasons.pull_reasons")
    assert lead.check_password("storno-demo")
    assert "lead / storno-demo" in out.getvalue()
