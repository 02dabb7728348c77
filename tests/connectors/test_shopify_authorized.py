"""Shopify orders with an authorized (not yet captured) payment: held by default, or fulfilled and captured at shipping."""

from datetime import timedelta
from decimal import Decimal

import pytest
import requests
from django.utils import timezone

from connectors import services
from connectors.models import CaptureStatus, ChannelSyncState, PaymentCapture, PushStatus, ShipmentPush
from connectors.sandbox.shopify import ShopifySandbox
from finance.models import PaymentEvent, PaymentSnapshot
from fulfillment.models import Carrier, Shipment
from orders.models import Order, OrderStatus, Platform, Store
from pipeline import capture, channel
from tests.conftest import channel_store
from tests.fulfillment.helpers import ship_parcel

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def shop(skus):
    Carrier.objects.create(code="UPS", name="UPS", kind="manual")
    sandbox = ShopifySandbox(port=0, skus=[("TEA-LJ-250G", "37.99")], seed=4)
    sandbox.start()
    store = channel_store(platform=Platform.SHOPIFY, code="shop-auth", name="Shop", default_currency="USD",
                                 credentials=sandbox.connector_credentials())
    ChannelSyncState.objects.get_or_create(store=store)
    yield sandbox, store
    sandbox.stop()


def authorized_order(sandbox: ShopifySandbox) -> dict:
    order = sandbox.generate_order()
    order["financial_status"] = "authorized"  # the shop captures manually: the money is only reserved
    return sandbox.put_order(order, push=False)


def sync(store: Store) -> None:
    # A poll a few seconds on: an update the sandbox just made (updated_at bumped a second) is in the window.
    services.store_poll(store_id=store.pk, now=timezone.now() + timedelta(seconds=5))
    channel.inbox_process_store(store_id=store.pk)


def capture_transactions(sandbox: ShopifySandbox, order_id: str) -> list[dict]:
    return [t for t in sandbox.transactions.get(order_id, []) if t["kind"] == "capture"]


def test_by_default_an_authorized_order_waits_as_pending_payment(shop):
    sandbox, store = shop
    platform_order = authorized_order(sandbox)
    sync(store)
    order = Order.objects.get(store=store)
    assert order.status == OrderStatus.PENDING_PAYMENT
    assert not PaymentSnapshot.objects.filter(order=order).exists()
    assert not Shipment.objects.filter(lines__order=order).exists()
    assert sandbox.orders[str(platform_order["id"])]["financial_status"] == "authorized"


def test_with_the_setting_the_order_ships_and_the_payment_is_captured_once(shop):
    sandbox, store = shop
    ChannelSyncState.objects.filter(store=store).update(authorized_counts_as_paid=True)
    platform_order = authorized_order(sandbox)
    platform_id = str(platform_order["id"])
    sync(store)
    order = Order.objects.get(store=store)
    assert order.status not in (OrderStatus.PENDING_PAYMENT, OrderStatus.PAID)  # reserved and routed
    (authorization,) = PaymentSnapshot.objects.filter(order=order)
    assert authorization.event == PaymentEvent.AUTHORIZATION
    assert authorization.paid_amount == Decimal(platform_order["total_price"])

    parcel = Shipment.objects.filter(lines__order=order).distinct().get()
    ship_parcel(parcel, tracking="1Z0000000001")
    push = ShipmentPush.objects.get(order=order)
    assert channel.shipment_push_send(push_id=push.pk) == PushStatus.SENT
    row = PaymentCapture.objects.get(order=order)
    # Shopify answers 503 longer than the client's own retries last: the row waits and is tried again.
    sandbox.faults.server_errors = 6
    assert capture.payment_capture_send(capture_id=row.pk) == CaptureStatus.PENDING
    PaymentCapture.objects.filter(pk=row.pk).update(next_attempt_at=row.created_at)
    assert capture.payment_capture_send(capture_id=row.pk) == CaptureStatus.CAPTURED
    assert capture.payment_capture_send(capture_id=row.pk) == CaptureStatus.CAPTURED  # a late retry: nothing

    captures = capture_transactions(sandbox, platform_id)
    assert len(captures) == 1 and captures[0]["amount"] == platform_order["total_price"]
    assert sandbox.orders[platform_id]["financial_status"] == "paid"
    snapshots = {s.event: s for s in PaymentSnapshot.objects.filter(order=order)}
    assert set(snapshots) == {PaymentEvent.AUTHORIZATION, PaymentEvent.CAPTURE}
    assert snapshots[PaymentEvent.CAPTURE].paid_amount == Decimal(platform_order["total_price"])
    assert snapshots[PaymentEvent.CAPTURE].reference == str(captures[0]["id"])
    # The platform's update (now "paid") adds no third snapshot, and the authorization one never changed.
    sync(store)
    assert PaymentSnapshot.objects.filter(order=order).count() == 2
    assert PaymentSnapshot.objects.get(pk=authorization.pk).data == authorization.data


def test_a_capture_made_in_shopify_admin_is_recorded_as_the_second_snapshot(shop):
    sandbox, store = shop
    ChannelSyncState.objects.filter(store=store).update(authorized_counts_as_paid=True)
    platform_order = authorized_order(sandbox)
    sync(store)
    order = Order.objects.get(store=store)
    sandbox.set_clock(None)
    sandbox.update_order(platform_order["id"], financial_status="paid")  # the seller captured by hand
    sync(store)
    assert sorted(PaymentSnapshot.objects.filter(order=order).values_list("event", flat=True)) == [
        PaymentEvent.AUTHORIZATION, PaymentEvent.CAPTURE]


def test_the_sandbox_refuses_a_second_capture_like_shopify(shop):
    sandbox, _store = shop
    platform_order = authorized_order(sandbox)
    url = f"{sandbox.base_url}/admin/api/2026-10/orders/{platform_order['id']}/transactions.json"
    headers = {"X-Shopify-Access-Token": sandbox.access_token}
    listed = requests.get(url, headers=headers, timeout=5).json()["transactions"]
    (authorization,) = listed
    assert authorization["kind"] == "authorization" and authorization["status"] == "success"
    body = {"transaction": {"kind": "capture", "parent_id": authorization["id"],
                            "amount": authorization["amount"], "currency": authorization["currency"]}}
    first = requests.post(url, json=body, headers=headers, timeout=5)
    assert first.status_code == 201 and first.json()["transaction"]["parent_id"] == authorization["id"]
    second = requests.post(url, json=body, headers=headers, timeout=5)
    assert second.status_code == 422 and "already been captured" in second.json()["errors"]["base"][0]
    assert len(capture_transactions(sandbox, str(platform_order["id"]))) == 1


def test_a_capture_after_the_authorization_expired_fails_the_row_and_tells_the_order_page(shop):
    sandbox, store = shop
    ChannelSyncState.objects.filter(store=store).update(authorized_counts_as_paid=True)
    authorized_order(sandbox)
    sync(store)
    order = Order.objects.get(store=store)
    # Shipped nine days later: Shopify Payments keeps an authorization for 7 days, so the capture is refused.
    sandbox.set_clock(timezone.now() + timedelta(days=9))
    Order.objects.filter(pk=order.pk).update(status=OrderStatus.SHIPPED)
    row = capture.payment_capture_enqueue_if_due(order=Order.objects.select_related("store").get(pk=order.pk))
    assert capture.payment_capture_send(capture_id=row.pk) == CaptureStatus.FAILED
    assert "422" in PaymentCapture.objects.get(pk=row.pk).last_error
    assert "expired" in PaymentCapture.objects.get(pk=row.pk).last_error
    assert not PaymentSnapshot.objects.filter(order=order, event=PaymentEvent.CAPTURE).exists()
    assert order.events.filter(data__payment_capture="failed").count() == 1
