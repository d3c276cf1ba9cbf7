"""Staff read the audit trail in words (cancellations/audit_labels.py): a translated label for
every action the code base writes, fuller where the entry's data allows, on the pages and in
the admin. The codes stay in the database."""

import ast
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import translation

from cancellations import audit_labels
from cancellations.models import AuditEntry
from cancellations.services import writing
from tests.factories import CancellationReasonFactory, OrderItemFactory, SuperUserFactory

APPS = ("cancellations", "providers", "reasons", "backoffice")
# The functions that take an audit action code as their first argument (cancellations/audit.py
# and the bulk batch's own row maker).
WRITERS = {"record", "entry", "entry_values", "add", "_entry"}


@pytest.fixture(autouse=True)
def _english():
    """English unless a test says otherwise (a request before may leave its language active)."""
    with translation.override("en"):
        yield


def written_codes() -> set[str]:
    """Every action code a module passes to the audit writers, as a literal or either branch of
    a conditional."""
    codes = set()
    for app in APPS:
        for path in (Path(settings.BASE_DIR) / app).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Call) and node.args and _name(node.func) in WRITERS:
                    codes.update(_literals(node.args[0]))
    return {code for code in codes if "." in code and " " not in code}


def _name(func) -> str:
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")


def _literals(node) -> list[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.IfExp):
        return _literals(node.body) + _literals(node.orelse)
    return []


def test_every_action_the_code_writes_has_a_label():
    codes = written_codes()

    assert {"cancellation.created", "order.status_changed", "delivery.retried"} <= codes
    assert codes - audit_labels.ACTION_LABELS.keys() == set()


def test_every_fuller_label_has_a_plain_one_for_entries_without_the_data():
    assert audit_labels.DETAILED_LABELS.keys() <= audit_labels.ACTION_LABELS.keys()


def test_a_status_change_names_both_statuses():
    label = audit_labels.describe(
        "order.status_changed", {"from": "open", "to": "partially_cancelled"}
    )

    assert label == "Order status changed from Open to Partially cancelled"


@pytest.mark.parametrize("data", [{}, {"from": "open"}, None, ["not", "a", "dict"]])
def test_without_the_data_the_label_is_the_plain_one(data):
    assert audit_labels.describe("order.status_changed", data) == "Order status changed"


def test_an_unknown_code_still_reads_as_words():
    assert audit_labels.describe("some_thing.went_away", {}) == "Some thing: went away"
    assert audit_labels.describe("staff_task.marked_done") == "Staff task: marked done"
    assert audit_labels.describe("") == ""


def test_the_labels_are_translated():
    with translation.override("de"):
        assert audit_labels.describe("cancellation.completed") == "Stornierung abgeschlossen"
        assert (
            audit_labels.describe("order.status_changed", {"from": "open", "to": "cancelled"})
            == "Bestellstatus von Offen auf Storniert geändert"
        )
    with translation.override("tr"):
        assert audit_labels.describe("cancellation.completed") == "İptal tamamlandı"


# --- pages and admin ------------------------------------------------------------------------------


@pytest.fixture
def cancelled(db):
    """A whole order cancelled at once: created, completed, the order's status changed."""
    order = OrderItemFactory(quantity=2).order
    return writing.cancel_order(
        order, reason=CancellationReasonFactory(), actor=None, via=AuditEntry.Via.API
    )


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("en", ["Cancellation created", "Order status changed from Open to Cancelled"]),
        ("de", ["Stornierung angelegt", "Bestellstatus von Offen auf Storniert geändert"]),
        ("tr", ["İptal oluşturuldu", "İptal tamamlandı"]),
    ],
)
def test_the_pages_show_the_trail_in_the_users_language(
    client, agent, cancelled, language, expected
):
    client.force_login(agent)

    for url in (cancelled.order.get_absolute_url(), cancelled.get_absolute_url()):
        content = client.get(url, HTTP_ACCEPT_LANGUAGE=language).content.decode()

        for label in expected:
            assert label in content, (url, label)
        assert "<code>cancellation.created</code>" not in content


def test_the_admin_lists_labels_and_filters_by_them(client, cancelled):
    client.force_login(SuperUserFactory())
    url = reverse("admin:cancellations_auditentry_changelist")

    content = client.get(url, HTTP_ACCEPT_LANGUAGE="de").content.decode()
    filtered = client.get(url, {"action": "cancellation.completed"})

    assert "Stornierung angelegt" in content
    assert "Bestellstatus von Offen auf Storniert geändert" in content
    assert '?action=cancellation.completed"' in content  # the filter, by label
    assert [entry.action for entry in filtered.context["cl"].result_list] == [
        "cancellation.completed"
    ]


def test_the_admin_shows_an_entry_with_its_label_and_its_code(client, cancelled):
    client.force_login(SuperUserFactory())
    entry = AuditEntry.objects.get(action="order.status_changed")

    content = client.get(
        reverse("admin:cancellations_auditentry_change", args=[entry.pk])
    ).content.decode()

    assert "Order status changed from Open to Cancelled" in content
    assert "order.status_changed" in content
