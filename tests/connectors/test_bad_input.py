"""What the channels refuse, and how: forged or stray deliveries never become orders, one bad row or one
bad store never stops the others, and unknown ids are 404s, not 500s."""

import json

import pytest
from django.test import Client

from connectors import services, stock_push
from connectors.base import PermanentError
from connectors.models import ChannelStock, ChannelSyncState, InboxKind, InboxMessage, InboxStatus
from connectors.sandbox.shopify import ShopifySandbox
from connectors.shopify.client import ShopifyClient
from inventory.models import PlatformSKUMapping
from oms.exceptions import DomainError, NotFoundError, ValidationFailed
from orders.models import Order, OrderLine, Platform, Store
from pipeline import channel
from pipeline.channel import shipment_confirm
from tests.conftest import PASSWORD, channel_store

pytestmark = pytest.mark.django_db


def test_a_body_posted_to_a_polling_platform_is_refused_and_never_stored(taobao_store):
    trade = {"tid_str": "FORGED-1", "status": "WAIT_SELLER_SEND_GOODS", "orders": {"order": []}}
    response = Client().post("/webhooks/taobao/tb/", data=json.dumps(trade), content_type="application/json")
    assert response.status_code == 404 and response.json()["code"] == "push_unsupported"
    assert not InboxMessage.objects.exists()  # nothing a person could replay into an order


def test_a_push_to_a_store_without_a_secret_is_unverified_and_not_replayable(db):
    store = channel_store(platform=Platform.SHOPIFY, code="shop-nokey", name="S", credentials={})
    response = Client().post("/webhooks/shopify/shop-nokey/", data=b'{"id": 1}', content_type="application/json",
                             HTTP_X_SHOPIFY_TOPIC="orders/create", HTTP_X_SHOPIFY_HMAC_SHA256="x")
    assert response.status_code == 401
    message = InboxMessage.objects.get(store=store)
    with pytest.raises(DomainError) as refused:
        services.dead_letter_replay(message_id=message.pk)
    assert refused.value.code == "signature_not_replayable"
    assert not Order.objects.exists()


def test_a_webhook_to_a_manual_store_is_a_404_not_a_500(manual_store):
    response = Client().post(f"/webhooks/manual/{manual_store.code}/", data=b"{}", content_type="application/json")
    assert response.status_code == 404 and response.json()["code"] == "unknown_store"


def test_a_line_title_longer_than_the_column_is_shortened_not_a_stalled_inbox(skus):
    sandbox = ShopifySandbox(port=0, skus=[("TEA-LJ-250G", "37.99")], seed=8)
    store = channel_store(platform=Platform.SHOPIFY, code="shop-long", name="S", default_currency="USD",
                                 credentials=sandbox.connector_credentials())
    ChannelSyncState.objects.get_or_create(store=store)
    order = sandbox.generate_order()
    for item in order["line_items"]:
        item["name"] = "西湖龙井 " * 60  # 300 characters: Shopify's "product − variant" can be that long
    message, _created = services.inbox_store(store=store, kind=InboxKind.WEBHOOK, delivery_key="long-1",
                                             body=json.dumps(order, ensure_ascii=False))
    assert channel.inbox_process_message(message_id=message.pk) == InboxStatus.DONE
    line = OrderLine.objects.get(order__store=store)
    assert len(line.title) == OrderLine._meta.get_field("title").max_length


def test_a_shopify_location_that_is_not_a_number_is_a_permanent_error_for_that_push():
    client = ShopifyClient(ShopifySandbox(port=0).connector_credentials(), timeout=1)  # refused before any call
    with pytest.raises(PermanentError) as refused:
        client.set_inventory_level(inventory_item_id="123", location_id="main", available=5)
    assert refused.value.code == "bad_id"


def test_a_switched_off_store_gets_no_queued_stock_push(taobao_store, skus):
    PlatformSKUMapping.objects.create(store=taobao_store, platform_sku_id="5001", platform_product_id="600",
                                      sku=skus["TEA-LJ-250G"])
    ChannelStock.objects.create(store=taobao_store, sku=skus["TEA-LJ-250G"], change_seq=3, pushed_seq=0)
    Store.objects.filter(pk=taobao_store.pk).update(active=False)
    assert stock_push.channel_stock_flush() == {"calls": 0, "unchanged": 0, "errors": 0}
    row = ChannelStock.objects.get(store=taobao_store)
    assert (row.pushes, row.pushed_seq, row.last_error, row.next_attempt_at) == (0, 0, "", None)  # not tried


def test_a_store_with_orders_cannot_move_to_another_platform(make_order, taobao_store):
    make_order()
    with pytest.raises(ValidationFailed) as refused:
        services.store_setup(store=taobao_store, platform=Platform.SHOPIFY, code="tb", name="淘宝店", active=True,
                             default_currency="CNY", reserve_on="payment", allow_split=False, credentials={},
                             sync_enabled=True, poll_interval_seconds=60)
    assert refused.value.code == "platform_change"
    assert Store.objects.get(pk=taobao_store.pk).platform == Platform.TAOBAO


def test_unknown_ids_are_404s(role_users):
    client = Client()
    assert client.login(username="u_warehouse", password=PASSWORD)
    response = client.post("/orders/999999/shipment/", {"carrier_code": "YTO", "tracking_number": "YT1"})
    assert response.status_code == 302  # refused with a message, not a server error
    with pytest.raises(NotFoundError):
        shipment_confirm(order_id=999999, carrier_code="YTO", tracking_number="YT1")
    with pytest.raises(NotFoundError):
        services.dead_letter_discard(message_id=999999)
