"""Sync completeness: a platform order the hub does not hold raises a gap, and the catch-up poll closes it."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from connectors import services
from connectors.completeness import sync_check_window
from connectors.models import ChannelSyncState
from connectors.sandbox.shopify import ShopifySandbox
from orders.models import Order, Platform
from pipeline import channel
from tests.conftest import PASSWORD, channel_store

pytestmark = pytest.mark.django_db(transaction=True)


def test_late_orders_behind_the_watermark_are_found_and_caught_up(skus, role_users):
    sandbox = ShopifySandbox(port=0, skus=[("TEA-LJ-250G", "37.99")], seed=8)
    sandbox.start()
    try:
        store = channel_store(platform=Platform.SHOPIFY, code="shop-check", name="Shop",
                                     default_currency="USD", credentials=sandbox.connector_credentials())
        ChannelSyncState.objects.get_or_create(store=store)
        now = timezone.now()
        window = (now - timedelta(minutes=90), now - timedelta(minutes=30))
        sandbox.set_clock(now - timedelta(minutes=80))
        sandbox.generate(3, push=False)
        sandbox.set_clock(None)
        services.store_poll(store_id=store.pk)
        channel.inbox_process_store(store_id=store.pk)
        assert sync_check_window(store_id=store.pk, window_start=window[0], window_end=window[1]).missing == []

        # Two orders show up on the platform with update times the watermark has already passed.
        sandbox.set_clock(now - timedelta(minutes=50))
        late = [sandbox.order_id(o) for o in sandbox.generate(2, push=False)]
        sandbox.set_clock(None)
        services.store_poll(store_id=store.pk)  # the overlap window does not reach 50 minutes back
        assert not Order.objects.filter(platform_order_id__in=late).exists()

        check = sync_check_window(store_id=store.pk, window_start=window[0], window_end=window[1])
        assert (check.platform_count, check.hub_count, sorted(check.missing)) == (5, 3, sorted(late))
        assert ChannelSyncState.objects.get(store=store).watermark == window[0]  # catch-up scheduled
        client = Client()
        assert client.login(username="u_manager", password=PASSWORD)
        assert 'data-check-gap="2"' in client.get("/channels/").content.decode()

        services.store_poll(store_id=store.pk)
        channel.inbox_process_store(store_id=store.pk)
        assert Order.objects.filter(platform_order_id__in=late).count() == 2
        assert sync_check_window(store_id=store.pk, window_start=window[0], window_end=window[1]).missing == []
    finally:
        sandbox.stop()
