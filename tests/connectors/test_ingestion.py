"""Ingestion end to end: the real connectors and sandboxes over HTTP, the webhook endpoint on a live server,
the inbox, polling with its watermark, processing into orders, dead letters and replay."""

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import requests
from django.test import Client
from django.utils import timezone

from connectors import services
from connectors.models import ChannelSyncState, DeadReason, InboxMessage, InboxStatus
from connectors.sandbox.shopify import ShopifySandbox
from connectors.sandbox.taobao import TaobaoSandbox
from connectors.shopify.connector import shopify_hmac
from inventory.models import SKU, PlatformSKUMapping
from oms.exceptions import DomainError
from orders.models import Order, OrderEventType, OrderStatus, Platform
from pipeline import channel
from tests.conftest import PASSWORD, channel_store

pytestmark = pytest.mark.django_db(transaction=True)

SKUS = [("TEA-LJ-250G", "37.99"), ("CUP-CER-350", "9.99")]


@pytest.fixture
def shopify(live_server, skus):
    sandbox = ShopifySandbox(port=0, skus=SKUS, seed=3)
    sandbox.start()
    store = channel_store(platform=Platform.SHOPIFY, code="shop", name="Shopify US", default_currency="USD",
                                 credentials=sandbox.connector_credentials())
    ChannelSyncState.objects.get_or_create(store=store)
    sandbox.webhook_url = f"{live_server.url}/webhooks/shopify/shop/"
    yield sandbox, store
    sandbox.stop()


@pytest.fixture
def taobao(skus):
    sandbox = TaobaoSandbox(port=0, skus=[("TEA-LJ-250G", "268.00"), ("CUP-CER-350", "39.00")], seed=5)
    sandbox.start()
    store = channel_store(platform=Platform.TAOBAO, code="tb-live", name="淘宝店",
                                 credentials=sandbox.connector_credentials())
    ChannelSyncState.objects.get_or_create(store=store)
    yield sandbox, store
    sandbox.stop()


def drain(store) -> int:
    return channel.inbox_process_store(store_id=store.pk)


def transitions(order) -> list[str]:
    return list(order.events.filter(type=OrderEventType.STATUS_CHANGED).order_by("id")
                .values_list("data__transition", flat=True))


def three_versions(sandbox) -> str:
    """An order created unpaid, then paid, then cancelled on the platform; returns its id."""
    sandbox.set_clock(datetime(2026, 11, 20, 8, 0, tzinfo=UTC))
    order = sandbox.generate_order()
    order.update(financial_status="pending", fulfillment_status=None, cancelled_at=None, closed_at=None)
    sandbox.put_order(order, topic="orders/create")
    order_id = sandbox.order_id(order)
    sandbox.set_clock(datetime(2026, 11, 20, 8, 5, tzinfo=UTC))
    sandbox.update_order(order_id, financial_status="paid", topic="orders/paid")
    sandbox.set_clock(datetime(2026, 11, 20, 8, 9, tzinfo=UTC))
    sandbox.update_order(order_id, cancelled_at=datetime(2026, 11, 20, 8, 9, tzinfo=UTC), cancel_reason="customer",
                         financial_status="voided", topic="orders/cancelled")
    return order_id


def test_webhooks_three_times_out_of_order_make_one_order_with_the_newest_state(shopify):
    sandbox, store = shopify
    sandbox.faults.duplicate_webhooks = True  # every delivery twice…
    sandbox.faults.out_of_order_webhooks = True  # …and newest first
    order_id = three_versions(sandbox)
    assert sandbox.flush_held_webhooks() == 3
    # …and the oldest event a third time.
    first = json.loads(InboxMessage.objects.filter(store=store).order_by("platform_updated_at").first().body)
    sandbox.deliver_webhook("orders/create", first)

    assert all(entry.get("status") == 200 for entry in sandbox.webhook_log), sandbox.webhook_log
    assert InboxMessage.objects.filter(store=store).count() == 3  # one row per real event
    assert ChannelSyncState.objects.get(store=store).duplicates == 4

    drain(store)
    order = Order.objects.get(store=store, platform_order_id=order_id)
    assert order.status == OrderStatus.CANCELLED
    assert transitions(order) == ["pay", "approve", "cancel"]  # each real change once
    assert Order.objects.filter(store=store).count() == 1


def test_out_of_order_deliveries_processed_as_they_arrive_keep_the_newest(shopify):
    sandbox, store = shopify
    sandbox.faults.out_of_order_webhooks = True
    order_id = three_versions(sandbox)
    held = list(reversed(sandbox._held_webhooks))
    sandbox._held_webhooks = []
    sandbox.faults.out_of_order_webhooks = False
    for topic, payload in held:  # newest first, each processed before the next arrives
        sandbox.deliver_webhook(topic, payload)
        drain(store)
    order = Order.objects.get(store=store, platform_order_id=order_id)
    assert order.status == OrderStatus.CANCELLED
    assert transitions(order) == ["cancel"]  # the older versions changed nothing
    assert InboxMessage.objects.filter(store=store, status=InboxStatus.SKIPPED).count() == 2
    assert ChannelSyncState.objects.get(store=store).stale_updates == 2


def test_tampered_body_is_refused_with_401_counted_and_never_processed(shopify, live_server):
    sandbox, store = shopify
    body = json.dumps(sandbox.generate_order()).encode()
    signature = shopify_hmac(sandbox.api_secret, body)
    tampered = body.replace(b'"quantity": 1', b'"quantity": 9') if b'"quantity": 1' in body else body + b" "
    response = requests.post(f"{live_server.url}/webhooks/shopify/shop/", data=tampered, timeout=10,
                             headers={"X-Shopify-Hmac-Sha256": signature, "X-Shopify-Topic": "orders/create",
                                      "X-Shopify-Event-Id": "evt-1", "Content-Type": "application/json"})
    assert response.status_code == 401 and response.json()["code"] == "bad_signature"
    assert requests.post(f"{live_server.url}/webhooks/shopify/shop/", data=body, timeout=10).status_code == 401
    drain(store)
    assert Order.objects.count() == 0
    assert ChannelSyncState.objects.get(store=store).signature_failures == 2
    dead = InboxMessage.objects.filter(store=store, status=InboxStatus.DEAD, dead_reason=DeadReason.SIGNATURE)
    assert dead.count() == 2
    with pytest.raises(DomainError) as refused:  # never replayable
        services.dead_letter_replay(message_id=dead.first().pk)
    assert refused.value.code == "signature_not_replayable"


def test_unknown_webhook_store_is_404(live_server, db):
    assert requests.post(f"{live_server.url}/webhooks/shopify/nope/", data=b"{}", timeout=10).status_code == 404


def test_malformed_and_unmapped_payloads_go_to_dead_letters_and_replay_after_the_fix(shopify, live_server,
                                                                                     role_users):
    sandbox, store = shopify
    broken = b'{"id": 1, "line_items": ['
    ack = requests.post(f"{live_server.url}/webhooks/shopify/shop/", data=broken, timeout=10,
                        headers={"X-Shopify-Hmac-Sha256": shopify_hmac(sandbox.api_secret, broken),
                                 "X-Shopify-Event-Id": "evt-broken", "X-Shopify-Topic": "orders/create"})
    assert ack.status_code == 200  # acknowledged (retrying a broken body cannot help) but dead-lettered
    order = sandbox.generate_order()
    order["line_items"][0]["sku"] = "MYSTERY-SKU"
    variant_id = order["line_items"][0]["variant_id"]
    sandbox.put_order(order, topic="orders/create")
    drain(store)
    dead = {m.dead_reason: m for m in InboxMessage.objects.filter(store=store, status=InboxStatus.DEAD)}
    assert set(dead) == {DeadReason.BAD_PAYLOAD, DeadReason.UNMAPPED_SKU}
    assert "MYSTERY-SKU" in dead[DeadReason.UNMAPPED_SKU].last_error
    assert not Order.objects.filter(store=store).exists()

    # The fix: map the platform variant to our SKU, then replay from the dead-letter page.
    PlatformSKUMapping.objects.create(store=store, platform_sku_id=str(variant_id),
                                      sku=SKU.objects.get(code="TEA-LJ-250G"))
    client = Client()
    assert client.login(username="u_manager", password=PASSWORD)
    page = client.get("/channels/dead-letters/").content.decode()
    assert "MYSTERY-SKU" in page
    response = client.post(f"/channels/dead-letters/{dead[DeadReason.UNMAPPED_SKU].pk}/replay/")
    assert response.status_code == 302
    drain(store)
    imported = Order.objects.get(store=store, platform_order_id=str(order["id"]))
    assert imported.lines.first().sku_code == "TEA-LJ-250G"
    assert imported.lines.first().platform_sku_id == str(variant_id)
    client.post(f"/channels/dead-letters/{dead[DeadReason.BAD_PAYLOAD].pk}/discard/")
    assert InboxMessage.objects.get(pk=dead[DeadReason.BAD_PAYLOAD].pk).status == InboxStatus.DISCARDED


def test_polling_across_pages_imports_every_order_once(shopify):
    sandbox, store = shopify
    sandbox.webhook_url = ""  # polling only
    start = timezone.now() - timedelta(hours=3)
    for index in range(300):
        sandbox.set_clock(start + timedelta(seconds=20 * index))
        sandbox.generate(1, push=False)
    sandbox.set_clock(None)
    result = services.store_poll(store_id=store.pk)
    assert (result.status, result.fetched, result.stored) == ("ok", 300, 300)
    assert drain(store) == 300
    assert Order.objects.filter(store=store).count() == 300
    assert services.store_poll(store_id=store.pk).stored == 0  # the overlap re-fetches nothing new
    state = ChannelSyncState.objects.get(store=store)
    assert state.orders_created == 300 and state.last_success_at and state.watermark > start


def test_two_hour_outage_is_caught_up_with_no_order_missing(shopify):
    sandbox, store = shopify
    sandbox.webhook_url = ""
    now = timezone.now()
    ChannelSyncState.objects.filter(store=store).update(watermark=now - timedelta(hours=2))
    for minute in range(0, 120, 3):  # orders kept arriving on the platform during the outage
        sandbox.set_clock(now - timedelta(minutes=120 - minute))
        sandbox.generate(1, push=False)
    sandbox.set_clock(None)
    sandbox.faults.down = True
    failed = services.store_poll(store_id=store.pk)
    assert failed.status == "failed"
    state = ChannelSyncState.objects.get(store=store)
    assert state.watermark == now - timedelta(hours=2) and state.consecutive_failures == 1
    assert state.next_poll_at > timezone.now()  # backs off

    sandbox.faults.down = False
    sandbox.faults.rate_limit = 2  # and the platform throttles as it comes back
    sandbox.faults.server_errors = 1
    recovered = services.store_poll(store_id=store.pk)
    assert recovered.status == "ok" and recovered.fetched == 40
    drain(store)
    assert set(Order.objects.filter(store=store).values_list("platform_order_id", flat=True)) == set(sandbox.orders)


def test_taobao_polling_lands_beijing_times_as_utc_and_exact_decimals(taobao):
    sandbox, store = taobao
    now = timezone.now()
    ChannelSyncState.objects.filter(store=store).update(watermark=now - timedelta(hours=30))
    for hour in range(0, 30, 2):  # spans two one-day windows
        sandbox.set_clock(now - timedelta(hours=30 - hour))
        sandbox.generate(1, push=False)
    sandbox.set_clock(None)
    result = services.store_poll(store_id=store.pk)
    assert result.status == "ok" and result.fetched == 15
    drain(store)
    assert Order.objects.filter(store=store).count() == 15
    trade = next(iter(sandbox.orders.values()))
    order = Order.objects.get(store=store, platform_order_id=trade["tid_str"])
    created_beijing = datetime.strptime(trade["created"], "%Y-%m-%d %H:%M:%S")
    assert order.placed_at == created_beijing.replace(tzinfo=UTC) - timedelta(hours=8)
    assert order.total_amount == Decimal(trade["payment"])
    assert order.currency == "CNY"


def test_sync_status_page_and_sync_now(shopify, role_users):
    sandbox, store = shopify
    client = Client()
    assert client.login(username="u_manager", password=PASSWORD)
    page = client.get("/channels/").content.decode()
    assert 'data-store="shop"' in page
    assert client.post(f"/channels/stores/{store.pk}/sync/").status_code == 302
    assert ChannelSyncState.objects.get(store=store).next_poll_at <= timezone.now()
    warehouse = Client()
    assert warehouse.login(username="u_warehouse", password=PASSWORD)
    assert warehouse.get("/channels/").status_code == 403


def test_bad_content_length_is_a_400_not_a_500(shopify):
    _sandbox, store = shopify
    response = Client().post("/webhooks/shopify/shop/", data=b"{}", content_type="application/json",
                             CONTENT_LENGTH="abc")
    assert response.status_code == 400 and response.json()["code"] == "bad_request"
    too_big = Client().post("/webhooks/shopify/shop/", data=b"{}", content_type="application/json",
                            CONTENT_LENGTH=str(50 * 1024 * 1024))
    assert too_big.status_code == 413
    assert not InboxMessage.objects.filter(store=store).exists()
