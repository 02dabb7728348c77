"""Demo buyers for the desk (/desk/): a returning buyer on two stores, her namesake, a VIP with an order still in the
warehouse and a Douyin order whose phone arrived masked, with customer-service notes, all through the real services."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from aftersales.models import TicketType
from aftersales.services import TicketLineInput
from demo.fulfillment import (
    order_parcels,
    parcels_backdate,
    parcels_deliver,
    parcels_ship,
    parcels_start_picking,
)
from desk.customers import buyer_key_of_order
from desk.models import CustomerNote
from desk.services import customer_note_add
from fulfillment import services as fulfilment
from fulfillment.models import Shipment, ShipmentStatus
from orders import services as order_services
from orders.models import HoldReason, Order, Priority, Store
from orders.services import BuyerInput, LineInput, OrderInput, ReceiverInput
from pipeline import orders as order_flows
from pipeline import shipping
from pipeline import tickets as ticket_flows

DEMO_ACTOR = "demo"


@dataclass(frozen=True)
class DeskBuyer:
    name: str
    phone: str
    province: str
    city: str
    district: str
    address: str
    # Taobao's opaque per-app buyer id ("open uid"); WeChat orders carry none, so the phone is their key.
    taobao_buyer_id: str = ""


# 王小贝 buys on Taobao and through WeChat with one phone: the customer view joins both stores by it. Her last
# four, 5678, also match the Douyin order below, whose phone the platform sent masked.
XIAOBEI = DeskBuyer("王小贝", "13816245678", "上海市", "上海市", "静安区", "江宁路 1018 弄 7 号 1202 室",
                    taobao_buyer_id="AAGw8kXbN2qRtYzHm3pLs7cD")
# Her namesake, so typing 王小 finds two people.
XIAOMING = DeskBuyer("王小明", "13957121357", "浙江省", "杭州市", "西湖区", "文三路 478 号 3 栋 602 室",
                     taobao_buyer_id="AAGm5TqZc8VhJr2Lx9NbWe4K")
# A VIP (an order of hers carries the VIP priority, which is the tier the desk shows) with a fresh order in the
# Shanghai warehouse to expedite, from the desk or, as the buyer, through the customer API.
VIP = DeskBuyer("赵丽华", "18621886688", "上海市", "上海市", "徐汇区", "肇嘉浜路 1065 号 21 楼 2103 室")
# What Douyin sends for an encrypted receiver: masked copies (shown and searched) plus ciphertext (kept).
MASKED_PHONE = "138****5678"
MASKED_RECEIVER = DeskBuyer("王**", MASKED_PHONE, "上海市", "上海市", "静安区", "江宁路****")
MASKED_CIPHERTEXT = {"name": "#王##Zk3vQm8hT1aYpX0r#demo~1#", "phone": "$138$Qm9sVb2nLk7Cw4Ex$demo~1$",
                     "detail": "#江宁路#Hn6pRt3yGv8Jd1Ks#demo~1#"}
DOUYIN_BUYER_ID = "4819376025184463"


@dataclass
class _DeskOrder:
    store: str
    key: str  # the platform order id: a rerun finds it and skips the order
    buyer: DeskBuyer
    days_ago: float
    lines: list[tuple[str, int, str]]  # (SKU code, quantity, unit price)
    target: str  # "completed", "delivered", "shipped", "ready" or "held"
    priority: int = Priority.NORMAL
    tags: list[str] = field(default_factory=list)
    address: str = ""  # another address than the buyer's usual one
    tracking: str = ""  # "shipped": the tracking number the README cites (the carrier's code goes in front)
    # "delivered": the after-sales ticket customer service opened, (type, reason, the buyer's words).
    ticket: tuple[str, str, str] | None = None
    hold_note: str = ""


ORDERS = [
    _DeskOrder("taobao-demo", "4018362291750235678", XIAOBEI, 152,
               [("PHN-CASE-IP15-PNK", 1, "49.00"), ("PHN-FILM-IP15-2P", 1, "29.90")], "completed"),
    _DeskOrder("wechat-demo", "WX-DESK-001", XIAOBEI, 74, [("TEA-LJ-250G", 1, "268.00")], "completed"),
    _DeskOrder("wechat-demo", "WX-DESK-002", XIAOBEI, 6, [("CUP-GAIWAN-150", 2, "68.00")], "delivered",
               ticket=(TicketType.RETURN_REFUND, "damaged", "一只盖碗的杯盖有裂纹，两只都想退")),
    _DeskOrder("taobao-demo", "4018362291750246678", XIAOBEI, 2, [("PHN-PB-10K-WHT", 1, "149.00")], "shipped",
               tracking="5678202600"),
    _DeskOrder("taobao-demo", "4018362291750257678", XIAOBEI, 0.2, [("TEA-LJ-500G", 2, "498.00")], "held",
               address="南京西路 1266 号恒隆广场 36 楼（公司）",
               hold_note="新收货地址且金额较大（同一买家首次寄往该地址），人工风控复核"),
    _DeskOrder("taobao-demo", "4018362291750261357", XIAOMING, 41, [("APP-TEE-L-BLK", 2, "79.00")], "completed"),
    _DeskOrder("taobao-demo", "4018362291750271357", XIAOMING, 9, [("FOOD-NUT-750G", 1, "129.00")], "delivered"),
    _DeskOrder("wechat-demo", "WX-DESK-101", VIP, 96, [("TEA-LJ-500G", 2, "498.00"), ("CUP-KF-SET-6", 1, "299.00")],
               "completed", priority=Priority.VIP, tags=["VIP", "团购"]),
    _DeskOrder("wechat-demo", "WX-DESK-102", VIP, 33, [("TEA-DHP-200G", 3, "198.00")], "completed",
               priority=Priority.VIP, tags=["VIP"]),
    _DeskOrder("wechat-demo", "WX-DESK-103", VIP, 0.1, [("TEA-LJ-250G", 2, "268.00"), ("CUP-GAIWAN-150", 1, "68.00")],
               "ready"),
    _DeskOrder("douyin-demo", "6920260512345675678", MASKED_RECEIVER, 1, [("PHN-CHG-20W-USBC", 1, "69.00")], "ready"),
]

# (buyer, the order whose buyer key the note is written under, text): written by the demo customer-service user.
NOTES = [
    (XIAOBEI, "WX-DESK-002", "老客户，淘宝和微信都买过。偏爱龙井，发货前请电话确认收货时间"),
    (VIP, "WX-DESK-101", "VIP 客户，常为公司采购礼盒；催单请优先处理，一律发顺丰"),
]


def _order_input(spec: _DeskOrder, store: Store, now: datetime) -> OrderInput:
    buyer = spec.buyer
    placed_at = now - timedelta(days=spec.days_ago)
    if store.code == "douyin-demo":
        buyer_input = BuyerInput(id=DOUYIN_BUYER_ID)
    else:
        buyer_input = BuyerInput(id=buyer.taobao_buyer_id if store.code == "taobao-demo" else "", name=buyer.name)
    return OrderInput(
        platform_order_id=spec.key, paid=True, placed_at=placed_at, paid_at=placed_at + timedelta(minutes=3),
        platform_updated_at=placed_at, raw_payload_ref=f"demo:desk:{spec.key}", priority=spec.priority,
        tags=list(spec.tags),
        lines=[LineInput(sku_code=code, quantity=quantity, unit_price=Decimal(price))
               for code, quantity, price in spec.lines],
        receiver=ReceiverInput(name=buyer.name, phone=buyer.phone, province=buyer.province, city=buyer.city,
                               district=buyer.district, address=spec.address or buyer.address),
        buyer=buyer_input,
        receiver_ciphertext=dict(MASKED_CIPHERTEXT) if buyer is MASKED_RECEIVER else {})


def _parcel_ship_as(*, order_id: int, tracking: str) -> Order:
    """Pick, scan, pack and ship the order's one parcel under a tracking number fixed in advance (the README
    cites it), the carrier's code in front like the other demo parcels."""
    (shipment_id,) = order_parcels(order_id, ShipmentStatus.TO_PICK, ShipmentStatus.PICKING)
    parcel = Shipment.objects.select_related("carrier").get(pk=shipment_id)
    if parcel.status == ShipmentStatus.TO_PICK:
        shipping.shipment_start_picking(shipment_id=shipment_id, actor_label=DEMO_ACTOR)
    for line in parcel.lines.select_related("sku"):
        for _unit in range(line.quantity - line.verified_quantity):
            fulfilment.shipment_scan_item(shipment_id=shipment_id, barcode=line.sku.code)
    shipping.shipment_pack(shipment_id=shipment_id)
    code = parcel.carrier.code if parcel.carrier else "YT"
    shipping.shipment_ship(shipment_id=shipment_id, tracking_number=f"{code}{tracking}")
    return Order.objects.get(pk=order_id)


def _order_load(spec: _DeskOrder, store: Store, *, now: datetime, desk_user) -> Order:
    order = order_flows.order_create(store=store, data=_order_input(spec, store, now), actor_label=DEMO_ACTOR)
    if spec.target == "held":
        order = order_services.order_hold(order_id=order.pk, hold_reason=HoldReason.RISK, note=spec.hold_note,
                                          actor_label=DEMO_ACTOR)
    elif spec.target == "shipped":
        order = _parcel_ship_as(order_id=order.pk, tracking=spec.tracking)
    elif spec.target in ("delivered", "completed"):
        for step in (parcels_start_picking, parcels_ship, parcels_deliver):
            order = step(order_id=order.pk, actor_label=DEMO_ACTOR)
        if spec.target == "completed":
            order = order_services.order_complete(order_id=order.pk, actor_label=DEMO_ACTOR, reason="买家确认收货")
    parcels_backdate(order, now=now)
    if spec.ticket:
        type_, reason, text = spec.ticket
        ticket_flows.ticket_open(
            order_id=order.pk, type=type_, reason=reason, reason_text=text, actor=desk_user,
            lines=[TicketLineInput(order_line_id=line.pk, quantity=line.quantity) for line in order.lines.all()])
    return order


def desk_buyers_load(stores: dict[str, Store]) -> int:
    """Create the desk's named buyers' orders and notes once each; returns how many orders and notes were made."""
    desk_user = get_user_model().objects.filter(username="cs").first()
    now = timezone.now().replace(microsecond=0)
    done = set(Order.objects.filter(platform_order_id__in=[spec.key for spec in ORDERS])
               .values_list("store__code", "platform_order_id"))
    created = 0
    for spec in ORDERS:
        if (spec.store, spec.key) in done:
            continue
        with transaction.atomic():
            _order_load(spec, stores[spec.store], now=now, desk_user=desk_user)
        created += 1
    for buyer, key, text in NOTES:
        if CustomerNote.objects.filter(phone=buyer.phone, text=text).exists():
            continue
        order = Order.objects.get(store__code="wechat-demo", platform_order_id=key)
        customer_note_add(key=buyer_key_of_order(order), text=text, author=desk_user)
        created += 1
    return created


def desk_buyers_summary(*, created: int) -> str:
    """The loader's line: what to type into the desk's search box (the README tour cites these)."""
    spec = next(spec for spec in ORDERS if spec.tracking)
    # The carrier's code in front of the number comes from the routing rules.
    tracking = (Shipment.objects.filter(lines__order__platform_order_id=spec.key,
                                        tracking_number__endswith=spec.tracking)
                .values_list("tracking_number", flat=True).first() or spec.tracking)
    return (f"Desk buyers: {created} new orders and notes. At /desk/ search {XIAOBEI.phone[-4:]} ({XIAOBEI.name} "
            f"{XIAOBEI.phone} on Taobao and WeChat, and a Douyin {MASKED_PHONE}), {XIAOBEI.name[:2]} ({XIAOBEI.name}, "
            f"{XIAOMING.name}), tracking {tracking}; VIP {VIP.name} {VIP.phone} (WX-DESK-103 waits in SH).")
