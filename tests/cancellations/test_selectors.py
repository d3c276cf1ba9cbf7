"""Read-side queries of the cancellations app."""

import pytest

from cancellations import selectors
from tests.factories import OrderFactory

pytestmark = pytest.mark.django_db


def test_order_channels_lists_each_channel_once_sorted():
    for channel in ["/shop/tr", "/b2b/de", "/shop/de", "/shop/tr", "/shop/de/app", "/b2b/de"]:
        OrderFactory(channel=channel)

    assert selectors.order_channels() == ["/b2b/de", "/shop/de", "/shop/de/app", "/shop/tr"]


def test_order_channels_is_empty_without_orders():
    assert selectors.order_channels() == []


def test_order_channels_is_one_query(django_assert_num_queries):
    OrderFactory.create_batch(3, channel="/shop/de")

    with django_assert_num_queries(1):
        selectors.order_channels()
