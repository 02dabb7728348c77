"""Pinduoduo end to end: a group-buy order is held until the group forms on the platform, then ready by itself."""

from datetime import timedelta

import pytest
from django.utils import timezone

from connectors import services
from connectors.models import ChannelSyncState
from connectors.sandbox.pdd import PddSandbox
from orders.models import Order, OrderStatus, Platform
from pipeline import channel
from tests.conftest import channel_store

pytestmark = pytest.mark.django_db(transaction=True)


def sync(store, at):
    """One beat of the pipeline at time ``at``: poll the store, then drain its inbox (what the workers do)."""
    result = services.store_poll(store_id=store.pk, now=at)
    channel.inbox_process_store(store_id=store.pk)
    ChannelSyncState.objects.filter(store=store).update(next_poll_at=None)
    return result


def test_group_buy_order_is_held_until_the_group_forms(skus):
    sandbox = PddSandbox(port=0, skus=[("TEA-LJ-250G", "168.0"), ("CUP-CER-350", "29.9")], seed=11)
    sandbox.start()
    try:
        store = channel_store(platform=Platform.PDD, code="pdd-live", name="拼多多店",
                                     credentials=sandbox.connector_credentials())
        ChannelSyncState.objects.get_or_create(store=store)
        start = timezone.now()
        sandbox.set_clock(start - timedelta(minutes=20))
        order = sandbox.generate_order(group_pending=True)
        sandbox.put_order(order, push=False)
        order_sn = sandbox.order_id(order)
        assert sync(store, start).status == "ok"
        held = Order.objects.get(store=store, platform_order_id=order_sn)
        assert held.status == OrderStatus.HELD and held.hold_reasons == ["group_pending"]
        assert held.receiver_ciphertext and "*" in held.receiver_name  # masked copy shown, ciphertext kept

        sandbox.set_clock(start + timedelta(minutes=1))  # the group forms a minute later on the platform
        sandbox.form_group(order_sn)
        sync(store, start + timedelta(minutes=5))  # the next polls see it (windows end 3 minutes behind)
        ready = Order.objects.get(pk=held.pk)
        assert ready.status == OrderStatus.READY and ready.hold_reasons == []
    finally:
        sandbox.stop()
