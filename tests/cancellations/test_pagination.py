"""The order list's paginator: Django's pages, read cheaply from big tables."""

from datetime import timedelta

import pytest
from django.core.paginator import Paginator
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from cancellations.models import Order
from cancellations.pagination import SMALL_RESULT_PAGES, BigTablePaginator
from tests.factories import OrderFactory

pytestmark = pytest.mark.django_db
PER_PAGE = 3


@pytest.fixture
def many_orders():
    """More orders than a small result; four at a time placed at the same moment (ties)."""
    now = timezone.now()
    for n in range(PER_PAGE * SMALL_RESULT_PAGES + 7):
        OrderFactory(placed_at=now - timedelta(minutes=n // 4))
    return Order.objects.all()


def numbers(page) -> list[str]:
    return [order.number for order in page.object_list]


@pytest.mark.parametrize("orphans", [0, 2])
def test_every_page_holds_what_djangos_paginator_puts_on_it(many_orders, orphans):
    ours = BigTablePaginator(many_orders, PER_PAGE, orphans=orphans)
    django = Paginator(many_orders, PER_PAGE, orphans=orphans)

    assert ours.num_pages == django.num_pages
    for number in django.page_range:
        assert numbers(ours.page(number)) == numbers(django.page(number)), number


def test_a_late_page_is_read_from_the_other_end(many_orders):
    paginator = BigTablePaginator(many_orders, PER_PAGE)
    paginator.count  # noqa: B018 - counted before, as the page's template does

    with CaptureQueriesContext(connection) as last:
        page = paginator.page(paginator.num_pages)
        list(page.object_list)

    assert len(last.captured_queries) == 1
    assert "OFFSET" not in last.captured_queries[0]["sql"].upper()
    assert "ASC" in last.captured_queries[0]["sql"].upper()


def test_a_small_result_is_read_without_limit(many_orders):
    few = many_orders.filter(pk__in=[order.pk for order in many_orders[:5]])
    paginator = BigTablePaginator(few, PER_PAGE)
    paginator.count  # noqa: B018

    with CaptureQueriesContext(connection) as second:
        page = paginator.page(2)

    assert numbers(page) == [order.number for order in list(few)[3:5]]
    assert "LIMIT" not in second.captured_queries[0]["sql"].upper()


def test_a_list_pages_as_with_djangos_paginator():
    page = BigTablePaginator(list("abcdefg"), PER_PAGE).page(3)

    assert list(page.object_list) == ["g"]
