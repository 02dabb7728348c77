"""Routing overrides by hand: another carrier or another warehouse, with a reason, recorded."""

from __future__ import annotations

from django.db import transaction
from django.utils.translation import gettext as _

from fulfillment import events
from fulfillment.exceptions import MoveRefused, RoutingInvalid
from fulfillment.models import (
    Carrier,
    DecisionKind,
    RoutingDecision,
    ServiceLevel,
    Shipment,
    ShipmentLine,
    ShipmentStatus,
)
from fulfillment.services.building import _refresh_summary
from fulfillment.services.common import _lock_shipment_with_orders
from inventory import services as stock
from inventory.models import Reservation, ReservationStatus, Warehouse

SS = ShipmentStatus


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
        # Both warehouses' stock rows, locked in (warehouse, SKU) order before releasing here and
        # reserving there, so two overrides in opposite directions cannot deadlock.
        stock.stock_lock_levels(warehouse_ids=[shipment.warehouse_id, target.pk],
                                sku_ids=list(shipment.lines.values_list("sku_id", flat=True)))
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
