"""Moving parcels: picking, exceptions, shipping (stock leaves), delivery, cancel.

These are the parcel's side of each move: lock, check, transition, write the parcel's rows and events,
and return what happened (the facts). What the orders, the platforms, the buyer and the printers make of
it is pipeline.shipping's, which calls these inside its own transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db import IntegrityError, transaction
from django.db.models import OuterRef, Subquery
from django.utils import timezone
from django.utils.translation import gettext as _

from fulfillment import events
from fulfillment.carriers.formatting import normalize_tracking_number
from fulfillment.exceptions import MoveRefused, RoutingInvalid
from fulfillment.models import (
    OPEN_SHIPMENT_STATES,
    CarrierKind,
    Shipment,
    ShipmentLine,
    ShipmentStatus,
)
from fulfillment.services.building import _refresh_summary
from fulfillment.services.common import _apply, _lock_shipment_with_orders, _require_workable_orders
from inventory import services as stock
from inventory.models import SKU, Reservation, ReservationStatus
from oms.exceptions import ValidationFailed
from oms.locks import lock_many, lock_one
from orders.models import Order

SS = ShipmentStatus
# Shipment.exception_reason's length.
EXCEPTION_REASON_MAX = 300


@dataclass
class ParcelMoved:
    """A parcel that moved, with its orders (locked, in ascending pk order) for the flows above."""

    shipment: Shipment
    orders: list[Order]


@dataclass
class OrderShipped:
    """One order's share of a parcel that left: the units that left stock, and what is still to ship."""

    order: Order
    units: int
    still_reserved: bool  # other units of the order are still reserved: it ships in parts
    line_nos: list[int] = field(default_factory=list)  # the order's lines in this parcel


@dataclass
class ParcelShipped:
    shipment: Shipment
    orders: list[OrderShipped]


@dataclass
class ParcelsCancelled:
    """What an order's cancel did to its parcels: the ones cancelled (their queued labels are void),
    and those of them whose carrier waybill must be cancelled too."""

    cancelled: list[int] = field(default_factory=list)
    waybills_to_cancel: list[int] = field(default_factory=list)


def shipment_needs_waybill(shipment: Shipment) -> bool:
    """A parcel whose carrier has an API and that has no tracking number yet: the carrier is asked for one."""
    return bool(shipment.carrier_id and shipment.carrier.kind != CarrierKind.MANUAL and not shipment.tracking_number)


# --- Moves ----------------------------------------------------------------------------------------

def shipment_mark_picking(*, shipment_id: int, actor=None, actor_label: str = "system") -> ParcelMoved:
    """Picking starts (the parcel's side); its ready orders go into fulfilment in pipeline.shipping."""
    with transaction.atomic():
        shipment, orders = _lock_shipment_with_orders(shipment_id)
        _require_workable_orders(shipment, orders)
        shipment.picked_at = timezone.now()
        _apply(shipment, "start_picking", actor=actor, actor_label=actor_label, extra_fields=("picked_at",))
        return ParcelMoved(shipment=shipment, orders=orders)


def shipment_unpick(*, shipment_id: int, actor=None) -> Shipment:
    with transaction.atomic():
        shipment, _orders = _lock_shipment_with_orders(shipment_id)
        ShipmentLine.objects.filter(shipment=shipment).update(verified_quantity=0)
        _apply(shipment, "unpick", actor=actor)
        return shipment


def shipment_raise_exception(*, shipment_id: int, reason: str, actor=None, actor_label: str = "system") -> Shipment:
    reason = (reason or "").strip()
    if not reason:  # bad input (400), whoever calls: the kanban, the parcel page, the shell
        raise ValidationFailed(_("Say what the problem is."), code="reason_required",
                               data={"reason": [_("Say what the problem is.")]})
    if len(reason) > EXCEPTION_REASON_MAX:  # said, not cut: the rest of what the packer wrote would be lost
        message = _("Say what is wrong in at most %(max)s characters.") % {"max": EXCEPTION_REASON_MAX}
        raise ValidationFailed(message, code="reason_too_long", data={"reason": [message]})
    with transaction.atomic():
        shipment, _orders = _lock_shipment_with_orders(shipment_id)
        shipment.exception_reason = reason
        _apply(shipment, "raise_exception", actor=actor, actor_label=actor_label, reason=reason,
               extra_fields=("exception_reason",))
        return shipment


def shipment_resolve(*, shipment_id: int, actor=None, reason: str = "") -> Shipment:
    """An exception is cleared: back to picking from scratch, or, for a parcel already handed over, in transit."""
    with transaction.atomic():
        shipment, _orders = _lock_shipment_with_orders(shipment_id)
        name = "resolve_in_transit" if shipment.status_before_exception == SS.SHIPPED else "resolve"
        if name == "resolve":
            ShipmentLine.objects.filter(shipment=shipment).update(verified_quantity=0)
        shipment.exception_reason = ""
        _apply(shipment, name, actor=actor, reason=reason, extra_fields=("exception_reason",))
        return shipment


# --- Shipping and delivery ------------------------------------------------------------------------

def shipment_set_tracking_number(*, shipment_id: int, tracking_number: str, actor=None) -> Shipment:
    """A number scanned or typed by hand (manual carriers, or a label printed elsewhere)."""
    number = normalize_tracking_number(tracking_number or "")
    if not 6 <= len(number) <= 40 or not (number.isascii() and number.isalnum()):  # a barcode takes ASCII only
        raise RoutingInvalid(_("A tracking number has 6 to 40 letters and digits."), code="tracking_invalid",
                             data={"tracking_number": [_("Not a tracking number.")]})
    with transaction.atomic():
        shipment = lock_one(Shipment, shipment_id)
        if shipment.status not in (SS.TO_PICK, SS.PICKING, SS.PACKED):
            raise MoveRefused(_("The tracking number can only be set before the parcel ships."))
        if Shipment.objects.filter(carrier_id=shipment.carrier_id, tracking_number=number).exclude(
                pk=shipment.pk).exists():
            raise RoutingInvalid(_("Tracking number %(number)s is already used by another parcel.") % {
                "number": number}, code="tracking_duplicate")
        shipment.tracking_number = number
        try:
            with transaction.atomic():  # a concurrent twin got the number first: a clear refusal
                shipment.save(update_fields=["tracking_number", "updated_at"])
        except IntegrityError:
            raise RoutingInvalid(_("Tracking number %(number)s is already used by another parcel.") % {
                "number": number}, code="tracking_duplicate") from None
        events.event_shipment_waybill(shipment=shipment, tracking_number=number, source="manual", actor=actor)
        return shipment


def shipment_check_shippable(*, shipment_id: int) -> Shipment:
    """Refuse to ship a packed parcel of a carrier without an API that has no number yet; returns the parcel
    (with its carrier) so the caller can ask the carrier for a waybill first, outside any transaction."""
    shipment = Shipment.objects.select_related("carrier").get(pk=shipment_id)
    if (shipment.status == SS.PACKED and not shipment.tracking_number
            and (shipment.carrier is None or shipment.carrier.kind == CarrierKind.MANUAL)):
        raise MoveRefused(_("Parcel %(number)s has no tracking number: scan or type it first.") % {
            "number": shipment.number}, code="tracking_required")
    return shipment


def shipment_mark_shipped(*, shipment_id: int, actor=None) -> ParcelShipped:
    """The parcel is handed to the carrier: the transition and its stock leaving the pool (the parcel's
    reservations, of every order in a merged parcel, in one pass). Call inside the caller's transaction."""
    with transaction.atomic():
        shipment, orders = _lock_shipment_with_orders(shipment_id)
        _require_workable_orders(shipment, orders)
        shipment.shipped_at = timezone.now()
        _apply(shipment, "ship", actor=actor, extra_fields=("shipped_at",),
               refusal=_("Parcel %(number)s has no tracking number yet.") % {"number": shipment.number})
        shipment_lines_record_unit_cost(shipment_ids=[shipment.pk])
        lines = list(shipment.lines.select_related("order_line"))
        shipped_units = stock.stock_ship_reservations(reservation_ids=[line.reservation_id for line in lines],
                                                      reference=f"shipment:{shipment.number}")
        still_reserved = set(Reservation.objects.filter(order__in=orders, status=ReservationStatus.ACTIVE)
                             .values_list("order_id", flat=True))
        return ParcelShipped(shipment=shipment, orders=[
            OrderShipped(order=order, units=shipped_units.get(order.pk, 0), still_reserved=order.pk in still_reserved,
                         line_nos=sorted({line.order_line.line_no for line in lines if line.order_id == order.pk}))
            for order in orders])


def shipment_lines_record_unit_cost(*, shipment_ids: list[int]) -> int:
    """Record on the lines of parcels that ship the SKU's unit cost as it is now, for the profit of their orders
    (finance.profit); one UPDATE for any number of parcels and lines. A cost already recorded is kept: a parcel
    shipped again after an exception keeps the cost of its first hand-over. Returns the lines changed."""
    cost_now = SKU.objects.filter(pk=OuterRef("sku_id")).values("unit_cost")[:1]
    return (ShipmentLine.objects.filter(shipment_id__in=shipment_ids, unit_cost__isnull=True)
            .update(unit_cost=Subquery(cost_now)))


def shipment_mark_delivered(*, shipment_id: int, actor=None, actor_label: str = "system",
                            delivered_at=None) -> ParcelMoved:
    """The parcel arrived. Returns it with the orders whose every parcel has now arrived (or was cancelled)."""
    with transaction.atomic():
        shipment, orders = _lock_shipment_with_orders(shipment_id)
        shipment.delivered_at = delivered_at or timezone.now()
        shipment.tracking_stale_since = None
        _apply(shipment, "deliver", actor=actor, actor_label=actor_label,
               extra_fields=("delivered_at", "tracking_stale_since"))
        arrived = [order for order in orders
                   if not Shipment.objects.filter(lines__order=order).exclude(pk=shipment.pk)
                   .exclude(status__in=[SS.DELIVERED, SS.CANCELLED]).exists()]
        return ParcelMoved(shipment=shipment, orders=arrived)


def shipments_cancel_of_order(*, order_id: int, reason: str, actor=None) -> ParcelsCancelled:
    """The order was cancelled or closed: its open parcels are cancelled, or, when merged with other
    orders, lose this order's lines. Called under the order's lock (orders, then parcels)."""
    result = ParcelsCancelled()
    with transaction.atomic():
        shipment_ids = sorted(set(ShipmentLine.objects.filter(order_id=order_id,
                                                              shipment__status__in=OPEN_SHIPMENT_STATES)
                                  .values_list("shipment_id", flat=True)))
        for shipment in lock_many(Shipment, shipment_ids):
            if shipment.status == SS.EXCEPTION and shipment.status_before_exception == SS.SHIPPED:
                continue  # it left the warehouse: it is in transit (or lost), not something to cancel
            others = shipment.lines.exclude(order_id=order_id).exists()
            if others:
                shipment.lines.filter(order_id=order_id).delete()
                ShipmentLine.objects.filter(shipment=shipment).update(verified_quantity=0)
                _refresh_summary(shipment)
                left = _("An order left the parcel: %(reason)s") % {"reason": reason}
                events.event_shipment_unmerged(shipment=shipment, new_shipments=[], actor=actor, reason=left)
                if shipment.status == SS.PACKED:
                    # Its goods are still in the closed box: open it and check before it may ship.
                    shipment.exception_reason = _("An order left the packed parcel: unpack and scan again.")[:300]
                    _apply(shipment, "raise_exception", actor=actor, reason=shipment.exception_reason,
                           extra_fields=("exception_reason",))
                continue
            _apply(shipment, "cancel", actor=actor, reason=reason)
            result.cancelled.append(shipment.pk)
            if shipment.tracking_number and shipment.carrier and shipment.carrier.kind != CarrierKind.MANUAL:
                result.waybills_to_cancel.append(shipment.pk)
    return result


def shipments_expedite_of_order(*, order_id: int, due_at, priority: int) -> list[Shipment]:
    """Pull the order's parcels still in the warehouse up their kanban lane: the board sorts by ship-by time
    (fulfillment.kanban), so the ship-by becomes ``due_at`` (never later than it was) and the card shows the
    raised priority. Called under the order's lock (orders, then parcels); returns the parcels changed."""
    changed = []
    with transaction.atomic():
        shipment_ids = sorted(set(ShipmentLine.objects.filter(
            order_id=order_id, shipment__status__in=[SS.TO_PICK, SS.PICKING, SS.PACKED])
            .values_list("shipment_id", flat=True)))
        for shipment in lock_many(Shipment, shipment_ids):
            if shipment.sla_due_at <= due_at and shipment.priority >= priority:
                continue
            shipment.sla_due_at = min(shipment.sla_due_at, due_at)
            shipment.priority = max(shipment.priority, priority)
            shipment.save(update_fields=["sla_due_at", "priority", "updated_at"])
            changed.append(shipment)
    return changed
