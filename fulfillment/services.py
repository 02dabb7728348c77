"""Fulfilment operations: build shipments from reservations, move them through their states, merge and
split them, override routing, run waves, verify packing by scan, and ship (stock, push-back, notice).

Lock order everywhere: the orders of a shipment (ascending pk), then the shipment. Order services
that reach into fulfilment (cancel, close) already hold their order's lock and then lock shipments,
which keeps the same order. Carrier calls (network) never happen inside a transaction.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import timedelta
from typing import NoReturn

from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _
from django_fsm import can_proceed

from fulfillment import events, routing
from fulfillment.exceptions import MoveRefused, PackingRefused, RoutingInvalid, ScanRefused, ShipmentNotFound
from fulfillment.models import (
    OPEN_SHIPMENT_STATES,
    Carrier,
    CarrierKind,
    CarrierRule,
    DecisionKind,
    RoutingDecision,
    ServiceLevel,
    Shipment,
    ShipmentLine,
    ShipmentStatus,
    WarehouseRule,
    Wave,
)
from inventory import services as stock
from inventory.models import Reservation, ReservationStatus, Warehouse
from oms.exceptions import ConflictError, ValidationFailed
from oms.locks import lock_many, lock_one
from oms.sequences import next_sequence_value
from orders.models import Order, OrderStatus

SS = ShipmentStatus
# A weighed parcel may differ from the sum of its SKU weights by this much (packing material).
WEIGHT_TOLERANCE_GRAMS = 50
WEIGHT_TOLERANCE_RATIO = 0.10


# --- Reading and locking --------------------------------------------------------------------------

def _shipment_order_ids(shipment_id: int) -> set[int]:
    return set(ShipmentLine.objects.filter(shipment_id=shipment_id).values_list("order_id", flat=True))


def _lock_shipment_with_orders(shipment_id: int) -> tuple[Shipment, list[Order]]:
    """Lock the shipment's orders, then the shipment (the project's lock order). Call inside atomic()."""
    for _attempt in range(3):
        order_ids = _shipment_order_ids(shipment_id)
        orders = lock_many(Order, order_ids)
        try:
            shipment = lock_one(Shipment, shipment_id)
        except Shipment.DoesNotExist:
            raise ShipmentNotFound(_("Shipment %(id)s does not exist.") % {"id": shipment_id}) from None
        if _shipment_order_ids(shipment_id) <= order_ids:  # a merge may have added orders meanwhile
            return shipment, orders
    raise ConflictError(_("The shipment changed while it was being updated; try again."), code="retry")


def _transition_label(name: str) -> str:
    method = getattr(Shipment, name)
    meta = method._django_fsm
    return str(next(iter(meta.transitions.values())).custom.get("label", name))


def _apply(shipment: Shipment, name: str, *, actor, actor_label: str = "system", reason: str = "",
           extra_fields: tuple[str, ...] = (), data: dict | None = None, refusal: str = "") -> None:
    """Run the FSM transition on a locked shipment, save it and write its event."""
    method = getattr(shipment, name)
    if not can_proceed(method, check_conditions=False):
        raise MoveRefused(_("Shipment %(number)s cannot “%(action)s” while it is %(status)s.") % {
            "number": shipment.number, "action": _transition_label(name), "status": shipment.get_status_display()},
            data={"status": shipment.status, "transition": name})
    if not can_proceed(method):
        raise MoveRefused(refusal or _("Shipment %(number)s is not ready to “%(action)s”.") % {
            "number": shipment.number, "action": _transition_label(name)}, data={"status": shipment.status})
    from_status = shipment.status
    method()
    shipment.save(update_fields=["status", "status_before_exception", "updated_at", *extra_fields])
    events.event_shipment_status_changed(shipment=shipment, from_status=from_status, transition=name, actor=actor,
                                         actor_label=actor_label, reason=reason, data=data)


# --- Building shipments ---------------------------------------------------------------------------

def receiver_key(order: Order) -> str:
    """Same store, buyer and address give the same key (the merge test)."""
    parts = [order.store_id, order.buyer_id, order.receiver_name, order.receiver_phone, order.receiver_country,
             order.receiver_province, order.receiver_city, order.receiver_district, order.receiver_address,
             json.dumps(order.receiver_ciphertext, sort_keys=True)]
    normalized = "|".join(" ".join(str(p).split()).lower() for p in parts)
    return hashlib.sha256(normalized.encode()).hexdigest()


def _ship_by(order: Order):
    return (order.paid_at or order.placed_at) + timedelta(hours=order.store.ship_within_hours)


def shipment_number_next() -> str:
    return f"P{next_sequence_value('shipment_number')}"


def _refresh_summary(shipment: Shipment) -> None:
    """Recompute what the kanban card shows from the shipment's lines and orders."""
    lines = list(shipment.lines.select_related("order", "order__store", "sku"))
    orders = {line.order_id: line.order for line in lines}
    if orders:
        ordered = sorted(orders.values(), key=lambda o: o.number)
        shipment.order_numbers = ", ".join(o.number for o in ordered)[:300]
        shipment.priority = max(o.priority for o in ordered)
        shipment.amount = sum((o.total_amount for o in ordered), start=ordered[0].total_amount * 0)
        shipment.sla_due_at = min(_ship_by(o) for o in ordered)
    shipment.expected_weight_grams = sum(line.sku.weight_grams * line.quantity for line in lines)
    shipment.save(update_fields=["order_numbers", "priority", "amount", "sla_due_at", "expected_weight_grams",
                                 "updated_at"])


def _route_carrier(shipment: Shipment, order: Order, facts: routing.OrderFacts) -> None:
    route = routing.carrier_route(facts, warehouse_code=shipment.warehouse.code,
                                  weight_grams=shipment.expected_weight_grams or facts.weight_grams)
    shipment.carrier = route.carrier
    shipment.carrier_cost = route.cost
    shipment.service_level = route.service
    shipment.save(update_fields=["carrier", "carrier_cost", "service_level", "updated_at"])
    RoutingDecision.objects.create(order=order, shipment=shipment, kind=DecisionKind.CARRIER, carrier_rule=route.rule,
                                   rule_name=route.rule.name if route.rule else "", carrier=route.carrier,
                                   service=route.service, cost=route.cost, reason=route.reason[:500])
    events.event_shipment_routed(shipment=shipment, reason=route.reason,
                                 carrier=route.carrier.code if route.carrier else "", service=route.service,
                                 rule=route.rule.name if route.rule else "")


def _merge_target(*, order: Order, warehouse_id: int, key: str) -> Shipment | None:
    """An open, not yet picked shipment of the same buyer and address in the warehouse, if one is free.

    skip_locked: a candidate someone else is changing right now is skipped rather than waited for,
    so building a shipment never waits on (or deadlocks with) another order's lock.
    """
    if not order.store.merge_shipments:
        return None
    return (Shipment.objects.select_for_update(skip_locked=True)
            .filter(store_id=order.store_id, warehouse_id=warehouse_id, receiver_key=key, status=SS.TO_PICK,
                    wave__isnull=True)
            .order_by("pk").first())


def shipments_create_for_order(*, order_id: int, actor=None, actor_label: str = "system") -> list[Shipment]:
    """Put the order's reserved, not yet shipped units into parcels: one per warehouse, or into an
    open parcel of the same buyer and address (merge by rule). Returns the shipments touched."""
    with transaction.atomic():
        order = lock_one(Order, order_id)
        reservations = list(Reservation.objects.filter(order=order, status=ReservationStatus.ACTIVE,
                                                       shipment_line__isnull=True)
                            .select_related("warehouse").order_by("warehouse_id", "pk"))
        if not reservations:
            return []
        by_warehouse: dict[int, list[Reservation]] = defaultdict(list)
        for reservation in reservations:
            by_warehouse[reservation.warehouse_id].append(reservation)
        facts = routing.order_facts(order)
        key = receiver_key(order)
        touched = []
        for warehouse_id, group in by_warehouse.items():
            target = _merge_target(order=order, warehouse_id=warehouse_id, key=key)
            shipment = target or Shipment.objects.create(
                number=shipment_number_next(), store=order.store, warehouse_id=warehouse_id,
                platform=order.store.platform, order_numbers=order.number, priority=order.priority,
                amount=order.total_amount, currency=order.currency, receiver_key=key,
                receiver_country=order.receiver_country, receiver_province=order.receiver_province,
                receiver_city=order.receiver_city, service_level=order.promised_service or ServiceLevel.STANDARD,
                sla_due_at=_ship_by(order))
            ShipmentLine.objects.bulk_create([
                ShipmentLine(shipment=shipment, order=order, order_line_id=r.order_line_id, reservation=r,
                             sku_id=r.sku_id, quantity=r.quantity) for r in group])
            _refresh_summary(shipment)
            if target is None:
                events.event_shipment_created(shipment=shipment, orders=[order.number], actor=actor,
                                              actor_label=actor_label)
                _route_carrier(shipment, order, facts)
            else:
                events.event_shipment_merged(shipment=shipment, other="", orders=[order.number], actor=actor,
                                             actor_label=actor_label,
                                             reason=_("Same buyer and address: merged by rule."))
                RoutingDecision.objects.create(
                    order=order, shipment=shipment, kind=DecisionKind.CARRIER, carrier=shipment.carrier,
                    service=shipment.service_level, cost=shipment.carrier_cost,
                    reason=_("Merged into parcel %(number)s; it keeps its carrier.") % {"number": shipment.number})
            touched.append(shipment)
        return touched


def routing_record_warehouse(*, order: Order, route: routing.WarehouseRoute, reserved_in: list[int]) -> None:
    """Record where the order's stock was reserved and why (called by the order pipeline)."""
    names = dict(Warehouse.objects.filter(pk__in=set(route.ranking[:1]) | set(reserved_in))
                 .values_list("pk", "name"))
    RoutingDecision.objects.create(
        order=order, kind=DecisionKind.WAREHOUSE, warehouse_rule=route.rule,
        rule_name=route.rule.name if route.rule else "",
        preferred_warehouse_id=route.ranking[0] if route.ranking else None, warehouse_ids=reserved_in,
        reason=routing.warehouse_outcome_reason(route, reserved_in, names)[:500])


# --- Moves ----------------------------------------------------------------------------------------

def shipment_start_picking(*, shipment_id: int, actor=None, actor_label: str = "system") -> Shipment:
    """Picking starts: the shipment's ready orders go into fulfilment with it."""
    from orders.services import order_start_fulfilment

    with transaction.atomic():
        shipment, orders = _lock_shipment_with_orders(shipment_id)
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
    if not reason:
        raise MoveRefused(_("Say what the problem is."), code="reason_required")
    with transaction.atomic():
        shipment, _orders = _lock_shipment_with_orders(shipment_id)
        shipment.exception_reason = reason[:300]
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
        return shipment_raise_exception(shipment_id=shipment_id, actor=actor,
                                        reason=reason or _("Reported from the kanban."))
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


# --- Packing --------------------------------------------------------------------------------------

def shipment_find_for_scan(*, code: str) -> Shipment:
    """The parcel a packer scanned: by shipment number or by tracking number."""
    from fulfillment.carriers.formatting import normalize_tracking_number

    code = (code or "").strip()
    shipment = (Shipment.objects.filter(number__iexact=code).first()
                or Shipment.objects.filter(tracking_number=normalize_tracking_number(code)).order_by("-pk").first())
    if shipment is None:
        raise ScanRefused(_("No parcel has the number %(code)s.") % {"code": code[:64]}, code="unknown_parcel")
    return shipment


@dataclass
class ScanResult:
    line: ShipmentLine
    sku_code: str
    verified: int
    quantity: int
    complete: bool  # every line of the parcel is verified


def _refuse_scan(shipment: Shipment, *, barcode: str, problem: str, message: str, actor) -> NoReturn:
    # The refusal is recorded in its own transaction so it survives the error that follows.
    with transaction.atomic():
        events.event_shipment_scan_refused(shipment=shipment, barcode=barcode, problem=problem, message=message,
                                           actor=actor)
    raise ScanRefused(message, code=f"scan_{problem}", data={"barcode": barcode[:64]})


def shipment_scan_item(*, shipment_id: int, barcode: str, actor=None) -> ScanResult:
    """Count one scanned item against the parcel's lines; a wrong item or an extra one is refused.

    The parcel's row lock serialises scans from several stations, so the last unit counts once.
    """
    barcode = (barcode or "").strip()
    with transaction.atomic():
        shipment = lock_one(Shipment, shipment_id)
        if shipment.status != SS.PICKING:
            state = shipment.get_status_display()
            raise PackingRefused(_("Parcel %(number)s is %(status)s: only a parcel being picked can be scanned.") % {
                "number": shipment.number, "status": state}, data={"status": shipment.status})
        lines = list(shipment.lines.select_related("sku").order_by("pk"))
        matching = [line for line in lines if barcode and barcode in (line.sku.barcode, line.sku.code)]
        open_line = next((line for line in matching if line.verified_quantity < line.quantity), None)
        if open_line is not None:
            ShipmentLine.objects.filter(pk=open_line.pk).update(verified_quantity=F("verified_quantity") + 1)
            open_line.verified_quantity += 1
            complete = all(line.verified_quantity >= line.quantity for line in lines)
            return ScanResult(line=open_line, sku_code=open_line.sku.code, verified=open_line.verified_quantity,
                              quantity=open_line.quantity, complete=complete)
    if not matching:
        _refuse_scan(shipment, barcode=barcode, problem="wrong_item", actor=actor,
                     message=_("Wrong item: %(code)s is not in parcel %(number)s.") % {
                         "code": barcode[:64] or "—", "number": shipment.number})
    needed = sum(line.quantity for line in matching)
    _refuse_scan(shipment, barcode=barcode, problem="extra", actor=actor,
                 message=_("Extra item: all %(n)s of %(code)s are already scanned.") % {
                     "n": needed, "code": matching[0].sku.code})


def shipment_scan_reset(*, shipment_id: int, actor=None) -> None:
    with transaction.atomic():
        shipment = lock_one(Shipment, shipment_id)
        if shipment.status != SS.PICKING:
            raise PackingRefused(_("Only a parcel being picked can be scanned again."))
        ShipmentLine.objects.filter(shipment=shipment).update(verified_quantity=0)


def missing_items(shipment: Shipment) -> list[dict]:
    return [{"sku": line.sku.code, "missing": line.quantity - line.verified_quantity}
            for line in shipment.lines.select_related("sku").order_by("pk") if line.verified_quantity < line.quantity]


def shipment_pack(*, shipment_id: int, actor=None, weight_grams: int | None = None) -> Shipment:
    """Close the parcel: every line must be scanned, and a weight, when given, must match the expected one."""
    if weight_grams is not None:
        _check_weight(shipment_id=shipment_id, weight_grams=weight_grams, actor=actor)
    with transaction.atomic():
        shipment, _orders = _lock_shipment_with_orders(shipment_id)
        if shipment.status == SS.PACKED:
            raise PackingRefused(_("Parcel %(number)s is already packed.") % {"number": shipment.number},
                                 code="already_packed")
        missing = missing_items(shipment) if shipment.status == SS.PICKING else []
        if missing:
            raise PackingRefused(_("Not every item is scanned: %(missing)s missing. Scan them at the packing station.")
                                 % {"missing": ", ".join(f"{m['sku']} × {m['missing']}" for m in missing)},
                                 code="items_missing", data={"missing": missing})
        if weight_grams is not None:
            shipment.measured_weight_grams = weight_grams
        shipment.packed_at = timezone.now()
        _apply(shipment, "pack", actor=actor, extra_fields=("packed_at", "measured_weight_grams"))
        if shipment.carrier_id and shipment.carrier.kind != CarrierKind.MANUAL and not shipment.tracking_number:
            transaction.on_commit(lambda: _enqueue_waybill(shipment.pk))
        return shipment


def _check_weight(*, shipment_id: int, weight_grams: int, actor) -> None:
    """Refuse a weighed parcel far from its expected weight; the mismatch is recorded (its own
    transaction, so the refusal does not roll it back) because it hints at a wrong or missing item."""
    if not isinstance(weight_grams, int) or weight_grams <= 0 or weight_grams > 1_000_000:
        raise PackingRefused(_("Enter the weight in grams (1 to 1,000,000)."), code="weight_invalid")
    shipment = Shipment.objects.filter(pk=shipment_id).first()
    if shipment is None:
        raise ShipmentNotFound(_("Shipment %(id)s does not exist.") % {"id": shipment_id})
    expected = shipment.expected_weight_grams
    tolerance = max(WEIGHT_TOLERANCE_GRAMS, int(expected * WEIGHT_TOLERANCE_RATIO))
    if shipment.status != SS.PICKING or not expected or abs(weight_grams - expected) <= tolerance:
        return
    with transaction.atomic():
        events.event_shipment_weight_mismatch(shipment=shipment, expected=expected, measured=weight_grams, actor=actor)
    raise PackingRefused(_("The parcel weighs %(measured)s g but should weigh about %(expected)s g: check its contents.")
                         % {"measured": weight_grams, "expected": expected},
                         code="weight_mismatch", data={"expected": expected, "measured": weight_grams})


def _enqueue_waybill(shipment_id: int) -> None:
    from fulfillment.tasks import request_waybill_task

    request_waybill_task.delay(shipment_id=shipment_id)


# --- Shipping and delivery ------------------------------------------------------------------------

def shipment_set_tracking_number(*, shipment_id: int, tracking_number: str, actor=None) -> Shipment:
    """A number scanned or typed by hand (manual carriers, or a label printed elsewhere)."""
    from fulfillment.carriers.formatting import normalize_tracking_number

    number = normalize_tracking_number(tracking_number or "")
    if not 6 <= len(number) <= 40 or not number.isalnum():
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
        shipment.save(update_fields=["tracking_number", "updated_at"])
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
        shipment.shipped_at = timezone.now()
        _apply(shipment, "ship", actor=actor, extra_fields=("shipped_at",),
               refusal=_("Parcel %(number)s has no tracking number yet.") % {"number": shipment.number})
        lines = list(shipment.lines.select_related("order_line"))
        for order in orders:
            mine = [line for line in lines if line.order_id == order.pk]
            units = stock.stock_ship(order_id=order.pk, reservation_ids=[line.reservation_id for line in mine],
                                     reference=f"shipment:{shipment.number}")
            if units:
                order_events.event_order_stock_shipped(order=order, units=units)
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
            others = shipment.lines.exclude(order_id=order_id).exists()
            if others:
                shipment.lines.filter(order_id=order_id).delete()
                ShipmentLine.objects.filter(shipment=shipment).update(verified_quantity=0)
                _refresh_summary(shipment)
                events.event_shipment_unmerged(shipment=shipment, new_shipments=[], actor=actor,
                                               reason=_("An order left the parcel: %(reason)s") % {"reason": reason})
                continue
            _apply(shipment, "cancel", actor=actor, reason=reason)
            cancelled += 1
            if shipment.tracking_number and shipment.carrier and shipment.carrier.kind != CarrierKind.MANUAL:
                transaction.on_commit(lambda pk=shipment.pk: _enqueue_waybill_cancel(pk))
    return cancelled


def _enqueue_waybill_cancel(shipment_id: int) -> None:
    from fulfillment.tasks import cancel_waybill_task

    cancel_waybill_task.delay(shipment_id=shipment_id)


# --- Merge and split ------------------------------------------------------------------------------

def shipments_merge(*, shipment_ids: list[int], actor=None, reason: str = "") -> Shipment:
    """Put parcels of one buyer and address (same store and warehouse, none picked yet) into the first one."""
    ids = sorted(set(shipment_ids))
    if len(ids) < 2:
        raise RoutingInvalid(_("Choose at least two parcels to merge."), code="merge_invalid")
    with transaction.atomic():
        order_ids = set(ShipmentLine.objects.filter(shipment_id__in=ids).values_list("order_id", flat=True))
        lock_many(Order, order_ids)
        shipments = lock_many(Shipment, ids)
        if len(shipments) != len(ids):
            raise ShipmentNotFound(_("A parcel to merge does not exist."))
        first = shipments[0]
        problems = [s.number for s in shipments if s.status != SS.TO_PICK]
        if problems:
            raise MoveRefused(_("Only parcels not yet picked can be merged: %(numbers)s.") % {
                "numbers": ", ".join(problems)}, code="merge_refused")
        if any((s.store_id, s.warehouse_id, s.receiver_key) != (first.store_id, first.warehouse_id, first.receiver_key)
               for s in shipments):
            raise MoveRefused(_("Only parcels of one store, one warehouse and the same buyer and address can be merged."),
                              code="merge_refused")
        for other in shipments[1:]:
            orders = list(other.lines.values_list("order__number", flat=True).distinct())
            other.lines.update(shipment=first)
            _apply(other, "cancel", actor=actor, reason=_("Merged into %(number)s.") % {"number": first.number})
            events.event_shipment_merged(shipment=first, other=other.number, orders=orders, actor=actor, reason=reason)
        if first.wave_id is None and any(s.wave_id for s in shipments[1:]):
            first.wave_id = next(s.wave_id for s in shipments[1:] if s.wave_id)
            first.save(update_fields=["wave", "updated_at"])
        _refresh_summary(first)
        return first


def shipment_unmerge(*, shipment_id: int, actor=None, reason: str = "") -> list[Shipment]:
    """Give each order of a merged parcel its own parcel again (before picking). Returns the new ones."""
    with transaction.atomic():
        shipment, orders = _lock_shipment_with_orders(shipment_id)
        if shipment.status != SS.TO_PICK:
            raise MoveRefused(_("A parcel can only be unmerged before picking starts."), code="unmerge_refused")
        if len(orders) < 2:
            raise MoveRefused(_("Parcel %(number)s holds one order only.") % {"number": shipment.number},
                              code="unmerge_refused")
        keep = min(orders, key=lambda o: o.pk)
        created = []
        for order in orders:
            if order.pk == keep.pk:
                continue
            new = _clone_empty(shipment)
            shipment.lines.filter(order=order).update(shipment=new)
            _refresh_summary(new)
            events.event_shipment_created(shipment=new, orders=[order.number], actor=actor)
            created.append(new)
        ShipmentLine.objects.filter(shipment=shipment).update(verified_quantity=0)
        _refresh_summary(shipment)
        events.event_shipment_unmerged(shipment=shipment, new_shipments=[s.number for s in created], actor=actor,
                                       reason=reason)
        return created


def _clone_empty(shipment: Shipment) -> Shipment:
    """A new parcel with the same store, warehouse, receiver and carrier, no lines yet."""
    return Shipment.objects.create(
        number=shipment_number_next(), store_id=shipment.store_id, warehouse_id=shipment.warehouse_id,
        platform=shipment.platform, order_numbers=shipment.order_numbers, priority=shipment.priority,
        amount=shipment.amount, currency=shipment.currency, receiver_key=shipment.receiver_key,
        receiver_country=shipment.receiver_country, receiver_province=shipment.receiver_province,
        receiver_city=shipment.receiver_city, service_level=shipment.service_level, sla_due_at=shipment.sla_due_at,
        carrier_id=shipment.carrier_id, carrier_cost=shipment.carrier_cost)


def shipment_split(*, shipment_id: int, quantities: dict[int, int], actor=None, reason: str = "") -> Shipment:
    """Move the given units (shipment line id → quantity) into a new parcel from the same warehouse.

    A line moved in part splits its reservation in two; counters and ledger stay as they are.
    """
    with transaction.atomic():
        shipment, _orders = _lock_shipment_with_orders(shipment_id)
        if shipment.status != SS.TO_PICK:
            raise MoveRefused(_("A parcel can only be split before picking starts."), code="split_refused")
        lines = {line.pk: line for line in shipment.lines.select_related("sku")}
        try:
            wanted = {int(k): int(v) for k, v in quantities.items() if int(v) != 0}
        except (TypeError, ValueError):
            raise RoutingInvalid(_("Quantities must be whole numbers."), code="split_invalid") from None
        unknown = [k for k in wanted if k not in lines]
        if unknown or any(q < 0 or q > lines[k].quantity for k, q in wanted.items() if k in lines):
            raise RoutingInvalid(_("Choose quantities between 0 and each line's quantity."), code="split_invalid")
        total, moving = sum(line.quantity for line in lines.values()), sum(wanted.values())
        if moving == 0 or moving == total:
            raise RoutingInvalid(_("A split must move some units and leave some behind."), code="split_invalid")
        new = _clone_empty(shipment)
        moved = []
        for line_id, quantity in sorted(wanted.items()):
            line = lines[line_id]
            if quantity == line.quantity:
                ShipmentLine.objects.filter(pk=line.pk).update(shipment=new, verified_quantity=0)
            else:
                part = stock.stock_reservation_split(reservation_id=line.reservation_id, quantity=quantity)
                ShipmentLine.objects.filter(pk=line.pk).update(quantity=F("quantity") - quantity, verified_quantity=0)
                ShipmentLine.objects.create(shipment=new, order_id=line.order_id, order_line_id=line.order_line_id,
                                            reservation=part, sku_id=line.sku_id, quantity=quantity)
            moved.append({"sku": line.sku.code, "quantity": quantity})
        _refresh_summary(shipment)
        _refresh_summary(new)
        events.event_shipment_split(shipment=shipment, new_shipment=new.number, moved=moved, actor=actor, reason=reason)
        events.event_shipment_created(shipment=new, orders=new.order_numbers.split(", "), actor=actor)
        return new


# --- Routing overrides ----------------------------------------------------------------------------

def _override_reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise RoutingInvalid(_("Say why the routing is overridden."), code="reason_required",
                             data={"reason": [_("This field may not be blank.")]})
    return reason[:300]


def shipment_override_carrier(*, shipment_id: int, carrier_id: int, service: str = ServiceLevel.STANDARD,
                              reason: str, actor=None) -> Shipment:
    reason = _override_reason(reason)
    carrier = Carrier.objects.filter(pk=carrier_id, active=True).first()
    if carrier is None or service not in ServiceLevel.values:
        raise RoutingInvalid(_("Choose an active carrier and a service."), code="carrier_invalid")
    with transaction.atomic():
        shipment, orders = _lock_shipment_with_orders(shipment_id)
        if shipment.status not in (SS.TO_PICK, SS.PICKING, SS.PACKED, SS.EXCEPTION) or shipment.tracking_number:
            raise MoveRefused(_("The carrier can only change before the parcel has a tracking number."),
                              code="override_refused")
        before = f"{shipment.carrier.code if shipment.carrier else '-'} {shipment.service_level}"
        shipment.carrier, shipment.service_level = carrier, service
        shipment.carrier_cost = carrier.cost_for(shipment.expected_weight_grams)
        shipment.save(update_fields=["carrier", "service_level", "carrier_cost", "updated_at"])
        for order in orders:
            RoutingDecision.objects.create(order=order, shipment=shipment, kind=DecisionKind.CARRIER, carrier=carrier,
                                           service=service, cost=shipment.carrier_cost, reason=reason,
                                           overridden=True, actor=actor)
        events.event_shipment_routing_overridden(shipment=shipment, what="carrier", before=before,
                                                 after=f"{carrier.code} {service}", reason=reason, actor=actor)
        return shipment


def shipment_override_warehouse(*, shipment_id: int, warehouse_id: int, reason: str, actor=None) -> Shipment:
    """Ship a one-order parcel from another warehouse: its stock is re-reserved there, or nothing changes."""
    reason = _override_reason(reason)
    with transaction.atomic():
        shipment, orders = _lock_shipment_with_orders(shipment_id)
        target = Warehouse.objects.filter(pk=warehouse_id, active=True).first()
        if target is None:
            raise RoutingInvalid(_("Choose an active warehouse."), code="warehouse_invalid")
        if shipment.status != SS.TO_PICK or len(orders) != 1:
            raise MoveRefused(_("Only a parcel of one order, not yet picked, can change warehouse."),
                              code="override_refused")
        order = orders[0]
        if Shipment.objects.filter(lines__order=order).exclude(pk=shipment.pk).exclude(
                status=SS.CANCELLED).exists():
            raise MoveRefused(_("The order ships in several parcels: change them one order at a time."),
                              code="override_refused")
        if target.pk == shipment.warehouse_id:
            raise RoutingInvalid(_("The parcel already ships from %(warehouse)s.") % {"warehouse": target.name},
                                 code="warehouse_invalid")
        before = shipment.warehouse.code
        shipment.lines.all().delete()
        stock.stock_release_for_order(order_id=order.pk, reference=f"order:{order.number}")
        result = stock.stock_reserve_for_order(order_id=order.pk, only_warehouse_ids=[target.pk],
                                               reference=f"order:{order.number}")
        if not result.reserved:
            short = ", ".join(f"{s['sku']} × {s['short']}" for s in result.shortages)
            raise RoutingInvalid(_("%(warehouse)s does not hold every line: %(short)s short.") % {
                "warehouse": target.name, "short": short}, code="warehouse_short", data={"shortages": result.shortages})
        reservations = Reservation.objects.filter(order=order, status=ReservationStatus.ACTIVE).order_by("pk")
        ShipmentLine.objects.bulk_create([
            ShipmentLine(shipment=shipment, order=order, order_line_id=r.order_line_id, reservation=r,
                         sku_id=r.sku_id, quantity=r.quantity) for r in reservations])
        shipment.warehouse = target
        shipment.save(update_fields=["warehouse", "updated_at"])
        _refresh_summary(shipment)
        RoutingDecision.objects.create(order=order, kind=DecisionKind.WAREHOUSE, preferred_warehouse=target,
                                       warehouse_ids=[target.pk], reason=reason, overridden=True, actor=actor)
        events.event_shipment_routing_overridden(shipment=shipment, what="warehouse", before=before,
                                                 after=target.code, reason=reason, actor=actor)
        return shipment


# --- Waves ----------------------------------------------------------------------------------------

def wave_number_next() -> str:
    return f"W{next_sequence_value('wave_number')}"


def wave_create(*, shipment_ids: list[int], actor=None, description: str = "") -> Wave:
    """Batch parcels of one warehouse that are waiting to be picked into a wave."""
    ids = sorted(set(shipment_ids))
    if not ids:
        raise RoutingInvalid(_("Choose the parcels for the wave."), code="wave_empty")
    with transaction.atomic():
        shipments = lock_many(Shipment, ids)
        if len(shipments) != len(ids):
            raise ShipmentNotFound(_("A parcel of the wave does not exist."))
        if len({s.warehouse_id for s in shipments}) != 1:
            raise RoutingInvalid(_("A wave picks in one warehouse only."), code="wave_invalid")
        busy = [s.number for s in shipments if s.status != SS.TO_PICK or s.wave_id]
        if busy:
            raise MoveRefused(_("Already picking or in a wave: %(numbers)s.") % {"numbers": ", ".join(busy)},
                              code="wave_refused")
        wave = Wave.objects.create(number=wave_number_next(), warehouse_id=shipments[0].warehouse_id,
                                   description=description[:200], created_by=actor)
        Shipment.objects.filter(pk__in=ids).update(wave=wave)
        return wave


def wave_create_by_rule(*, warehouse_id: int, carrier_id: int | None = None, province: str = "", limit: int = 50,
                        actor=None) -> Wave:
    """The rule version: parcels waiting in the warehouse, of one carrier and/or area, most urgent first, up to N."""
    if not 1 <= limit <= 500:
        raise RoutingInvalid(_("A wave holds 1 to 500 parcels."), code="wave_invalid")
    query = Shipment.objects.filter(warehouse_id=warehouse_id, status=SS.TO_PICK, wave__isnull=True)
    if carrier_id:
        query = query.filter(carrier_id=carrier_id)
    if province:
        query = query.filter(receiver_province=province)
    ids = list(query.order_by("-priority", "sla_due_at", "pk").values_list("pk", flat=True)[:limit])
    if not ids:
        raise RoutingInvalid(_("No parcel waiting to be picked matches."), code="wave_empty")
    parts = [p for p in [Carrier.objects.filter(pk=carrier_id).values_list("code", flat=True).first()
                         if carrier_id else "", province] if p]
    return wave_create(shipment_ids=ids, actor=actor, description=" · ".join(parts))


def wave_start(*, wave_id: int, actor=None) -> Wave:
    """Print-and-pick: every parcel of the wave still waiting moves to picking."""
    with transaction.atomic():
        wave = lock_one(Wave, wave_id)
        if wave.status != Wave.Status.OPEN:
            raise MoveRefused(_("Wave %(number)s has already started.") % {"number": wave.number},
                              code="wave_started")
        # Every order of the wave is locked up front, in one ascending sweep, so starting parcel after
        # parcel never takes order locks out of order.
        lock_many(Order, ShipmentLine.objects.filter(shipment__wave=wave).values_list("order_id", flat=True))
        for shipment_id in wave.shipments.filter(status=SS.TO_PICK).order_by("pk").values_list("pk", flat=True):
            shipment_start_picking(shipment_id=shipment_id, actor=actor)
        wave.status, wave.started_at = Wave.Status.PICKING, timezone.now()
        wave.save(update_fields=["status", "started_at", "updated_at"])
        return wave


# --- Routing rules (configuration) ------------------------------------------------------------------

# Positions are renumbered in steps of 10 on every move, leaving room for hand edits in the admin.
RULE_POSITION_STEP = 10


def routing_rule_save(*, rule: WarehouseRule | CarrierRule) -> WarehouseRule | CarrierRule:
    """Save a rule from its form; a new one goes last (two saved at once may share a position: the older wins)."""
    if rule.pk is None:
        last = type(rule).objects.order_by("-position").values_list("position", flat=True).first()
        rule.position = (last or 0) + RULE_POSITION_STEP
    rule.save()
    return rule


def routing_rule_toggle(*, model: type[WarehouseRule] | type[CarrierRule], rule_id: int):
    """Switch a rule on or off; decisions already taken keep the rule's name."""
    with transaction.atomic():
        try:
            rule = lock_one(model, rule_id)
        except model.DoesNotExist:
            raise RoutingInvalid(_("The rule does not exist."), code="rule_not_found", http_status=404) from None
        rule.active = not rule.active
        rule.save(update_fields=["active", "updated_at"])
        return rule


def routing_rule_move(*, model: type[WarehouseRule] | type[CarrierRule], rule_id: int, direction: str):
    """Swap a rule with its neighbour above or below, and renumber every rule of its kind."""
    if direction not in ("up", "down"):
        raise RoutingInvalid(_("A rule moves up or down."), code="direction_invalid")
    with transaction.atomic():
        # Locked in pk order (the project's lock order), then ordered as routing reads them.
        rules = sorted(lock_many(model, model.objects.values_list("pk", flat=True)), key=lambda r: (r.position, r.pk))
        index = next((i for i, r in enumerate(rules) if r.pk == rule_id), None)
        if index is None:
            raise RoutingInvalid(_("The rule does not exist."), code="rule_not_found", http_status=404)
        other = index - 1 if direction == "up" else index + 1
        if 0 <= other < len(rules):
            rules[index], rules[other] = rules[other], rules[index]
        for number, rule in enumerate(rules, start=1):
            if rule.position != number * RULE_POSITION_STEP:
                rule.position = number * RULE_POSITION_STEP
                rule.save(update_fields=["position", "updated_at"])
        return rules
