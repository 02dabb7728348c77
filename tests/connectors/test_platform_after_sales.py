"""Platform after-sales into tickets: Douyin's and Pinduoduo's after-sale lists polled over real HTTP from their
sandboxes (incrementally, raw rows first, bad items dead-lettered), and Taobao's refund_id in the trade payload
applied with its order, once, whatever the order of the deliveries."""

import copy
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from aftersales.models import Refund, Ticket, TicketEvent, TicketEventType, TicketStatus
from connectors import services
from connectors.base import RawOrder
from connectors.models import ChannelSyncState, DeadReason, InboxKind, InboxMessage, InboxStatus
from connectors.pdd.mapping import map_pdd_after_sale
from connectors.sandbox.douyin import DouyinSandbox
from connectors.sandbox.pdd import PddSandbox
from connectors.sandbox.taobao import TaobaoSandbox
from connectors.taobao.client import format_top_time
from connectors.taobao.mapping import map_taobao_trade
from gateway.errors import PermanentError
from orders.models import Order, Platform
from pipeline import after_sales, channel
from tests.conftest import channel_store

pytestmark = pytest.mark.django_db(transaction=True)
SKUS = [("TEA-LJ-250G", "168.0"), ("CUP-CER-350", "29.9")]


def sync_orders(store, at):
    services.store_poll(store_id=store.pk, now=at)
    channel.inbox_process_store(store_id=store.pk)


@pytest.fixture
def douyin(skus):
    sandbox = DouyinSandbox(port=0, skus=SKUS, seed=5)
    sandbox.start()
    yield sandbox
    sandbox.stop()


@pytest.fixture
def pdd(skus):
    sandbox = PddSandbox(port=0, skus=SKUS, seed=7)
    sandbox.start()
    yield sandbox
    sandbox.stop()


def test_douyin_after_sales_poll_opens_tickets_incrementally_and_follow_the_platform(douyin):
    store = channel_store(platform=Platform.DOUYIN, code="dy", name="抖店", credentials=douyin.connector_credentials())
    start = timezone.now().replace(microsecond=0)
    douyin.set_clock(start - timedelta(minutes=20))
    shop_order = douyin.generate_order(status=3, lines=1)  # shipped: a return needs shipped units
    douyin.put_order(shop_order, push=False)
    sync_orders(store, start - timedelta(minutes=15))
    order = Order.objects.get(store=store, platform_order_id=shop_order["order_id"])

    douyin.set_clock(start - timedelta(minutes=10))
    item = douyin.put_after_sale(shop_order["order_id"], aftersale_type=0, aftersale_status=6, reason="七天无理由退货")
    paid = Decimal(shop_order["sku_order_list"][0]["pay_amount"]).scaleb(-2)  # goods and freight, in yuan
    after_sale_id = item["aftersale_info"]["aftersale_id"]
    first = after_sales.store_after_sales_sync(store_id=store.pk, now=start)
    assert first == {"poll": "ok", "fetched": 1, "stored": 1, "applied": 1}
    ticket = Ticket.objects.get(store=store, platform_after_sale_id=after_sale_id)
    assert (ticket.order_id, ticket.type, ticket.status, ticket.source) == (order.pk, "return_refund", "requested",
                                                                             "platform")
    assert (ticket.reason_text, ticket.requested_amount + ticket.requested_shipping) == ("七天无理由退货", paid)
    assert ticket.requested_shipping == order.shipping_amount and [c["ok"] for c in ticket.checks] == [True, True]
    assert ChannelSyncState.objects.get(store=store).after_sales_watermark == start
    row = InboxMessage.objects.get(store=store, kind=InboxKind.AFTER_SALE)
    assert (row.status, row.order_id, row.platform_order_id) == (InboxStatus.DONE, order.pk, shop_order["order_id"])
    # The order drain never takes an after-sale row.
    assert channel.inbox_process_store(store_id=store.pk) == 0

    # Nothing changed on the platform: the next poll fetches it again only through the overlap, stores nothing.
    again = after_sales.store_after_sales_sync(store_id=store.pk, now=start + timedelta(minutes=1))
    assert (again["stored"], again["applied"]) == (0, 0)
    assert InboxMessage.objects.filter(store=store, kind=InboxKind.AFTER_SALE).count() == 1
    calls = [call for call in douyin.api_calls if call["method"] == "afterSale.List"]
    assert f'"update_start_time":{int((start - timedelta(minutes=5)).timestamp())}' in calls[-1]["body"]

    # The buyer sends the parcel back (with its tracking number), then the buyer withdraws: the ticket follows.
    douyin.set_clock(start + timedelta(minutes=2))
    douyin.update_after_sale(after_sale_id, aftersale_status=7, return_logistics_code="SF1400000001")
    douyin.set_clock(start + timedelta(minutes=3))
    douyin.update_after_sale(after_sale_id, aftersale_status=28)
    result = after_sales.store_after_sales_sync(store_id=store.pk, now=start + timedelta(minutes=4))
    assert (result["stored"], result["applied"]) == (1, 1)  # the newest version of the after-sale only
    ticket.refresh_from_db()
    assert (ticket.status, ticket.platform_status) == (TicketStatus.CLOSED, "aftersale_status=28 refund_status=1")
    assert Ticket.objects.filter(store=store).count() == 1
    assert not Refund.objects.filter(order=order).exists()


def test_pdd_after_sales_poll_over_http_opens_a_refunded_ticket_and_moves_the_watermark(pdd):
    store = channel_store(platform=Platform.PDD, code="pdd", name="拼多多店", credentials=pdd.connector_credentials())
    start = timezone.now().replace(microsecond=0)
    pdd.set_clock(start - timedelta(minutes=20))
    pdd_order = pdd.generate_order(lines=1, group_pending=False)
    pdd.put_order(pdd_order, push=False)
    sync_orders(store, start)
    order = Order.objects.get(store=store, platform_order_id=pdd_order["order_sn"])

    pdd.set_clock(start - timedelta(minutes=10))
    record = pdd.put_after_sale(pdd_order["order_sn"], after_sales_status=2, after_sales_type=2, lines=1,
                                refund_amount="20.00", reason="质量问题")
    pdd.set_clock(start - timedelta(minutes=8))
    pdd.update_after_sale(record["id"], after_sales_status=10)
    result = after_sales.store_after_sales_sync(store_id=store.pk, now=start)
    assert (result["poll"], result["stored"], result["applied"]) == ("ok", 1, 1)
    ticket = Ticket.objects.get(store=store, platform_after_sale_id=record["id"])
    assert ticket.order_id == order.pk
    assert (ticket.type, ticket.status, ticket.platform_status) == ("refund_only", TicketStatus.REFUNDED,
                                                                    "after_sales_status=10 退款成功")
    refund = Refund.objects.get(ticket=ticket)
    assert (refund.amount, refund.method, refund.status) == (Decimal("20.00"), "platform", "confirmed")
    assert ChannelSyncState.objects.get(store=store).after_sales_watermark == start - timedelta(minutes=3)
    sent = [call["params"] for call in pdd.api_calls if call["type"] == "pdd.refund.list.increment.get"]
    assert {(params["after_sales_status"], params["after_sales_type"]) for params in sent} == {("1", "1")}
    assert all(int(p["end_updated_at"]) - int(p["start_updated_at"]) <= 30 * 60 for p in sent)

    # The next poll starts from the watermark and finds nothing new.
    before = len(sent)
    again = after_sales.store_after_sales_sync(store_id=store.pk, now=start + timedelta(minutes=1))
    assert (again["stored"], again["applied"]) == (0, 0)
    later = [call["params"] for call in pdd.api_calls if call["type"] == "pdd.refund.list.increment.get"][before:]
    assert int(later[0]["start_updated_at"]) == int((start - timedelta(minutes=8)).timestamp())
    assert TicketEvent.objects.filter(ticket=ticket, type=TicketEventType.PLATFORM_UPDATED).count() == 1


def test_bad_after_sales_are_dead_letters_and_one_for_an_unknown_order_waits(douyin):
    store = channel_store(platform=Platform.DOUYIN, code="dy-bad", name="抖店",
                          credentials=douyin.connector_credentials())
    start = timezone.now().replace(microsecond=0)
    douyin.set_clock(start - timedelta(minutes=20))
    shop_order = douyin.generate_order(status=2, lines=1)
    douyin.put_order(shop_order, push=False)  # never polled: the hub does not have this order yet
    douyin.set_clock(start - timedelta(minutes=10))
    douyin.put_after_sale(shop_order["order_id"], aftersale_type=8)  # 维修 repair: no ticket type
    waiting = douyin.put_after_sale(shop_order["order_id"], aftersale_type=1)

    result = after_sales.store_after_sales_sync(store_id=store.pk, now=start)
    assert (result["poll"], result["fetched"], result["stored"]) == ("ok", 2, 2)
    dead = InboxMessage.objects.get(store=store, kind=InboxKind.AFTER_SALE, status=InboxStatus.DEAD)
    assert dead.dead_reason == DeadReason.BAD_PAYLOAD and "aftersale_type 8" in dead.last_error
    assert '"aftersale_type": 8' in dead.body  # the raw payload is kept for a person
    pending = InboxMessage.objects.get(store=store, kind=InboxKind.AFTER_SALE, status=InboxStatus.PENDING)
    assert pending.delivery_key.startswith(f"as:{waiting['aftersale_info']['aftersale_id']}:")
    assert pending.attempts == 1 and "not in the hub yet" in pending.last_error
    assert not Ticket.objects.exists()
    # Listed again by the next poll, the broken item stays one dead letter.
    after_sales.store_after_sales_sync(store_id=store.pk, now=start + timedelta(minutes=1))
    assert InboxMessage.objects.filter(store=store, status=InboxStatus.DEAD).count() == 1


def test_pdd_after_sale_mapping_refuses_what_it_cannot_read():
    good = {"id": 100000000123, "order_sn": "240318-422796379670125", "after_sales_type": 3,
            "after_sales_status": 7, "goods_number": "1", "sku_id": "1001", "outer_id": "TEA-LJ-250G",
            "refund_amount": "168.00", "updated_time": "2026-12-01 10:00:00", "tracking_number": "YT123"}
    mapped = map_pdd_after_sale(good)
    assert (mapped.type, mapped.status, mapped.refund_amount, mapped.return_tracking_number) == (
        "return_refund", "returning", Decimal("168.00"), "YT123")
    for broken in ({**good, "after_sales_type": 6}, {**good, "after_sales_status": 99}, {**good, "id": "x"},
                   {**good, "updated_time": "yesterday"}, {**good, "refund_amount": "lots"}, []):
        with pytest.raises(PermanentError):
            map_pdd_after_sale(broken)


def test_taobao_refund_in_the_trade_delivered_three_times_out_of_order_opens_one_ticket(skus):
    sandbox = TaobaoSandbox(skus=SKUS, seed=3)
    store = channel_store(platform=Platform.TAOBAO, code="tb-as", name="淘宝店", credentials={})
    start = timezone.now().replace(microsecond=0)
    sandbox.set_clock(start - timedelta(minutes=30))
    trade = sandbox.generate_order(status="WAIT_SELLER_SEND_GOODS", lines=1)
    sub_order = trade["orders"][0] if isinstance(trade["orders"], list) else trade["orders"]["order"][0]

    def version(minutes, refund_status):
        copied = copy.deepcopy(trade)
        orders = copied["orders"] if isinstance(copied["orders"], list) else copied["orders"]["order"]
        if refund_status:
            orders[0].update(refund_id="88001", refund_status=refund_status)
        copied["modified"] = format_top_time(start - timedelta(minutes=minutes))
        return RawOrder(platform_order_id=str(trade["tid"]), updated_at=map_taobao_trade(copied).updated_at,
                        payload=copied)

    def deliver(raw):
        services.inbox_store_polled(store=store, raws=[raw])
        channel.inbox_process_store(store_id=store.pk)

    deliver(version(25, None))  # the order, before any after-sale
    order = Order.objects.get(store=store, platform_order_id=str(trade["tid"]))
    deliver(version(5, "SUCCESS"))  # newest first: the refund already paid
    deliver(version(15, "WAIT_SELLER_AGREE"))
    deliver(version(10, "SELLER_REFUSE_BUYER"))

    ticket = Ticket.objects.get(store=store)
    assert (ticket.order_id, ticket.platform_after_sale_id, ticket.status, ticket.platform_status) == (
        order.pk, "88001", TicketStatus.REFUNDED, "SUCCESS")
    assert ticket.lines.get().order_line.platform_line_id == str(sub_order["oid"])
    assert TicketEvent.objects.filter(ticket=ticket, type=TicketEventType.PLATFORM_UPDATED).count() == 1
    assert Refund.objects.filter(ticket=ticket, status="confirmed").count() == 1
    assert InboxMessage.objects.filter(store=store, status=InboxStatus.SKIPPED).count() == 2
