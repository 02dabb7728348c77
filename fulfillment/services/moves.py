"""Moving parcels: picking, exceptions, the kanban's move, shipping (stock, push-back, notice), delivery, cancel."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from fulfillment import events
from fulfillment.exceptions import MoveRefused, RoutingInvalid, ShipmentNotFound
from fulfillment.models import (
    OPEN_SHIPMENT_STATES,
    CarrierKind,
    Shipment,
    ShipmentLine,
    ShipmentStatus,
)
from fulfillment.services.building import _refresh_summary
from fulfillment.services.common import _apply, _lock_shipment_with_orders, _require_workable_orders
from fulfillment.services.packing import shipment_pack
from inventory import services as stock
from inventory.models import Reservation, ReservationStatus
from oms.exceptions import ValidationFailed
from oms.locks import lock_many, lock_one
from orders.models import OrderStatus

SS = ShipmentStatus
# Shipment.exception_reason's length.
EXCEPTION_REASON_MAX = 300


# --- Moves ----------------------------------------------------------------------------------------

def shipment_start_picking(*, shipment_id: int, actor=None, actor_label: str = "system") -> Shipment:
    """Picking starts: the shipment's ready orders go into fulfilment with it."""
    from orders.services import order_start_fulfilment

    with transaction.atomic():
        shipment, orders = _lock_shipment_with_orders(shipment_id)
        _require_workable_orders(shipment, orders)
        shipment.picked_at = timezone.now()
        _apply(shipment, "start_picking", actor=actor, actor_label=actor_label, extra_fields=("picked_at",))
        for order in orders:
            if order.status == OrderStatus.READY:
                order_start_fulfilment(order_id=order.pk, actor=actor, actor_label=actor_label,
                                       reason=_("Parcel %(number)s is being picked.") % {"number": shipment.number})
        return shipment


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


def shipment_move(*, shipment_id: int, to_status: str, actor=None, reason: str = "") -> Shipment:
    """A kanban move: run the one service that takes the shipment to ``to_status``, or refuse with why."""
    shipment = Shipment.objects.filter(pk=shipment_id).first()
    if shipment is None:
        raise ShipmentNotFound(_("Shipment %(id)s does not exist.") % {"id": shipment_id})
    here = shipment.status
    if to_status == here:
        return shipment
    if to_status == SS.EXCEPTION:
        # No made-up reason: an exception without one is refused (reason_required), nothing changes.
        return shipment_raise_exception(shipment_id=shipment_id, actor=actor, reason=reason)
    moves = {
        (SS.TO_PICK, SS.PICKING): lambda: shipment_start_picking(shipment_id=shipment_id, actor=actor),
        (SS.PICKING, SS.TO_PICK): lambda: shipment_unpick(shipment_id=shipment_id, actor=actor),
        (SS.PICKING, SS.PACKED): lambda: shipment_pack(shipment_id=shipment_id, actor=actor),
        (SS.PACKED, SS.SHIPPED): lambda: shipment_ship(shipment_id=shipment_id, actor=actor),
        (SS.SHIPPED, SS.DELIVERED): lambda: shipment_deliver(shipment_id=shipment_id, actor=actor),
    }
    if here == SS.EXCEPTION:
        # A parcel already handed over goes back in transit; any other goes back to be picked again.
        back_to = SS.SHIPPED if shipment.status_before_exception == SS.SHIPPED else SS.TO_PICK
        moves[(SS.EXCEPTION, back_to)] = lambda: shipment_resolve(shipment_id=shipment_id, actor=actor)
    move = moves.get((here, to_status))
    if move is None:
        raise MoveRefused(_("A parcel cannot go from “%(from)s” to “%(to)s”.") % {
            "from": SS(here).label, "to": SS(to_status).label if to_status in SS.values else to_status},
            data={"status": here, "to": to_status})
    return move()


# --- Shipping and delivery ------------------------------------------------------------------------

def shipment_set_tracking_number(*, shipment_id: int, tracking_number: str, actor=None) -> Shipment:
    """A number scanned or typed by hand (manual carriers, or a label printed elsewhere)."""
    from fulfillment.carriers.formatting import normalize_tracking_number

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


def shipment_ship(*, shipment_id: int, actor=None, tracking_number: str = "") -> Shipment:
    """Hand the parcel to the carrier: stock leaves the pool, the platforms and the buyer are told (after commit)."""
    from connectors.pushback import shipment_push_enqueue
    from fulfillment.notifications import notification_queue_shipped
    from fulfillment.tracking import shipment_request_waybill
    from orders import events as order_events
    from orders.services import order_ship, order_ship_partially

    if tracking_number:
        shipment_set_tracking_number(shipment_id=shipment_id, tracking_number=tracking_number, actor=actor)
    current = Shipment.objects.select_related("carrier").get(pk=shipment_id)
    if current.status == SS.PACKED and not current.tracking_number:
        if current.carrier is None or current.carrier.kind == CarrierKind.MANUAL:
            raise MoveRefused(_("Parcel %(number)s has no tracking number: scan or type it first.") % {
                "number": current.number}, code="tracking_required")
        shipment_request_waybill(shipment_id=shipment_id)  # network: outside any transaction
    with transaction.atomic():
        shipment, orders = _lock_shipment_with_orders(shipment_id)
        _require_workable_orders(shipment, orders)
        shipment.shipped_at = timezone.now()
        _apply(shipment, "ship", actor=actor, extra_fields=("shipped_at",),
               refusal=_("Parcel %(number)s has no tracking number yet.") % {"number": shipment.number})
        lines = list(shipment.lines.select_related("order_line"))
        # One pass over the stock rows for every order in the parcel (a merged parcel too).
        shipped_units = stock.stock_ship_reservations(reservation_ids=[line.reservation_id for line in lines],
                                                      reference=f"shipment:{shipment.number}")
        for order in orders:
            mine = [line for line in lines if line.order_id == order.pk]
            if shipped_units.get(order.pk):
                order_events.event_order_stock_shipped(order=order, units=shipped_units[order.pk])
            still_reserved = Reservation.objects.filter(order=order, status=ReservationStatus.ACTIVE).exists()
            reason = _("Parcel %(number)s shipped: %(tracking)s") % {"number": shipment.number,
                                                                     "tracking": shipment.tracking_number}
            # The whole order in this one parcel: a plain shipment; otherwise the platform gets the lines.
            whole_order = order.status == OrderStatus.IN_FULFILMENT and not still_reserved
            if order.status in (OrderStatus.IN_FULFILMENT, OrderStatus.PARTIALLY_SHIPPED):
                if still_reserved:
                    order_ship_partially(order_id=order.pk, actor=actor, reason=reason)
                else:
                    order_ship(order_id=order.pk, actor=actor, reason=reason)
            carrier_code = shipment.carrier.code if shipment.carrier else "OTHER"
            try:
                with transaction.atomic():
                    shipment_push_enqueue(
                        order_id=order.pk, carrier_code=carrier_code, tracking_number=shipment.tracking_number,
                        line_nos=None if whole_order else sorted({line.order_line.line_no for line in mine}),
                        shipment_key=shipment.number)
            except ValidationFailed as exc:
                # The parcel has left: a confirmation the platform cannot take (a part of an order whose
                # lines have no platform ids) must not undo that; it goes on the timeline for a person.
                order_events.event_order_shipment_push(order=order, state="failed", carrier=carrier_code,
                                                       tracking=shipment.tracking_number, line_ids=[],
                                                       error=exc.message)
            notification_queue_shipped(order=order, shipment=shipment)
        return shipment


def shipment_deliver(*, shipment_id: int, actor=None, actor_label: str = "system", delivered_at=None) -> Shipment:
    """The parcel arrived; an order whose every parcel arrived is delivered."""
    from orders.services import order_deliver

    with transaction.atomic():
        shipment, orders = _lock_shipment_with_orders(shipment_id)
        shipment.delivered_at = delivered_at or timezone.now()
        shipment.tracking_stale_since = None
        _apply(shipment, "deliver", actor=actor, actor_label=actor_label,
               extra_fields=("delivered_at", "tracking_stale_since"))
        for order in orders:
            pending = (Shipment.objects.filter(lines__order=order).exclude(pk=shipment.pk)
                       .exclude(status__in=[SS.DELIVERED, SS.CANCELLED]).exists())
            if order.status == OrderStatus.SHIPPED and not pending:
                order_deliver(order_id=order.pk, actor=actor, actor_label=actor_label,
                              reason=_("Every parcel was delivered."))
        return shipment


def shipments_cancel_for_order(*, order_id: int, reason: str, actor=None) -> int:
    """The order was cancelled or closed: its open parcels are cancelled, or, when merged with other
    orders, lose this order's lines. Called by the order services under the order's lock."""
    cancelled = 0
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
            cancelled += 1
            _void_queued_labels(shipment.pk)
            if shipment.tracking_number and shipment.carrier and shipment.carrier.kind != CarrierKind.MANUAL:
                transaction.on_commit(lambda pk=shipment.pk: _enqueue_waybill_cancel(pk))
    return cancelled


def _void_queued_labels(shipment_id: int) -> None:
    from printing.services import jobs_void_for_shipment

    jobs_void_for_shipment(shipment_id=shipment_id)


def _enqueue_waybill_cancel(shipment_id: int) -> None:
    from fulfillment.tasks import cancel_waybill_task

    cancel_waybill_task.delay(shipment_id=shipment_id)
