"""Building parcels from reserved orders: one per warehouse, merged by rule, routed to a carrier."""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from datetime import timedelta

from django.db import transaction
from django.utils.translation import gettext as _

from fulfillment import events, routing
from fulfillment.models import (
    DecisionKind,
    RoutingDecision,
    ServiceLevel,
    Shipment,
    ShipmentLine,
    ShipmentStatus,
)
from inventory.models import Reservation, ReservationStatus, Warehouse
from oms.locks import lock_one, lock_rows
from oms.sequences import next_sequence_value
from orders.models import Order

SS = ShipmentStatus


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
    return lock_rows(Shipment.objects.filter(store_id=order.store_id, warehouse_id=warehouse_id, receiver_key=key,
                                             status=SS.TO_PICK, wave__isnull=True), skip_locked=True).first()


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
