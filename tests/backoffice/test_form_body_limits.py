"""The staff pages and the admin read form posts through Django's own limits: an oversize body,
too many fields, bytes that aren't UTF-8 or a body that isn't a form get a clean 4xx, never a
500 (the JSON endpoints: test_body_fuzzing.py)."""

import pytest
from django.conf import settings
from django.test import Client

from cancellations.models import AuditEntry
from cancellations.services.writing import cancel_order
from tests.factories import (
    CancellationReasonFactory,
    OrderFactory,
    OrderItemFactory,
    SuperUserFactory,
)

FORM = "application/x-www-form-urlencoded"
CANCELLATION_ID = "fuzz-form"
FORM_PAGES = [
    "/accounts/login/",
    "/i18n/setlang/",
    "/staff/orders/{order}/cancel/",
    "/staff/cancellations/{cancellation}/revoke/",
    "/staff/bulk/new/",
    "/admin/cancellations/order/add/",
    "/admin/cancellations/cancellation/",
    "/admin/reasons/cancellationreason/add/",
]
HOSTILE_FORMS = [
    ("larger than DATA_UPLOAD_MAX_MEMORY_SIZE", b"a=" + b"x" * 3_000_000, FORM),
    (
        "more fields than DATA_UPLOAD_MAX_NUMBER_FIELDS",
        b"&".join(b"f%d=1" % i for i in range(settings.DATA_UPLOAD_MAX_NUMBER_FIELDS + 1)),
        FORM,
    ),
    ("invalid UTF-8", b"reason=\xff\xfe&description=\xed\xa0\x80", FORM),
    ("percent-encoded invalid UTF-8", b"reason=%ff%fe&description=%ed%a0%80", FORM),
    ("a NUL byte", b"description=a%00b&reason=1", FORM),
    ("JSON", b'{"reason": [[[[[[[[]]]]]]]]}', "application/json"),
    ("a multipart body without its boundary", b"--x\r\n\r\n--x--", "multipart/form-data"),
    (
        "a truncated multipart body",
        b"--x\r\nContent-Disposition: form-data",
        "multipart/form-data; boundary=x",
    ),
]


@pytest.fixture
def staff_client(db):
    user = SuperUserFactory()
    order = OrderFactory()
    OrderItemFactory(order=order, quantity=2)
    reason = CancellationReasonFactory()
    cancelled = OrderFactory()
    OrderItemFactory(order=cancelled)
    cancel_order(
        cancelled,
        reason=reason,
        actor=user,
        via=AuditEntry.Via.WEB,
        cancellation_id=CANCELLATION_ID,
    )
    client = Client(enforce_csrf_checks=False)
    client.force_login(user)
    client.order_id = order.pk
    return client


@pytest.mark.parametrize(
    ("body", "content_type"), [pytest.param(b, c, id=n) for n, b, c in HOSTILE_FORMS]
)
def test_a_hostile_form_post_is_a_clean_client_error(staff_client, body, content_type):
    wrong = {}
    for page in FORM_PAGES:
        path = page.format(order=staff_client.order_id, cancellation=CANCELLATION_ID)
        response = staff_client.generic("POST", path, body, content_type)
        if response.status_code >= 500:
            wrong[path] = response.status_code
    assert wrong == {}


def test_an_oversize_form_is_a_400(staff_client):
    response = staff_client.post("/staff/bulk/new/", b"a=" + b"x" * 3_000_000, content_type=FORM)
    assert response.status_code == 400


def test_too_many_fields_behind_csrf_is_a_400(db):
    fields = b"&".join(b"f%d=1" % i for i in range(settings.DATA_UPLOAD_MAX_NUMBER_FIELDS + 1))
    client = Client(enforce_csrf_checks=True)
    client.get("/accounts/login/")  # the CSRF cookie: now the middleware reads the form
    response = client.post("/accounts/login/", fields, content_type=FORM)
    assert response.status_code == 400
