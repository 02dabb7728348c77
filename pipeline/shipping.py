"""Shipping as the order sees it: picking, packing, shipping, delivery and cancel of parcels, with what each
move means for the orders, the platforms, the buyer and the printers.

Each flow runs the parcel's step in fulfillment.services (which locks, transitions and returns facts) and
the rest in the same transaction: the order transitions (orders.services), the platform confirmation
(connectors), the buyer's notice and the label voids; carrier calls and sends are scheduled after commit.
Lock order as everywhere: the parcel's orders, then the parcel, then stock rows.
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils.translation import gettext as _

from aftersales.models import Ticket, TicketStatus
from aftersales.services import ticket_transition
from connectors.models import PushStatus, ShipmentPush
from connectors.pushback import shipment_push_enqueue
from fulfillment import services as parcels
from fulfillment import tracking
from fulfillment.exceptions import MoveRefused, ShipmentNotFound
from fulfillment.models import NotificationStatus, Shipment, ShipmentStatus
from fulfillment.notifications import notification_queue_shipped
from fulfillment.services import ParcelMoved, ParcelShipped, WaveStarted
from oms.effects import task_after_commit
from oms.exceptions import ConflictError, DomainError, ValidationFailed
from orders import events as order_events
from orders.models import OrderStatus
from orders.services import order_deliver, order_mark_shipped, order_ship_partially, order_start_fulfilment
from printing.services import jobs_void_for_shipment

logger = logging.getLogger(__name__)
SS = ShipmentStatus
REQUEST_WAYBILL_TASK = "fulfillment.tasks.request_waybill_task"
CANCEL_WAYBILL_TASK = "fulfillment.tasks.cancel_waybill_task"
SEND_NOTIFICATION_TASK = "fulfillment.tasks.send_notification_task"
PUSH_TASK = "connectors.tasks.push_shipment_task"


# --- Telling the platform --------------------------------------------------------------------------

def shipment_push_queue(*, order_id: int, carrier_code: str, tracking_number: str,
                        line_nos: list[int] | None = None, shipment_key: str = "") -> ShipmentPush | None:
    """Queue the confirmation of one shipment (outbox row, same transaction) and send it after commit."""
    push = shipment_push_enqueue(order_id=order_id, carrier_code=carrier_code, tracking_number=tracking_number,
                                 line_nos=line_nos, shipment_key=shipment_key)
    if push is not None and push.status == PushStatus.PENDING:
        task_after_commit(PUSH_TASK, push_id=push.pk)
    return push


# --- Picking --------------------------------------------------------------------------------------

def _orders_start_fulfilment(moved: list[ParcelMoved], *, actor, actor_label: str) -> None:
    """The ready orders of parcels now being picked go into fulfilment (once each, named after the first
    parcel that took them there)."""
    seen: set[int] = set()
    for move in moved:
        for order in move.orders:
            if order.pk in seen:
                continue
            seen.add(order.pk)
            if order.status == OrderStatus.READY:
                order_start_fulfilment(order_id=order.pk, actor=actor, actor_label=actor_label,
                                       reason=_("Parcel %(number)s is being picked.") % {
                                           "number": move.shipment.number})


def shipment_start_picking(*, shipment_id: int, actor=None, actor_label: str = "system") -> Shipment:
    """Picking starts: the shipment's ready orders go into fulfilment with it."""
    with transaction.atomic():
        moved = parcels.shipment_mark_picking(shipment_id=shipment_id, actor=actor, actor_label=actor_label)
        _orders_start_fulfilment([moved], actor=actor, actor_label=actor_label)
    return moved.shipment


def wave_start(*, wave_id: int, actor=None) -> WaveStarted:
    """Print-and-pick a wave: its pickable parcels move to picking and their orders into fulfilment."""
    with transaction.atomic():
        started = parcels.wave_mark_started(wave_id=wave_id, actor=actor)
        _orders_start_fulfilment(started.picking, actor=actor, actor_label="system")
    return started


# --- Packing and waybills -------------------------------------------------------------------------

def shipment_pack(*, shipment_id: int, actor=None, weight_grams: int | None = None) -> Shipment:
    """Close the parcel; a carrier with an API is asked for the waybill after commit (ahead of shipping)."""
    # Not wrapped in a transaction of its own: a weight mismatch is recorded in its own transaction before
    # the refusal, which an enclosing atomic block would roll back with the refusal.
    shipment = parcels.shipment_mark_packed(shipment_id=shipment_id, actor=actor, weight_grams=weight_grams)
    if parcels.shipment_needs_waybill(shipment):
        task_after_commit(REQUEST_WAYBILL_TASK, shipment_id=shipment.pk)
    return shipment


def shipment_request_waybill(*, shipment_id: int) -> Shipment:
    """Ask the carrier for the parcel's waybill (network, outside any transaction); a parcel cancelled while
    the carrier was asked keeps the waybill on record, and it is voided at the carrier after commit."""
    shipment = tracking.shipment_request_waybill(shipment_id=shipment_id)
    if tracking.waybill_needs_void(shipment):
        task_after_commit(CANCEL_WAYBILL_TASK, shipment_id=shipment.pk)
    return shipment


# --- Shipping and delivery ------------------------------------------------------------------------

def shipment_ship(*, shipment_id: int, actor=None, tracking_number: str = "") -> Shipment:
    """Hand the parcel to the carrier: stock leaves the pool, the orders ship (wholly or in part), the
    platforms and the buyer are told (after commit)."""
    if tracking_number:
        parcels.shipment_set_tracking_number(shipment_id=shipment_id, tracking_number=tracking_number, actor=actor)
    current = parcels.shipment_check_shippable(shipment_id=shipment_id)
    if current.status == SS.PACKED and not current.tracking_number:
        shipment_request_waybill(shipment_id=shipment_id)  # network: outside any transaction
    with transaction.atomic():
        shipped = parcels.shipment_mark_shipped(shipment_id=shipment_id, actor=actor)
        _orders_ship(shipped, actor=actor)
    return shipped.shipment


def _orders_ship(shipped: ParcelShipped, *, actor) -> None:
    """Each order of a parcel that left: its stock event, its ship transition, the platform confirmation
    and the buyer's notice. ``order.status`` is the status the parcel found (before this flow)."""
    shipment = shipped.shipment
    carrier_code = shipment.carrier.code if shipment.carrier else "OTHER"
    for part in shipped.orders:
        order = part.order
        if part.units:
            order_events.event_order_stock_shipped(order=order, units=part.units)
        reason = _("Parcel %(number)s shipped: %(tracking)s") % {"number": shipment.number,
                                                                 "tracking": shipment.tracking_number}
        # The whole order in this one parcel: a plain shipment; otherwise the platform gets the lines.
        whole_order = order.status == OrderStatus.IN_FULFILMENT and not part.still_reserved
        if order.status in (OrderStatus.IN_FULFILMENT, OrderStatus.PARTIALLY_SHIPPED):
            if part.still_reserved:
                order_ship_partially(order_id=order.pk, actor=actor, reason=reason)
            else:
                # Only the order's transition: the parcel already shipped its stock, and no parcel is left open.
                order_mark_shipped(order_id=order.pk, actor=actor, reason=reason)
                if order.replaces_id:
                    _tickets_replacement_shipped(order_id=order.pk, reason=reason)
        try:
            with transaction.atomic():
                shipment_push_queue(order_id=order.pk, carrier_code=carrier_code,
                                    tracking_number=shipment.tracking_number,
                                    line_nos=None if whole_order else part.line_nos, shipment_key=shipment.number)
        except ValidationFailed as exc:
            # The parcel has left: a confirmation the platform cannot take (a part of an order whose
            # lines have no platform ids) must not undo that; it goes on the timeline for a person.
            order_events.event_order_shipment_push(order=order, state="failed", carrier=carrier_code,
                                                   tracking=shipment.tracking_number, line_ids=[],
                                                   error=exc.message)
        notification, created = notification_queue_shipped(order=order, shipment=shipment)
        if created and notification.status == NotificationStatus.QUEUED:
            task_after_commit(SEND_NOTIFICATION_TASK, notification_id=notification.pk)


def _tickets_replacement_shipped(*, order_id: int, reason: str) -> None:
    """A replacement order left in full: the after-sales tickets it answers end in "replacement shipped"."""
    for ticket_id in (Ticket.objects.filter(replacement_order_id=order_id,
                                            status__in=[TicketStatus.APPROVED, TicketStatus.GRADED])
                      .order_by("pk").values_list("pk", flat=True)):
        try:
            # The system moves the ticket (the parcel did); the packer is not the ticket's first response.
            ticket_transition(ticket_id=ticket_id, name="ship_replacement", actor_label="system", reason=reason)
        except ConflictError as exc:
            # Closed by a person a moment ago: the parcel has left all the same, so it is not undone for this.
            logger.warning("ticket %s not moved to replacement shipped: %s", ticket_id, exc.message)


def shipment_deliver(*, shipment_id: int, actor=None, actor_label: str = "system", delivered_at=None) -> Shipment:
    """The parcel arrived; an order whose every parcel arrived is delivered."""
    with transaction.atomic():
        arrived = parcels.shipment_mark_delivered(shipment_id=shipment_id, actor=actor, actor_label=actor_label,
                                                  delivered_at=delivered_at)
        for order in arrived.orders:
            if order.status == OrderStatus.SHIPPED:
                order_deliver(order_id=order.pk, actor=actor, actor_label=actor_label,
                              reason=_("Every parcel was delivered."))
    return arrived.shipment


def shipments_pull_tracking(*, now=None, shipment_ids: list[int] | None = None) -> dict:
    """Ask the carriers for news of parcels in transit; deliver or flag what the news says."""
    stats, news = tracking.shipments_query_tracking(now=now, shipment_ids=shipment_ids)
    for item in news:
        try:
            if item.delivered_at is not None:
                shipment_deliver(shipment_id=item.shipment_id, actor_label=f"carrier:{item.carrier_code}",
                                 delivered_at=item.delivered_at)
                stats["delivered"] += 1
            else:
                parcels.shipment_raise_exception(shipment_id=item.shipment_id,
                                                 actor_label=f"carrier:{item.carrier_code}", reason=item.problem)
                stats["exceptions"] += 1
        except DomainError as exc:  # this parcel changed meanwhile; the others go on
            stats["errors"] += 1
            logger.warning("tracking of %s not applied: %s", item.number, exc.message)
    return stats


# --- The kanban's move ----------------------------------------------------------------------------

def shipment_move(*, shipment_id: int, to_status: str, actor=None, reason: str = "") -> Shipment:
    """A kanban move: run the one flow that takes the shipment to ``to_status``, or refuse with why."""
    shipment = Shipment.objects.filter(pk=shipment_id).first()
    if shipment is None:
        raise ShipmentNotFound(_("Shipment %(id)s does not exist.") % {"id": shipment_id})
    here = shipment.status
    if to_status == here:
        return shipment
    if to_status == SS.EXCEPTION:
        # No made-up reason: an exception without one is refused (reason_required), nothing changes.
        return parcels.shipment_raise_exception(shipment_id=shipment_id, actor=actor, reason=reason)
    moves = {
        (SS.TO_PICK, SS.PICKING): lambda: shipment_start_picking(shipment_id=shipment_id, actor=actor),
        (SS.PICKING, SS.TO_PICK): lambda: parcels.shipment_unpick(shipment_id=shipment_id, actor=actor),
        (SS.PICKING, SS.PACKED): lambda: shipment_pack(shipment_id=shipment_id, actor=actor),
        (SS.PACKED, SS.SHIPPED): lambda: shipment_ship(shipment_id=shipment_id, actor=actor),
        (SS.SHIPPED, SS.DELIVERED): lambda: shipment_deliver(shipment_id=shipment_id, actor=actor),
    }
    if here == SS.EXCEPTION:
        # A parcel already handed over goes back in transit; any other goes back to be picked again.
        back_to = SS.SHIPPED if shipment.status_before_exception == SS.SHIPPED else SS.TO_PICK
        moves[(SS.EXCEPTION, back_to)] = lambda: parcels.shipment_resolve(shipment_id=shipment_id, actor=actor)
    move = moves.get((here, to_status))
    if move is None:
        raise MoveRefused(_("A parcel cannot go from “%(from)s” to “%(to)s”.") % {
            "from": SS(here).label, "to": SS(to_status).label if to_status in SS.values else to_status},
            data={"status": here, "to": to_status})
    return move()


# --- Cancel ---------------------------------------------------------------------------------------

def shipments_cancel_for_order(*, order_id: int, reason: str, actor=None) -> int:
    """The order was cancelled or closed: its open parcels are cancelled (their queued labels will not
    print, their carrier waybills are voided after commit) or, when merged with other orders, lose this
    order's lines. Called by the order flows under the order's lock. Returns the parcels cancelled."""
    with transaction.atomic():
        result = parcels.shipments_cancel_of_order(order_id=order_id, reason=reason, actor=actor)
        for shipment_id in result.cancelled:
            jobs_void_for_shipment(shipment_id=shipment_id)
        for shipment_id in result.waybills_to_cancel:
            task_after_commit(CANCEL_WAYBILL_TASK, shipment_id=shipment_id)
    return len(result.cancelled)
