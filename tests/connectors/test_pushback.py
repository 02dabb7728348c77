"""Shipment push-back through the outbox: retried until the platform confirms, sent exactly once, split lines."""

from datetime import timedelta

import pytest
from django.utils import timezone

from connectors import pushback, services
from connectors.models import ChannelSyncState, PushStatus, ShipmentPush
from connectors.sandbox.shopify import ShopifySandbox
from connectors.sandbox.taobao import TaobaoSandbox
from oms.exceptions import ValidationFailed
from orders.models import Order, OrderEventType, Platform
from pipeline import channel
from tests.conftest import channel_store

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def taobao(skus):
    sandbox = TaobaoSandbox(port=0, skus=[("TEA-LJ-250G", "268.00"), ("CUP-CER-350", "39.00")], seed=9)
    sandbox.start()
    store = channel_store(platform=Platform.TAOBAO, code="tb-push", name="淘宝店",
                                 credentials=sandbox.connector_credentials())
    ChannelSyncState.objects.get_or_create(store=store)
    yield sandbox, store
    sandbox.stop()


def import_trade(sandbox, store, *, lines: int) -> Order:
    trade = sandbox.generate_order(lines=lines, status="WAIT_SELLER_SEND_GOODS")
    sandbox.put_order(trade, push=False)
    services.store_poll(store_id=store.pk)
    channel.inbox_process_store(store_id=store.pk)
    return Order.objects.get(store=store, platform_order_id=trade["tid_str"])


def run_due(push: ShipmentPush) -> str:
    """What the sweeper does when the retry time comes (the wait itself is skipped)."""
    ShipmentPush.objects.filter(pk=push.pk).update(next_attempt_at=timezone.now() - timedelta(seconds=1))
    return pushback.shipment_push_send(push_id=push.pk)


def test_confirmation_survives_five_failures_and_is_sent_exactly_once(taobao):
    sandbox, store = taobao
    order = import_trade(sandbox, store, lines=1)
    sandbox.faults.server_errors = 5  # the platform fails five times in a row
    push = pushback.shipment_push_enqueue(order_id=order.pk, carrier_code="sf", tracking_number="SF1234567890")
    outcomes = [run_due(push) for _ in range(5)]
    assert outcomes == [PushStatus.PENDING] * 5
    assert ShipmentPush.objects.get(pk=push.pk).attempts == 5
    assert run_due(push) == PushStatus.SENT
    assert run_due(push) == PushStatus.SENT  # a late retry changes nothing
    shipments = [p for p in sandbox.pushed if p["kind"] == "shipment"]
    assert len(shipments) == 1 and shipments[0]["out_sid"] == "SF1234567890"
    assert sandbox.orders[order.platform_order_id]["status"] == "WAIT_BUYER_CONFIRM_GOODS"
    # The same shipment queued again is the same outbox row: never sent twice.
    again = pushback.shipment_push_enqueue(order_id=order.pk, carrier_code="SF", tracking_number="SF1234567890")
    assert again.pk == push.pk and ShipmentPush.objects.count() == 1
    states = [e.data["state"] for e in order.events.filter(type=OrderEventType.SHIPMENT_PUSH).order_by("id")]
    assert states == ["queued", "sent"]


def test_split_shipment_on_taobao_sends_the_right_sub_orders(taobao):
    sandbox, store = taobao
    order = import_trade(sandbox, store, lines=2)
    first_line = order.lines.get(line_no=1)
    push = pushback.shipment_push_enqueue(order_id=order.pk, carrier_code="ZTO", tracking_number="ZT0001",
                                          line_nos=[1])
    assert push.line_ids == [first_line.platform_line_id]
    assert pushback.shipment_push_send(push_id=push.pk) == PushStatus.SENT
    shipment = [p for p in sandbox.pushed if p["kind"] == "shipment"][0]
    assert str(shipment["sub_tid"]) == first_line.platform_line_id
    assert shipment["is_split"] is True
    assert sandbox.orders[order.platform_order_id]["status"] == "SELLER_CONSIGNED_PART"


def test_a_permanent_refusal_fails_with_the_reason_on_the_timeline(taobao):
    sandbox, store = taobao
    order = import_trade(sandbox, store, lines=1)
    Order.objects.filter(pk=order.pk).update(platform_order_id="999999999")  # a trade the platform does not know
    push = pushback.shipment_push_enqueue(order_id=order.pk, carrier_code="SF", tracking_number="SF1")
    assert pushback.shipment_push_send(push_id=push.pk) == PushStatus.FAILED
    event = order.events.filter(type=OrderEventType.SHIPMENT_PUSH).order_by("-id").first()
    assert event.data["state"] == "failed" and event.reason


def test_bad_input_and_manual_stores(taobao, manual_store, make_order):
    sandbox, store = taobao
    order = import_trade(sandbox, store, lines=1)
    with pytest.raises(ValidationFailed):
        pushback.shipment_push_enqueue(order_id=order.pk, carrier_code="SF", tracking_number=" ")
    with pytest.raises(ValidationFailed):
        pushback.shipment_push_enqueue(order_id=order.pk, carrier_code="SF", tracking_number="X", line_nos=[7])
    manual = make_order(store=manual_store)
    assert pushback.shipment_push_enqueue(order_id=manual.pk, carrier_code="SF", tracking_number="X") is None


def test_shopify_fulfillment_with_tracking(skus):
    sandbox = ShopifySandbox(port=0, skus=[("TEA-LJ-250G", "37.99")], seed=4)
    sandbox.start()
    try:
        store = channel_store(platform=Platform.SHOPIFY, code="shop-push", name="Shop",
                                     default_currency="USD", credentials=sandbox.connector_credentials())
        ChannelSyncState.objects.get_or_create(store=store)
        sandbox.generate(1, push=False)
        services.store_poll(store_id=store.pk)
        channel.inbox_process_store(store_id=store.pk)
        order = Order.objects.get(store=store)
        push = pushback.shipment_push_enqueue(order_id=order.pk, carrier_code="UPS", tracking_number="1Z999")
        assert pushback.shipment_push_send(push_id=push.pk) == PushStatus.SENT
        fulfillment = [p for p in sandbox.pushed if p["kind"] == "fulfillment"]
        assert len(fulfillment) == 1 and fulfillment[0]["tracking_number"] == "1Z999"
    finally:
        sandbox.stop()


def test_shipping_one_parcel_of_a_split_order_confirms_its_lines_to_the_platform(taobao, role_users):
    """The order page lists the parcels; shipping one parcel of two queues a partial confirmation."""
    from django.test import Client

    from fulfillment import services as parcels
    from fulfillment.models import Carrier, Shipment
    from tests.conftest import PASSWORD
    from tests.fulfillment.helpers import ship_parcel

    Carrier.objects.create(code="YTO", name="圆通", kind="manual")
    sandbox, store = taobao
    order = import_trade(sandbox, store, lines=2)
    parcel = Shipment.objects.filter(lines__order=order, status="to_pick").distinct().get()
    first_line = parcel.lines.filter(order_line__line_no=1)
    part = parcels.shipment_split(shipment_id=parcel.pk, quantities={line.pk: line.quantity for line in first_line})
    ship_parcel(part, tracking="YT9000000009")
    order.refresh_from_db()
    assert order.status == "partially_shipped"
    push = ShipmentPush.objects.get(order=order)
    assert push.carrier_code == "YTO" and push.line_ids == [order.lines.get(line_no=1).platform_line_id]
    assert push.shipment_key == part.number
    assert pushback.shipment_push_send(push_id=push.pk) == PushStatus.SENT
    client = Client()
    assert client.login(username="u_warehouse", password=PASSWORD)
    page = client.get(f"/orders/{order.pk}/").content.decode()
    assert "YT9000000009" in page and 'data-transition="shipment"' not in page
