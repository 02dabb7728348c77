"""Push-back on the order page, over the Taobao sandbox: the state says exactly what the platform accepted (a
parcel with a line the platform does not know is "partly confirmed", never "sent"), a failed push-back shows a
sentence with the platform's raw answer behind a toggle, and a person who runs the channels sends it again or
discards it from there (recorded on the timeline with who did it); others cannot.

Celery runs its tasks in this thread (task_always_eager), so a queued push-back is sent when its transaction
commits, as a worker would a moment later.
"""

import pytest
from django.test import Client

from connectors import pushback, services
from connectors.models import ChannelSyncState, PushStatus, ShipmentPush
from connectors.sandbox.taobao import TaobaoSandbox
from fulfillment import services as parcels
from fulfillment.models import Carrier, Shipment
from orders.models import Order, OrderEventType, OrderLine, Platform
from pipeline import channel, shipping
from tests.conftest import PASSWORD, channel_store
from tests.fulfillment.helpers import ship_parcel

pytestmark = pytest.mark.django_db(transaction=True)

LONG_ERROR_TAIL = "x" * 600  # an answer longer than any card is wide


@pytest.fixture
def taobao(skus, celery_eager):
    sandbox = TaobaoSandbox(
        port=0, seed=9, skus=[("TEA-LJ-250G", "268.00"), ("CUP-CER-350", "39.00"), ("GIFT-BAG", "5.00")]
    )
    sandbox.start()
    store = channel_store(
        platform=Platform.TAOBAO, code="tb-page", name="淘宝店", credentials=sandbox.connector_credentials()
    )
    ChannelSyncState.objects.get_or_create(store=store)
    Carrier.objects.create(code="YTO", name="圆通", kind="manual")
    yield sandbox, store
    sandbox.stop()


def import_trade(sandbox, store, *, lines: int) -> Order:
    trade = sandbox.generate_order(lines=lines, status="WAIT_SELLER_SEND_GOODS")
    sandbox.put_order(trade, push=False)
    services.store_poll(store_id=store.pk)
    channel.inbox_process_store(store_id=store.pk)
    return Order.objects.get(store=store, platform_order_id=trade["tid_str"])


def login(role_users, role: str, *, language: str = "") -> Client:
    client = Client()
    assert client.login(username=role_users[role].username, password=PASSWORD)
    if language:
        client.cookies["django_language"] = language
    return client


def push_events(order: Order) -> list[tuple[str, str]]:
    return [
        (e.data["state"], e.actor.username if e.actor else e.actor_label)
        for e in order.events.filter(type=OrderEventType.SHIPMENT_PUSH).select_related("actor").order_by("id")
    ]


def shipments_to_platform(sandbox) -> list[dict]:
    return [p for p in sandbox.pushed if p["kind"] == "shipment"]


def test_a_parcel_with_a_line_the_platform_does_not_know_is_partly_confirmed_not_sent(taobao, role_users):
    sandbox, store = taobao
    order = import_trade(sandbox, store, lines=3)
    first = order.lines.get(line_no=1)
    # Line 2 has no platform sub-order (as a gift or a line added here has): the shortcut is to blank its id.
    OrderLine.objects.filter(order=order, line_no=2).update(platform_line_id="")
    parcel = Shipment.objects.filter(lines__order=order, status="to_pick").distinct().get()
    part = parcels.shipment_split(
        shipment_id=parcel.pk,
        quantities={line.pk: line.quantity for line in parcel.lines.filter(order_line__line_no__in=[1, 2])},
    )
    ship_parcel(part, tracking="YT9000000010")

    push = ShipmentPush.objects.get(order=order)
    assert (push.status, push.line_ids, push.line_nos, push.skipped_line_nos, push.last_error) == (
        PushStatus.PARTIAL,
        [first.platform_line_id],
        [1],
        [2],
        "",
    )
    sent = shipments_to_platform(sandbox)
    assert (
        len(sent) == 1 and str(sent[0]["sub_tid"]) == first.platform_line_id and sent[0]["is_split"] is True
    )
    assert push_events(order) == [("queued", "channel"), ("partial", "channel")]

    page = login(role_users, "warehouse").get(f"/orders/{order.pk}/").content.decode()  # zh-hans, the default
    assert 'data-push-status="partial"' in page
    assert "部分回传：第 1 行已确认，第 2 行不是平台子订单，未回传。" in page
    assert "发货已回传平台" not in page and "平台已确认发货" not in page
    assert "部分回传平台" in page  # the status and the timeline's title
    english = login(role_users, "warehouse", language="en").get(f"/orders/{order.pk}/").content.decode()
    assert (
        "Partly confirmed: the platform confirmed line 1; not sent: line 2 is not one of the platform&#x27;s "
        "sub-orders."
    ) in english


def test_a_failed_push_back_is_explained_and_sent_again_or_discarded_from_the_order_page(taobao, role_users):
    sandbox, store = taobao
    order = import_trade(sandbox, store, lines=1)
    real_tid = order.platform_order_id
    Order.objects.filter(pk=order.pk).update(
        platform_order_id="999999999"
    )  # a trade the platform does not know
    push = shipping.shipment_push_queue(order_id=order.pk, carrier_code="SF", tracking_number="SF1")
    push.refresh_from_db()
    assert push.status == PushStatus.FAILED and push.last_error
    ShipmentPush.objects.filter(pk=push.pk).update(last_error=push.last_error + LONG_ERROR_TAIL)

    manager, warehouse = (
        login(role_users, "manager", language="en"),
        login(role_users, "warehouse", language="en"),
    )
    page = manager.get(f"/orders/{order.pk}/").content.decode()
    assert 'data-push-status="failed"' in page
    assert "The platform did not accept this shipment." in page  # a sentence first
    assert '<details class="raw-error"><summary>What the platform answered</summary><pre>' in page
    assert LONG_ERROR_TAIL in page  # the raw answer in full, behind the toggle (it wraps: app.css)
    assert 'data-action="push-retry"' in page and 'data-action="push-discard"' in page
    assert "Shipment not confirmed by the platform" in page and "Shipment sent to the platform" not in page
    # The warehouse does not run the channels: no buttons, and a forged POST changes nothing.
    assert 'data-action="push-retry"' not in warehouse.get(f"/orders/{order.pk}/").content.decode()
    retry_url, discard_url = (
        f"/channels/shipment-pushes/{push.pk}/retry/",
        f"/channels/shipment-pushes/{push.pk}/discard/",
    )
    assert warehouse.post(retry_url).status_code == 403
    assert warehouse.post(discard_url).status_code == 403
    assert ShipmentPush.objects.get(pk=push.pk).status == PushStatus.FAILED
    assert manager.get(retry_url).status_code == 405
    assert manager.post(f"/channels/shipment-pushes/{push.pk}/resend-twice/").status_code == 404
    assert manager.post("/channels/shipment-pushes/99999999/retry/").status_code == 404
    assert shipments_to_platform(sandbox) == []

    # The cause is fixed (the right trade id); sent again, it is confirmed at once.
    Order.objects.filter(pk=order.pk).update(platform_order_id=real_tid)
    response = manager.post(retry_url)
    assert (response.status_code, response["Location"]) == (
        302,
        f"/orders/{order.pk}/#shipment-push-{push.pk}",
    )
    push.refresh_from_db()
    assert (push.status, push.attempts, push.last_error) == (PushStatus.SENT, 1, "")
    assert [p["tid"] for p in shipments_to_platform(sandbox)] == [real_tid]
    assert push_events(order) == [
        ("queued", "channel"),
        ("failed", "channel"),
        ("retried", "u_manager"),
        ("sent", "channel"),
    ]
    page = manager.get(f"/orders/{order.pk}/").content.decode()
    assert "The platform confirmed the shipment of the whole order." in page
    assert 'data-action="push-retry"' not in page and 'data-action="push-discard"' not in page

    # Neither sent again nor discarded once confirmed: refused with why, nothing changes.
    for url in (retry_url, discard_url):
        refused = manager.post(url, follow=True)
        assert refused.status_code == 200 and "Refused: Only a" in refused.content.decode()
    assert ShipmentPush.objects.get(pk=push.pk).status == PushStatus.SENT
    assert len(shipments_to_platform(sandbox)) == 1


def test_a_discarded_push_back_is_never_sent(taobao, role_users):
    sandbox, store = taobao
    order = import_trade(sandbox, store, lines=1)
    real_tid = order.platform_order_id
    Order.objects.filter(pk=order.pk).update(platform_order_id="999999999")
    push = shipping.shipment_push_queue(order_id=order.pk, carrier_code="SF", tracking_number="SF2")
    assert ShipmentPush.objects.get(pk=push.pk).status == PushStatus.FAILED
    Order.objects.filter(pk=order.pk).update(platform_order_id=real_tid)

    manager = login(role_users, "manager")
    response = manager.post(f"/channels/shipment-pushes/{push.pk}/discard/")
    assert response.status_code == 302
    push.refresh_from_db()
    assert push.status == PushStatus.DISCARDED
    assert push_events(order)[-1] == ("discarded", "u_manager")
    # The sweeper and a late task leave it alone: the platform is not told.
    assert push.pk not in pushback.shipment_pushes_due()
    assert pushback.shipment_push_send(push_id=push.pk) == PushStatus.DISCARDED
    assert shipments_to_platform(sandbox) == []
    page = manager.get(f"/orders/{order.pk}/").content.decode()  # zh-hans
    assert 'data-push-status="discarded"' in page and "已人工放弃" in page
    assert 'data-action="push-retry"' in page  # a mistaken discard can be undone
