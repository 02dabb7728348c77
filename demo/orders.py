"""Demo orders: a few hundred spread over every state in fixed proportions, each taken to its state through the
real services, plus a few that wait for a scarce SKU."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from demo.catalog import SKUS
from demo.fulfillment import (
    parcel_ship_first_line,
    parcels_backdate,
    parcels_deliver,
    parcels_ship,
    parcels_start_picking,
)
from demo.receivers import REMOTE_PROVINCES, RISK_REVIEW_ABOVE, cn_receiver, digits, overseas_receiver
from demo.stores import STORE_CATEGORIES, STORE_WEIGHTS
from inventory.models import SKU, StockLevel
from orders import services
from orders.exceptions import OrderInvalid
from orders.models import HoldReason, Order, OrderStatus, Platform, Priority, Store
from orders.services import BuyerInput, LineInput, OrderInput, ReceiverInput
from pipeline import orders as flows
from pipeline.stock import stock_take

S = OrderStatus
DEMO_ACTOR = "demo"
CENT = Decimal("0.01")

STATUS_MIX = [
    (S.PENDING_PAYMENT, 10), (S.READY, 10), (S.HELD, 8), (S.IN_FULFILMENT, 12), (S.PARTIALLY_SHIPPED, 5),
    (S.SHIPPED, 20), (S.DELIVERED, 10), (S.COMPLETED, 15), (S.CANCELLED, 8), (S.CLOSED, 2),
]
# How many days ago orders in each state were placed: unpaid orders are fresh, completed ones old.
STATUS_AGE_DAYS = {
    S.PENDING_PAYMENT: (0, 1.5), S.READY: (0, 3), S.HELD: (0, 5), S.IN_FULFILMENT: (0.5, 4),
    S.PARTIALLY_SHIPPED: (1, 6), S.SHIPPED: (2, 10), S.DELIVERED: (5, 15), S.COMPLETED: (10, 30),
    S.CANCELLED: (0, 30), S.CLOSED: (5, 30),
}

BUYER_NOTES_CN = ["请发顺丰，谢谢", "工作日白天不在家，请放驿站", "送人的，请不要放价格单", "易碎品，麻烦包装好一点",
                  "急用，请尽快发货"]
BUYER_NOTES_EN = ["Please leave the parcel at the front door.", "It's a gift - please no invoice in the box."]
# Taobao only hands out opaque per-app buyer ids ("open uid"), never the buyer's nick.
OPEN_UID_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghjkmnpqrstuvwxyz23456789"
CHASE_CHANNEL = {"taobao-demo": "旺旺", "douyin-demo": "飞鸽", "pdd-demo": "拼多多客服", "wechat-demo": "微信"}
SERVICE_NOTES = ["买家要求改发顺丰，运费差价已补", "买家来电确认收货地址无误", "老客户，已附手写感谢卡"]
SERVICE_NOTES_OVERSEAS = ["买家邮件确认收货地址无误", "买家要求礼品包装，已备注仓库"]
HELD_CANCEL_REASONS = {
    HoldReason.RISK: "风控拒单，已全额退款",
    HoldReason.GROUP_PENDING: "拼单超时未成团，自动取消并退款",
    HoldReason.ADDRESS: "地址无法送达，与买家协商取消",
    HoldReason.PRICE: "标价错误，与买家协商取消",
    HoldReason.MANUAL: "买家取消",
}

# After the orders are in, this SKU runs short: a few WeChat orders wait for it (缺货待补) and it shows
# on the low-stock list until someone receives more.
SCARCE_SKU = "TEA-GIFT-1288"
SCARCE_ORDERS = 3


def scarcity_load(stores: dict[str, Store]) -> int:
    """Count the scarce SKU down to what is reserved, then place orders that must wait for stock."""
    sku = SKU.objects.get(code=SCARCE_SKU)
    store = stores["wechat-demo"]
    created = 0
    for index in range(1, SCARCE_ORDERS + 1):
        platform_id = f"WX-SHORT-{index:03d}"
        if Order.objects.filter(store=store, platform_order_id=platform_id).exists():
            continue
        if created == 0:
            for level in StockLevel.objects.filter(sku=sku):
                stock_take(warehouse_id=level.warehouse_id, sku_id=sku.pk, counted=level.reserved + 1,
                           reference="demo:stocktake")
        with transaction.atomic():
            flows.order_create(store=store, actor_label=DEMO_ACTOR, data=OrderInput(
                platform_order_id=platform_id,
                lines=[LineInput(sku_code=SCARCE_SKU, quantity=2, unit_price=Decimal("1288.00"))],
                receiver=ReceiverInput(name="陈静", phone="13916882345", province="上海市", city="上海市",
                                       district="徐汇区", address="漕溪北路 398 号 12 楼"),
                paid=True, buyer_note="公司年会礼品，急需", priority=Priority.VIP, tags=["团购"]))
        created += 1
    return created


@dataclass
class _DemoOrder:
    store_code: str
    target: str
    data: OrderInput
    # Service calls that bring the new order to its target state, each as (service, extra kwargs).
    steps: list[tuple[Callable, dict]] = field(default_factory=list)


def _status_plan(count: int, rng: random.Random) -> list[str]:
    """Exactly the STATUS_MIX proportions (largest remainder), in a shuffled order."""
    total = sum(weight for _status, weight in STATUS_MIX)
    quotas = [(status, count * weight / total) for status, weight in STATUS_MIX]
    counts = {status: int(quota) for status, quota in quotas}
    by_remainder = sorted(quotas, key=lambda item: item[1] - int(item[1]), reverse=True)
    for status, _quota in by_remainder[: count - sum(counts.values())]:
        counts[status] += 1
    plan = [status for status, _weight in STATUS_MIX for _ in range(counts[status])]
    rng.shuffle(plan)
    return plan


def _platform_order_id(rng: random.Random, platform: str, placed_at: datetime) -> str:
    if platform == Platform.SHOPIFY:
        return digits(rng, 10)
    if platform == Platform.TAOBAO:
        return digits(rng, rng.choice([18, 19]))
    if platform == Platform.DOUYIN:
        return "69" + "".join(str(rng.randint(0, 9)) for _ in range(17))
    # Pinduoduo ids start with the order date.
    return f"{timezone.localtime(placed_at):%y%m%d}-{digits(rng, 15)}"


def _unit_price(rng: random.Random, list_price: Decimal, currency: str) -> Decimal:
    if currency == "USD":
        # A fixed 7.2 CNY/USD with .99 endings, as a US storefront would price it.
        return Decimal(max(int(list_price / Decimal("7.2")), 1)) + Decimal("0.99")
    factor = rng.choice(["1", "1", "1", "0.95", "0.9", "0.88"])
    return (list_price * Decimal(factor)).quantize(Decimal("0.1")).quantize(CENT)


def _lines(rng: random.Random, store_code: str, currency: str, *, min_lines: int, big: bool) -> list[LineInput]:
    catalogue = [sku for sku in SKUS if sku[2] in STORE_CATEGORIES[store_code] and not sku[6]]
    count = max(min_lines, rng.choices([1, 2, 3, 4], weights=[50, 30, 14, 6])[0])
    chosen = rng.sample(catalogue, count)
    gift_box = next(sku for sku in SKUS if sku[0] == "TEA-GIFT-1288")
    if big and gift_box not in chosen:
        # Guarantees the amount that triggers the far-west risk review.
        chosen[0] = gift_box
    lines = []
    for code, _name, _category, _weight, price, _safety, _gift in chosen:
        quantity = rng.choices([1, 2, 3], weights=[70, 22, 8])[0]
        if Decimal(price) >= 400:
            quantity = 1  # gift boxes and tea sets are bought one at a time
        unit_price = _unit_price(rng, Decimal(price), currency)
        discount = Decimal("0")
        coupon = Decimal(rng.choice([1, 2, 5]) if currency == "USD" else rng.choice([5, 10, 15, 20]))
        # Shop coupons only apply when the line is worth several times the coupon.
        if rng.random() < 0.15 and unit_price * quantity >= coupon * 4:
            discount = coupon
        lines.append(LineInput(sku_code=code, quantity=quantity, unit_price=unit_price, discount_amount=discount))
    return lines


def _total(data: OrderInput) -> Decimal:
    goods = sum((line.unit_price * line.quantity - line.discount_amount for line in data.lines), Decimal("0"))
    return goods - data.discount_amount + data.shipping_amount + data.tax_amount


def _order_build(rng: random.Random, *, store_code: str, platform: str, target: str, now: datetime,
                 manual_number: int, seed: int, ref: str) -> _DemoOrder:
    """One order's input and the service calls that take it to ``target``; every choice comes from ``rng``."""
    overseas = platform == Platform.SHOPIFY
    currency = "USD" if overseas else "CNY"
    cancel_from = rng.choices(["pending", "ready", "held"], weights=[40, 45, 15])[0]
    held_on_purpose = target == S.HELD or (target == S.CANCELLED and cancel_from == "held")
    # Half of the deliberately held orders are the textbook risk case: a big order to 新疆/西藏.
    force_risk = held_on_purpose and not overseas and rng.random() < 0.5
    remote = force_risk or (not overseas and rng.random() < 0.05)
    partial_first = target == S.PARTIALLY_SHIPPED or (target == S.SHIPPED and rng.random() < 0.25)

    low, high = STATUS_AGE_DAYS[target]
    placed_at = now - timedelta(seconds=int(rng.uniform(low, high) * 86400) + 600)
    platform_order_id = (f"WX-{seed}-{manual_number:06d}" if platform == Platform.MANUAL
                         else _platform_order_id(rng, platform, placed_at))
    receiver = overseas_receiver(rng) if overseas else cn_receiver(rng, remote=remote)
    lines = _lines(rng, store_code, currency, min_lines=2 if partial_first else 1, big=force_risk)

    roll = rng.random()
    priority = Priority.VIP if roll < 0.04 else Priority.HIGH if roll < 0.10 else Priority.NORMAL
    tags = []
    if rng.random() < 0.15:
        tags.append("大促")
    if priority == Priority.VIP:
        tags.append("VIP")
    elif priority == Priority.HIGH:
        tags.append("加急")
    seller_note = ""
    if not overseas and (priority == Priority.VIP or rng.random() < 0.08):
        gift = rng.choice([sku for sku in SKUS if sku[6]])
        lines.append(LineInput(sku_code=gift[0], quantity=1, unit_price=Decimal("0")))
        tags.append("赠品")
        seller_note = f"随单赠送{gift[1]}"

    goods = sum((line.unit_price * line.quantity - line.discount_amount for line in lines), Decimal("0"))
    if overseas:
        shipping = Decimal("0") if goods >= 59 else Decimal("7.99") if receiver.country == "US" else Decimal("12.99")
        discount = Decimal("5.00") if goods >= 80 and rng.random() < 0.2 else Decimal("0")
        buyer = BuyerInput(id=digits(rng, 13), name=receiver.name, phone=receiver.phone,
                           email=receiver.name.lower().replace(" ", ".").replace("ü", "ue") + "@example.com")
        buyer_note = rng.choice(BUYER_NOTES_EN) if rng.random() < 0.15 else ""
    else:
        shipping = (Decimal(rng.choice([6, 8, 10, 12])) if rng.random() < 0.15 else Decimal("0"))
        if remote:
            shipping = Decimal("25")
        discount = Decimal("20") if goods >= 199 and rng.random() < 0.25 else Decimal("0")  # 满199减20
        buyer_id = ""
        if platform == Platform.TAOBAO:
            buyer_id = "AAG" + "".join(rng.choice(OPEN_UID_ALPHABET) for _ in range(21))
        elif platform == Platform.DOUYIN:
            buyer_id = digits(rng, 16)
        buyer = BuyerInput(id=buyer_id, name=receiver.name)
        buyer_note = rng.choice(BUYER_NOTES_CN) if rng.random() < 0.2 else ""

    paid = not (target == S.PENDING_PAYMENT or (target == S.CANCELLED and cancel_from == "pending"))
    data = OrderInput(
        platform_order_id=platform_order_id, lines=lines, receiver=receiver, buyer=buyer, currency=currency,
        shipping_amount=shipping, discount_amount=discount, paid=paid,
        paid_at=placed_at + timedelta(seconds=rng.randint(20, 1800)) if paid else None,
        placed_at=placed_at, platform_updated_at=placed_at, priority=priority, tags=tags,
        buyer_note=buyer_note, seller_note=seller_note, raw_payload_ref=ref,
    )
    order = _DemoOrder(store_code=store_code, target=target, data=data)
    order.steps = _steps(rng, order, cancel_from=cancel_from, partial_first=partial_first,
                         risky=paid and receiver.province in REMOTE_PROVINCES and _total(data) > RISK_REVIEW_ABOVE)
    return order


def _steps(rng: random.Random, order: _DemoOrder, *, cancel_from: str, partial_first: bool,
           risky: bool) -> list[tuple[Callable, dict]]:
    target, store_code = order.target, order.store_code
    steps: list[tuple[Callable, dict]] = []
    if target == S.PENDING_PAYMENT:
        if store_code in CHASE_CHANNEL and rng.random() < 0.3:
            steps.append((services.order_add_note, {"note": f"已通过{CHASE_CHANNEL[store_code]}催付"}))
        return steps
    if target == S.CANCELLED and cancel_from == "pending":
        reason = rng.choice(["买家取消", "超时未支付，自动取消"])
        return [(flows.order_cancel, {"reason": reason})]

    stays_held = target == S.HELD or (target == S.CANCELLED and cancel_from == "held")
    if risky:
        steps.append((services.order_hold, {"hold_reason": HoldReason.RISK,
                                            "note": f"新疆/西藏地区订单金额超过 {RISK_REVIEW_ABOVE}，人工风控复核"}))
        if not stays_held:
            steps.append((flows.order_release_hold, {"hold_reason": HoldReason.RISK, "note": "人工复核通过"}))
    hold_reason = HoldReason.RISK
    if stays_held and not risky:
        if store_code == "pdd-demo":
            hold_reason, note = HoldReason.GROUP_PENDING, "拼单未成团，成团后再发货"
        else:
            hold_reason, note = rng.choice([(HoldReason.ADDRESS, "收货地址缺少门牌号，待联系买家确认"),
                                            (HoldReason.PRICE, "成交价低于最低售价，待运营核价"),
                                            (HoldReason.MANUAL, "买家要求暂缓发货")])
        steps.append((services.order_hold, {"hold_reason": hold_reason, "note": note}))
        if hold_reason == HoldReason.ADDRESS:
            steps.append((services.order_add_note, {"note": "已电话联系买家，等待回复"}))

    if target == S.HELD:
        return steps
    if target == S.CANCELLED:
        reason = (HELD_CANCEL_REASONS[hold_reason] if cancel_from == "held"
                  else rng.choice(["买家取消", "买家申请退款（未发货）"]))
        steps.append((flows.order_cancel, {"reason": reason}))
        return steps
    if rng.random() < 0.05:
        notes = SERVICE_NOTES_OVERSEAS if store_code == "shopify-demo" else SERVICE_NOTES
        steps.append((services.order_add_note, {"note": rng.choice(notes)}))
    if target == S.READY:
        return steps

    steps.append((parcels_start_picking, {}))
    if target == S.CLOSED:
        steps.append((flows.order_close, {"reason": "仓库缺货无法发出，已全额退款关单"}))
        return steps
    if partial_first:
        steps.append((parcel_ship_first_line, {}))
    if target in (S.IN_FULFILMENT, S.PARTIALLY_SHIPPED):
        return steps
    steps.append((parcels_ship, {}))
    if target == S.SHIPPED:
        return steps
    delivered = target == S.DELIVERED or rng.random() < 0.85
    if delivered:
        steps.append((parcels_deliver, {}))
    if target == S.COMPLETED:
        steps.append((services.order_complete, {"reason": "买家确认收货" if delivered else "超时自动确认收货"}))
    return steps


def orders_load(*, count: int, seed: int, stores: dict[str, Store]) -> tuple[int, int]:
    plan = _status_plan(count, random.Random(seed))
    now = timezone.now().replace(microsecond=0)
    existing_ids = set(Order.objects.filter(store__in=stores.values()).values_list("store_id", "platform_order_id"))
    # Pinduoduo ids carry the order date, which moves with "now"; the reference keeps reruns on
    # later days from loading the same demo order a second time.
    existing_refs = set(Order.objects.filter(raw_payload_ref__startswith=f"demo:{seed}:")
                        .values_list("raw_payload_ref", flat=True))
    codes, weights = zip(*STORE_WEIGHTS.items(), strict=True)
    created = skipped = manual_number = 0
    for index, target in enumerate(plan):
        # One generator per order: order N is the same whatever --orders says and whatever exists.
        rng = random.Random(f"{seed}:{index}")
        store = stores[rng.choices(codes, weights=weights)[0]]
        if store.platform == Platform.MANUAL:
            manual_number += 1
        ref = f"demo:{seed}:{index}"
        spec = _order_build(rng, store_code=store.code, platform=store.platform, target=target, now=now,
                            manual_number=manual_number, seed=seed, ref=ref)
        if (store.pk, spec.data.platform_order_id) in existing_ids or ref in existing_refs:
            skipped += 1
            continue
        try:
            with transaction.atomic():
                order = flows.order_create(store=store, data=spec.data, actor_label=DEMO_ACTOR)
                for service, kwargs in spec.steps:
                    order = service(order_id=order.pk, actor_label=DEMO_ACTOR, **kwargs)
                parcels_backdate(order, now=now)
        except OrderInvalid as exc:
            # Another run loaded the same order since the check above.
            if exc.code != "duplicate_order":
                raise
            skipped += 1
            continue
        created += 1
    return created, skipped
