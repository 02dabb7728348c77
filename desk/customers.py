"""Reads of the customer view: who a buyer is (the buyer key) and everything the desk shows about them."""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.db.models import Count, Max, Min, Prefetch, Q, Sum
from django.utils.translation import gettext as _

from aftersales.models import Ticket
from desk.models import CustomerNote
from fulfillment.models import Shipment, ShipmentLine, TrackingEvent
from oms.exceptions import DomainError
from oms.pii import can_view_pii, mask_address, mask_name, mask_phone
from orders.models import HoldReason, Order, OrderStatus, Priority

# Who may use the desk: the same pair as the search page (desk.views): customer service and managers work
# after-sales tickets, the warehouse and finance do not. Whether PII shows is orders.view_pii's, on the page.
DESK_PERMISSIONS = ("orders.view_order", "aftersales.work_ticket")
# The newest orders shown (the summary counts every order of the buyer).
ORDERS_SHOWN = 50
# A tracking timeline shows the latest checkpoints of each parcel.
TRACKING_SHOWN = 20
# A full phone number: digits only, after "+86"/"0086" and separators are taken off. Mainland mobiles have
# 11 digits; landlines and foreign numbers from 7 to 15 (E.164). Four digits (or a masked copy) are many people.
_SEPARATORS = re.compile(r"[\s\-().]")
_FULL_PHONE = re.compile(r"^\d{7,15}$")


class NotABuyer(DomainError):
    code = "not_a_buyer"
    http_status = 400


def phone_full(phone: str) -> str:
    """The phone as a buyer key, or "" when it identifies nobody (masked: 138****1234, or a last four)."""
    text = _SEPARATORS.sub("", phone or "")
    for prefix in ("+86", "0086"):
        if text.startswith(prefix) and len(text) - len(prefix) == 11:
            text = text[len(prefix):]
    return text if _FULL_PHONE.match(text) else ""


@dataclass(frozen=True)
class BuyerKey:
    """One buyer: (store, platform buyer id) and/or a full phone; a buyer with both is matched by either."""

    store_id: int | None = None
    buyer_id: str = ""
    phone: str = ""

    def orders_q(self) -> Q:
        # Two indexed lookups OR-ed: (store_id, buyer_id) and receiver_phone. Orders of encrypted receivers
        # (PDD, Douyin) hold a masked copy of the phone, which never equals a full number.
        q = Q(pk__in=[])
        if self.store_id and self.buyer_id:
            q |= Q(store_id=self.store_id, buyer_id=self.buyer_id)
        if self.phone:
            q |= Q(receiver_phone=self.phone)
        return q

    def notes_q(self) -> Q:
        q = Q(pk__in=[])
        if self.store_id and self.buyer_id:
            q |= Q(store_id=self.store_id, buyer_id=self.buyer_id)
        if self.phone:
            q |= Q(phone=self.phone)
        return q


def buyer_key(*, store_id: int | None = None, buyer_id: str = "", phone: str = "") -> BuyerKey:
    """The buyer for these keys; NotABuyer when none identifies one person (a masked phone, a last four)."""
    buyer_id = (buyer_id or "").strip()
    full = phone_full(phone)
    if not (store_id and buyer_id) and not full:
        raise NotABuyer(_("A buyer is a store with its platform buyer id, or a full phone number: a masked "
                          "number or the last four digits belong to many people."))
    return BuyerKey(store_id=store_id if buyer_id else None, buyer_id=buyer_id if store_id else "", phone=full)


def buyer_key_of_order(order: Order) -> BuyerKey:
    """The buyer of one order: its platform buyer id in its store and, unless the platform sent the receiver
    encrypted (its phone is then a masked copy), the receiver's full phone (else the buyer's)."""
    phone = ""
    if not order.receiver_ciphertext:
        phone = phone_full(order.receiver_phone) or phone_full(order.buyer_phone)
    return buyer_key(store_id=order.store_id, buyer_id=order.buyer_id, phone=phone)


@dataclass
class CustomerOrder:
    order: Order
    receiver_name: str
    receiver_phone: str
    receiver_address: str
    risk: bool
    holds: list[str]
    parcels: list[dict] = field(default_factory=list)
    tickets: list[Ticket] = field(default_factory=list)


@dataclass
class CustomerView:
    key: BuyerKey
    masked: bool
    name: str
    phone: str
    buyer_id: str
    order_count: int
    totals: list[tuple[str, Decimal]]  # (currency, paid) of the orders not cancelled
    first_order_at: datetime | None
    last_order_at: datetime | None
    vip_tier: str
    orders: list[CustomerOrder]
    held: list[CustomerOrder]
    tickets: list[Ticket]
    notes: list[CustomerNote]


def _summary(key: BuyerKey) -> dict:
    rows = (Order.objects.filter(key.orders_q()).order_by().values("currency")
            .annotate(n=Count("id"), paid=Sum("paid_amount", filter=~Q(status=OrderStatus.CANCELLED)),
                      first=Min("placed_at"), last=Max("placed_at"), top=Max("priority")))
    rows = list(rows)
    return {
        "count": sum(r["n"] for r in rows),
        "totals": sorted((r["currency"], r["paid"] or Decimal("0")) for r in rows),
        "first": min((r["first"] for r in rows), default=None),
        "last": max((r["last"] for r in rows), default=None),
        "top": max((r["top"] for r in rows), default=Priority.NORMAL),
    }


def _parcels(order_ids: list[int]) -> dict[int, list[dict]]:
    """Each order's parcels with their latest tracking checkpoints: two queries (lines with parcels, events)."""
    lines = (ShipmentLine.objects.filter(order_id__in=order_ids).order_by("shipment_id")
             .values_list("order_id", "shipment_id").distinct())
    by_order = defaultdict(list)
    for order_id, shipment_id in lines:
        by_order[order_id].append(shipment_id)
    shipment_ids = {s for ids in by_order.values() for s in ids}
    events = Prefetch("tracking_events", queryset=TrackingEvent.objects.order_by("-occurred_at", "-id"),
                      to_attr="timeline")
    shipments = {s.pk: s for s in Shipment.objects.filter(pk__in=shipment_ids).select_related("carrier")
                 .defer("label_data", "carrier__config").prefetch_related(events)}
    return {order_id: [{"shipment": shipments[s], "timeline": shipments[s].timeline[:TRACKING_SHOWN]}
                       for s in ids if s in shipments] for order_id, ids in by_order.items()}


def customer_view(*, key: BuyerKey, user) -> CustomerView:
    """Everything the desk shows about one buyer, in six queries whatever their history: the summary
    (one GROUP BY), the newest orders, their parcels and tracking (two), tickets, notes."""
    pii = can_view_pii(user)
    summary = _summary(key)
    orders = list(Order.objects.filter(key.orders_q()).select_related("store")
                  .order_by("-placed_at", "-id")[:ORDERS_SHOWN])
    ids = [o.pk for o in orders]
    parcels = _parcels(ids)
    tickets = list(Ticket.objects.filter(order_id__in=ids).select_related("order").order_by("-created_at", "-id"))
    tickets_by_order = defaultdict(list)
    for ticket in tickets:
        tickets_by_order[ticket.order_id].append(ticket)
    hold_labels = dict(HoldReason.choices)
    rows = []
    for order in orders:
        rows.append(CustomerOrder(
            order=order,
            receiver_name=order.receiver_name if pii else mask_name(order.receiver_name),
            receiver_phone=order.receiver_phone if pii else mask_phone(order.receiver_phone),
            receiver_address=order.full_address if pii else " ".join(
                p for p in [order.receiver_province, order.receiver_city, order.receiver_district,
                            mask_address(order.receiver_address)] if p),
            risk=HoldReason.RISK in order.hold_reasons,
            holds=[str(hold_labels.get(r, r)) for r in order.hold_reasons],
            parcels=parcels.get(order.pk, []),
            tickets=tickets_by_order.get(order.pk, []),
        ))
    notes = list(CustomerNote.objects.filter(key.notes_q()).select_related("author", "store")[:100])
    newest = orders[0] if orders else None
    name = (newest.buyer_name or newest.receiver_name) if newest else ""
    return CustomerView(
        key=key, masked=not pii,
        name=name if pii else mask_name(name),
        phone=key.phone if pii else mask_phone(key.phone),
        buyer_id=key.buyer_id if pii else mask_name(key.buyer_id),
        order_count=summary["count"], totals=summary["totals"],
        first_order_at=summary["first"], last_order_at=summary["last"],
        # No tier is stored for a buyer: the tier is the highest priority any of their orders carries.
        vip_tier=str(Priority(summary["top"]).label),
        orders=rows, held=[r for r in rows if r.order.status == OrderStatus.HELD or r.holds],
        tickets=tickets, notes=notes,
    )
