"""What a buyer may read of their orders and parcels: the stage in words, the timeline, the carrier's news."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import Prefetch, QuerySet
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from customer.services import BuyerScope
from fulfillment.models import ServiceLevel, Shipment, ShipmentStatus, TrackingEvent
from oms.exceptions import NotFoundError
from oms.pii import mask_name, mask_phone
from orders.models import Order, OrderStatus, Priority
from orders.services import PRIORITY_RAISABLE_STATES as EXPEDITABLE_STATES

S, SS = OrderStatus, ShipmentStatus

# The buyer's five steps; a hold, a wait for stock or a routing problem is "being prepared" to them.
STAGES = [
    ("placed", gettext_lazy("Order placed")),
    ("paid", gettext_lazy("Paid")),
    ("preparing", gettext_lazy("Being prepared")),
    ("shipped", gettext_lazy("On its way")),
    ("delivered", gettext_lazy("Delivered")),
]
STAGE_OF_STATUS = {
    S.PENDING_PAYMENT: "placed", S.PAID: "paid", S.AWAITING_STOCK: "paid", S.HELD: "paid", S.READY: "paid",
    S.IN_FULFILMENT: "preparing", S.PARTIALLY_SHIPPED: "shipped", S.SHIPPED: "shipped",
    S.DELIVERED: "delivered", S.COMPLETED: "delivered",
}
STAGE_OF_PARCEL = {SS.TO_PICK: "preparing", SS.PICKING: "preparing", SS.PACKED: "preparing", SS.SHIPPED: "shipped",
                   SS.EXCEPTION: "shipped", SS.DELIVERED: "delivered"}
# Days from hand-over to the door, by the service booked: a plain estimate, not the carrier's promise.
TRANSIT_DAYS = {ServiceLevel.NEXT_MORNING: 1, ServiceLevel.EXPRESS: 2, ServiceLevel.STANDARD: 4}


@dataclass
class Stage:
    code: str
    label: str
    step: int  # 1..5 along STAGES; 0 for a cancelled or closed order
    steps: int = len(STAGES)
    labels: list[str] = field(default_factory=lambda: [str(label) for _code, label in STAGES])


def _stage(code: str | None) -> Stage:
    if code is None:
        return Stage(code="cancelled", label=_("Cancelled"), step=0)
    index = [c for c, _label in STAGES].index(code)
    return Stage(code=code, label=str(STAGES[index][1]), step=index + 1)


def order_stage(order: Order) -> Stage:
    if order.status in (S.CANCELLED, S.CLOSED):
        return _stage(None)
    return _stage(STAGE_OF_STATUS[order.status])


def parcel_stage(shipment: Shipment) -> Stage:
    if shipment.status == SS.CANCELLED:
        return _stage(None)
    return _stage(STAGE_OF_PARCEL[shipment.status])


def _shipments_prefetch() -> Prefetch:
    return Prefetch("shipment_lines__shipment", queryset=Shipment.objects.select_related("carrier"))


def buyer_orders(*, scope: BuyerScope) -> QuerySet[Order]:
    """The buyer's orders, newest first (indexed: store+buyer, receiver phone, or the number)."""
    return scope.orders().select_related("store").order_by("-placed_at", "-pk")


def buyer_order(*, scope: BuyerScope, number: str) -> Order:
    """One of the buyer's orders; another buyer's order is exactly as missing as an unknown one."""
    order = buyer_orders(scope=scope).filter(number=number).prefetch_related("lines").first()
    if order is None:
        raise NotFoundError(_("No order matches this order number and phone."), code="order_not_found")
    return order


def order_parcels(order: Order) -> list[Shipment]:
    """The order's parcels (not cancelled ones), with their carrier checkpoints oldest first."""
    return list(Shipment.objects.filter(lines__order=order).exclude(status=SS.CANCELLED).distinct()
                .select_related("carrier").prefetch_related(
                    Prefetch("tracking_events", queryset=TrackingEvent.objects.order_by("occurred_at", "pk")))
                .order_by("pk"))


def parcel_latest_event(shipment: Shipment) -> TrackingEvent | None:
    events = list(shipment.tracking_events.all())
    return events[-1] if events else None


def parcel_estimated_delivery(shipment: Shipment) -> datetime | None:
    """Delivered: when; shipped: hand-over plus the service's usual days; not shipped yet: unknown."""
    if shipment.delivered_at:
        return shipment.delivered_at
    if shipment.shipped_at and shipment.status in (SS.SHIPPED, SS.EXCEPTION):
        return shipment.shipped_at + timedelta(days=TRANSIT_DAYS.get(shipment.service_level, 4))
    return None


def order_timeline(order: Order, parcels: list[Shipment]) -> list[dict]:
    """The buyer's timeline, oldest first: the order's own milestones and every parcel's carrier checkpoints.
    Built from dates, not from the staff event log, which holds holds, notes and reasons a buyer must not read."""
    rows = [{"at": order.placed_at, "kind": "placed", "text": _("Order placed")}]
    if order.paid_at:
        rows.append({"at": order.paid_at, "kind": "paid", "text": _("Payment received")})
    for parcel in parcels:
        if parcel.packed_at:
            rows.append({"at": parcel.packed_at, "kind": "packed",
                         "text": _("Parcel %(number)s packed") % {"number": parcel.number}})
        if parcel.shipped_at:
            rows.append({"at": parcel.shipped_at, "kind": "shipped", "text": _(
                "Parcel %(number)s handed to %(carrier)s") % {
                "number": parcel.number, "carrier": parcel.carrier.name if parcel.carrier else _("the carrier")}})
        for event in parcel.tracking_events.all():
            rows.append({"at": event.occurred_at, "kind": "carrier",
                         "text": " ".join(part for part in (event.location, event.description) if part)})
        if parcel.delivered_at and not any(e.code == "delivered" for e in parcel.tracking_events.all()):
            rows.append({"at": parcel.delivered_at, "kind": "delivered", "text": _("Delivered")})
    if order.status in (S.CANCELLED, S.CLOSED):
        rows.append({"at": order.updated_at, "kind": "cancelled", "text": _("Order cancelled")})
    return sorted(rows, key=lambda row: row["at"])


def buyer_is_vip(*, scope: BuyerScope) -> bool:
    """VIP: any of the buyer's orders carries the VIP tier (the order priority is the only tier the hub keeps)."""
    return scope.orders().filter(priority=Priority.VIP).exists()


def masked_receiver(order: Order, scope: BuyerScope | None) -> dict:
    """Name and phone masked; the phone in full only where it is the one the buyer typed."""
    phone = order.receiver_phone or ""
    shown = phone if scope is not None and scope.typed_phone(phone) and "*" not in phone else mask_phone(phone)
    return {"name": mask_name(order.receiver_name), "phone": shown, "province": order.receiver_province,
            "city": order.receiver_city}


def buyer_may_expedite(*, scope: BuyerScope, order: Order) -> bool:
    """VIP buyers may ask for an order to be hurried. No store setting allows it for everyone yet: VIP only."""
    return order.status in EXPEDITABLE_STATES and buyer_is_vip(scope=scope)
