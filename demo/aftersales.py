"""Demo after-sales: a store policy, an auto-approval rule and tickets in each state on delivered WeChat orders, plus
one Taobao after-sale followed from the platform (opened, then refunded by Taobao)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from aftersales import policies
from aftersales.models import AftersalesPolicy, AutoApprovalRule, Grade, Ticket, TicketEvent, TicketType
from aftersales.services import TicketLineInput
from connectors.base import UnifiedAfterSale, UnifiedAfterSaleLine
from demo.fulfillment import parcels_backdate, parcels_deliver, parcels_ship, parcels_start_picking
from inventory.models import Warehouse
from orders import services as order_services
from orders.models import Order, Store
from orders.services import BuyerInput, LineInput, OrderInput, ReceiverInput
from pipeline import orders as order_flows
from pipeline import returns as return_flows
from pipeline import tickets as ticket_flows
from pipeline.after_sales import platform_after_sale_apply

DEMO_ACTOR = "demo"
STORE = "wechat-demo"
# The return parcel the README tour scans at the receiving station (/aftersales/receiving/).
TOUR_TRACKING = "SF1234567890"
# Refund only up to 50 CNY approves at once on the WeChat store (the buyer's word is enough for that much).
AUTO_REFUND_ONLY_LIMIT = Decimal("50.00")


@dataclass
class _Case:
    """One delivered WeChat order and the ticket the demo opens on it."""

    key: str  # the order's platform id: a rerun finds it and skips the case
    days_ago: float  # when the order was placed; delivered about two days later, inside the 7-day window
    lines: list[tuple[str, int, str]]  # (SKU code, quantity, unit price)
    type: str
    reason: str
    reason_text: str = ""
    # The ticket takes these order lines (1-based line numbers with quantities); None: every unit of every line.
    claim: list[tuple[int, int]] | None = None
    tracking: str = ""
    completed: bool = False
    # What happens after opening, in order: ("approve"|"reject"|"close", reason) or ("grade", [grades…]).
    steps: list[tuple[str, object]] = field(default_factory=list)
    # Demo-only aging of a still-requested ticket (see _age).
    age_hours: float = 0


CASES = [
    _Case("WX-AS-001", 3, [("TEA-LJ-250G", 1, "268.00")], TicketType.RETURN_REFUND, "size",
          "买家说买错了规格，想换 500g 的，先退货退款", age_hours=2),
    _Case("WX-AS-002", 5, [("CUP-KF-SET-6", 1, "299.00")], TicketType.REFUND_ONLY, "damaged",
          "收到时茶具有两只杯子碎了，买家发来了照片", age_hours=30),
    _Case("WX-AS-003", 4, [("TEA-PE-357G", 1, "158.00"), ("CUP-GAIWAN-150", 1, "68.00")], TicketType.RETURN_REFUND,
          "quality", "普洱茶饼有异味，盖碗也不要了", tracking=TOUR_TRACKING,
          steps=[("approve", "已与买家确认，寄回后退款")]),
    _Case("WX-AS-004", 6, [("TEA-LJ-250G", 2, "268.00"), ("CUP-CER-350", 1, "39.00")], TicketType.RETURN_REFUND,
          "damaged", "外包装破损，马克杯磕了个口", tracking="YT8800000004", completed=True,
          steps=[("approve", ""), ("grade", [Grade.RESALABLE, Grade.MINOR_WEAR, Grade.NOT_RESALABLE])]),
    _Case("WX-AS-005", 4, [("TEA-MLH-100G", 2, "49.90")], TicketType.REFUND_ONLY, "damaged",
          "一罐茉莉花茶罐子压扁了，买家不想寄回", claim=[(1, 1)]),
    _Case("WX-AS-006", 5, [("CUP-THM-500-BLK", 1, "129.00")], TicketType.EXCHANGE, "quality",
          "保温杯不保温，换一个新的", tracking="ZT7700000006",
          steps=[("approve", "换新，收到退回的杯子后发出"), ("grade", [Grade.MINOR_WEAR])]),
    _Case("WX-AS-007", 6, [("CUP-GLS-DW-300", 2, "45.00")], TicketType.RETURN_REFUND, "changed_mind",
          "不想要了", completed=True, steps=[("reject", "商品已拆封使用，不支持无理由退货")]),
    _Case("WX-AS-008", 3, [("TEA-BMD-100G", 1, "88.00")], TicketType.RETURN_REFUND, "not_as_described",
          "颜色和图片不一样", steps=[("close", "买家撤销了售后申请")]),
]


# One buyer per case: parcels of one receiver at one warehouse are merged, and a replacement parcel merged into
# another case's order would ship with it.
BUYERS = [
    ("林晓雯", "13817726601", "闵行区", "七莘路 1855 弄 6 号 302 室"),
    ("周子涵", "13916540822", "浦东新区", "张杨路 500 号 18 楼 1803 室"),
    ("陈思远", "13661870453", "徐汇区", "宜山路 700 号 B 座 9 楼"),
    ("王雅琴", "18017352264", "静安区", "江宁路 1018 弄 3 号 601 室"),
    ("赵一鸣", "13501994375", "杨浦区", "国定路 335 号 2 号楼 1102 室"),
    ("孙佳怡", "15921068816", "长宁区", "天山路 600 弄 12 号 502 室"),
    ("黄俊杰", "13764203397", "普陀区", "真北路 1288 号 5 楼"),
    ("吴欣然", "18621157738", "宝山区", "牡丹江路 1211 号 14 楼"),
]


# A Taobao order whose buyer asked Taobao for a refund of one screen film, which Taobao then paid: the ticket
# opens and follows the platform's two deliveries (nothing goes out to the sandbox, the platform already paid).
PLATFORM_STORE = "taobao-demo"
PLATFORM_CASE = _Case("4127306613390000588", 4, [("PHN-FILM-IP15-2P", 2, "29.90"), ("PHN-CBL-C2C-1M", 1, "25.00")],
                      TicketType.REFUND_ONLY, "quality", "钢化膜贴上后有气泡")
PLATFORM_REFUND_ID = "151908812400588"


def aftersales_setup_load(store: Store) -> int:
    """The WeChat store's policy (first answer within an hour of 09:00–21:00, a manager after 24 quiet hours)
    and its auto-approval rule; a rerun keeps what staff changed since. Returns how many rows were created."""
    _policy, policy_new = AftersalesPolicy.objects.get_or_create(store=store, defaults={
        "first_response_minutes": 60, "work_starts": "09:00", "work_ends": "21:00", "escalate_after_hours": 24})
    _rule, rule_new = AutoApprovalRule.objects.get_or_create(store=store, type=TicketType.REFUND_ONLY, defaults={
        "max_amount": AUTO_REFUND_ONLY_LIMIT, "enabled": True})
    return policy_new + rule_new


def _delivered_order(store: Store, case: _Case, now: datetime) -> Order:
    """A paid order to Shanghai (routed to SH), shipped and delivered through the real services."""
    name, phone, district, address = BUYERS[CASES.index(case) % len(BUYERS)] if case in CASES else BUYERS[0]
    placed_at = now - timedelta(days=case.days_ago)
    order = order_flows.order_create(store=store, actor_label=DEMO_ACTOR, data=OrderInput(
        platform_order_id=case.key, paid=True, placed_at=placed_at, paid_at=placed_at + timedelta(minutes=8),
        platform_updated_at=placed_at, raw_payload_ref=f"demo:aftersales:{case.key}",
        lines=[LineInput(sku_code=code, quantity=quantity, unit_price=Decimal(price))
               for code, quantity, price in case.lines],
        receiver=ReceiverInput(name=name, phone=phone, province="上海市", city="上海市", district=district,
                               address=address),
        buyer=BuyerInput(name=name)))
    for step in (parcels_start_picking, parcels_ship, parcels_deliver):
        order = step(order_id=order.pk, actor_label=DEMO_ACTOR)
    if case.completed:
        order = order_services.order_complete(order_id=order.pk, actor_label=DEMO_ACTOR, reason="买家确认收货")
    parcels_backdate(order, now=now)
    return order


def _age(ticket: Ticket, hours: float, now: datetime) -> None:
    """Demo-only: make a requested ticket look opened ``hours`` ago with nobody answering, so the queue shows an
    overdue (and, past the store's 24 hours, an escalated) ticket on a fresh install. No service backdates a
    ticket; in real use time does this. The SLA sweep that escalates it is the real one."""
    opened = now - timedelta(hours=hours)
    Ticket.objects.filter(pk=ticket.pk).update(created_at=opened, last_activity_at=opened,
                                               due_at=opened + timedelta(hours=1))
    TicketEvent.objects.filter(ticket=ticket).update(created_at=opened)


def _case_load(store: Store, case: _Case, *, now: datetime, desk, warehouse_user, site: Warehouse) -> Ticket:
    order = _delivered_order(store, case, now)
    lines = {line.line_no: line for line in order.lines.all()}
    claim = case.claim or [(line_no, line.quantity) for line_no, line in sorted(lines.items())]
    ticket = ticket_flows.ticket_open(
        order_id=order.pk, type=case.type, reason=case.reason, reason_text=case.reason_text,
        lines=[TicketLineInput(order_line_id=lines[line_no].pk, quantity=quantity) for line_no, quantity in claim],
        return_tracking_number=case.tracking, actor=desk)
    for action, argument in case.steps:
        if action == "grade":
            return_flows.return_open(scan=ticket.number, actor=warehouse_user)
            for grade, barcode in zip(argument, _units(ticket), strict=True):
                return_flows.return_unit_receive(ticket_id=ticket.pk, scan=barcode, grade=grade,
                                                 warehouse_id=site.pk, actor=warehouse_user)
        else:
            ticket_flows.ticket_apply_transition(ticket_id=ticket.pk, name=action, actor=desk, reason=argument)
    if case.age_hours:
        _age(ticket, case.age_hours, now)
    return Ticket.objects.get(pk=ticket.pk)


def _units(ticket: Ticket) -> list[str]:
    """The barcode of each unit the ticket expects back, line by line (what the warehouse scans)."""
    return [line.order_line.sku.barcode for line in ticket.lines.select_related("order_line__sku")
            .order_by("order_line__line_no") for _unit in range(line.quantity)]


def _platform_case_load(store: Store, *, now: datetime) -> Ticket:
    """The Taobao after-sale as the order poll brings it: first waiting for the seller, then refunded by Taobao."""
    case = PLATFORM_CASE
    order = _delivered_order(store, case, now)
    asked = now - timedelta(hours=20)
    for status, raw_status, updated_at in [("open", "WAIT_SELLER_AGREE", asked),
                                           ("refunded", "SUCCESS", asked + timedelta(hours=3))]:
        platform_after_sale_apply(store=store, order=order, after_sale=UnifiedAfterSale(
            platform_after_sale_id=PLATFORM_REFUND_ID, platform_order_id=case.key, type=case.type, status=status,
            raw_status=raw_status, updated_at=updated_at, reason_text=case.reason_text,
            refund_amount=Decimal("29.90"), lines=[UnifiedAfterSaleLine(quantity=1, sku="PHN-FILM-IP15-2P")]))
    return Ticket.objects.get(store=store, platform_after_sale_id=PLATFORM_REFUND_ID)


def tickets_load(stores: dict[str, Store]) -> int:
    """Open the demo tickets once each (a case whose order exists is skipped); returns how many were made."""
    store = stores[STORE]
    users = get_user_model().objects.in_bulk(["cs", "warehouse"], field_name="username")
    site = Warehouse.objects.get(code="SH")
    done = set(Order.objects.filter(store=store, platform_order_id__in=[case.key for case in CASES])
               .values_list("platform_order_id", flat=True))
    now = timezone.now().replace(microsecond=0)
    created = 0
    for case in CASES:
        if case.key in done:
            continue
        with transaction.atomic():
            _case_load(store, case, now=now, desk=users.get("cs"), warehouse_user=users.get("warehouse"), site=site)
        created += 1
    platform_store = stores[PLATFORM_STORE]
    if not Order.objects.filter(store=platform_store, platform_order_id=PLATFORM_CASE.key).exists():
        with transaction.atomic():
            _platform_case_load(platform_store, now=now)
        created += 1
    if created:
        # The real SLA sweep (the beat runs it every few minutes): the ticket aged past 24 hours goes to a manager.
        policies.tickets_escalate_stale()
    return created
