"""Building parcels from reserved orders: one per warehouse, merged by rule, routed to a carrier."""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from datetime import timedelta
from typing import NamedTuple

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
from oms.bulk import rows_insert
from oms.events import events_record_many
from oms.locks import lock_one, lock_rows
from oms.sequences import next_sequence_value, next_sequence_values
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


class _Held(NamedTuple):
    """An active reservation not yet in a parcel, as the batch reads it (no model instances on the hot path)."""

    pk: int
    order_id: int
    order_line_id: int
    warehouse_id: int
    sku_id: int
    quantity: int
    weight_grams: int


def shipments_create_for_order(*, order_id: int, actor=None, actor_label: str = "system") -> list[Shipment]:
    """Put the order's reserved, not yet shipped units into parcels: shipments_create_for_orders with one."""
    return shipments_create_for_orders(order_ids=[order_id], actor=actor, actor_label=actor_label).get(order_id, [])


def shipments_create_for_orders(*, order_ids: list[int], actor=None, actor_label: str = "system",
                                facts: dict[int, routing.OrderFacts] | None = None,
                                locked: dict[int, Order] | None = None) -> dict[int, list[Shipment]]:
    """Put each order's reserved, not yet shipped units into parcels: one per warehouse, or into an open
    parcel of the same buyer and address (merge by rule). Returns the shipments touched per order.

    Set-based for a batch (the flash-sale path): one read of the reservations, numbers in one round trip,
    carriers routed in memory with the rules read once, one INSERT each for parcels, their lines, the
    routing decisions and the events. An order that may merge (its store merges and its buyer already has
    an open parcel, or an earlier order of the batch has the same key) goes the one-order way after the rest.
    ``locked``: the orders with their stores when the caller already holds their rows (the order pipeline).
    """
    with transaction.atomic():
        orders = locked if locked is not None else {
            order.pk: order for order in lock_rows(Order.objects.filter(pk__in=order_ids).select_related("store"),
                                                   of=("self",))}
        groups: dict[int, dict[int, list[_Held]]] = defaultdict(lambda: defaultdict(list))
        for held in Reservation.objects.filter(
                order_id__in=[order_id for order_id in order_ids if order_id in orders],
                status=ReservationStatus.ACTIVE, shipment_line__isnull=True,
        ).order_by("order_id", "warehouse_id", "pk").values_list(
                "pk", "order_id", "order_line_id", "warehouse_id", "sku_id", "quantity", "sku__weight_grams"):
            group = groups[held[1]][held[3]]
            group.append(_Held(*held))
        if not groups:
            return {}
        keys = {order_id: receiver_key(orders[order_id]) for order_id in groups}
        merging_keys = {keys[order_id] for order_id in groups if orders[order_id].store.merge_shipments}
        open_keys = set(Shipment.objects.filter(receiver_key__in=merging_keys, status=SS.TO_PICK, wave__isnull=True)
                        .values_list("receiver_key", flat=True)) if merging_keys else set()
        batch, later, seen = [], [], set()
        for order_id in order_ids:
            if order_id not in groups:
                continue
            order = orders[order_id]
            if order.store.merge_shipments and (keys[order_id] in open_keys or keys[order_id] in seen):
                later.append(order_id)
            else:
                batch.append(order_id)
            seen.add(keys[order_id])
        touched: dict[int, list[Shipment]] = {}
        if batch:
            touched.update(_shipments_create_new(orders=orders, groups=groups, keys=keys, order_ids=batch,
                                                 facts=facts, actor=actor, actor_label=actor_label))
        for order_id in later:
            touched[order_id] = _shipments_create_merging(order_id=order_id, actor=actor, actor_label=actor_label)
        return touched


def _shipments_create_new(*, orders, groups, keys, order_ids, facts, actor, actor_label) -> dict[int, list[Shipment]]:
    """New parcels for orders that merge with nothing: set-based writes (see shipments_create_for_orders)."""
    facts = facts or {}
    missing = [order_id for order_id in order_ids if order_id not in facts]
    if missing:
        facts = {**facts, **routing.order_facts_many([orders[order_id] for order_id in missing])}
    carrier_rules, carriers = routing.active_carrier_rules(), routing.active_carriers()
    warehouse_codes = dict(Warehouse.objects.filter(pk__in={w for o in order_ids for w in groups[o]})
                           .values_list("pk", "code"))
    parts = [(order_id, warehouse_id, group) for order_id in order_ids
             for warehouse_id, group in groups[order_id].items()]
    numbers = next_sequence_values("shipment_number", len(parts))
    shipments, lines, decisions, created_events, routed_events = [], [], [], [], []
    routes = []
    for (order_id, warehouse_id, group), number in zip(parts, numbers, strict=True):
        order = orders[order_id]
        weight = sum(held.weight_grams * held.quantity for held in group)
        route = routing.carrier_route(facts[order_id], warehouse_code=warehouse_codes[warehouse_id],
                                      weight_grams=weight or facts[order_id].weight_grams,
                                      rules=carrier_rules, carriers=carriers)
        shipments.append(Shipment(
            number=f"P{number}", store=order.store, warehouse_id=warehouse_id, platform=order.store.platform,
            order_numbers=order.number[:300], priority=order.priority, amount=order.total_amount,
            currency=order.currency, receiver_key=keys[order_id], receiver_country=order.receiver_country,
            receiver_province=order.receiver_province, receiver_city=order.receiver_city,
            service_level=route.service, sla_due_at=_ship_by(order), expected_weight_grams=weight,
            carrier=route.carrier, carrier_cost=route.cost))
        routes.append(route)
    rows_insert(shipments)
    touched: dict[int, list[Shipment]] = defaultdict(list)
    for shipment, route, (order_id, _warehouse_id, group) in zip(shipments, routes, parts, strict=True):
        order = orders[order_id]
        lines += [ShipmentLine(shipment=shipment, order=order, order_line_id=held.order_line_id,
                               reservation_id=held.pk, sku_id=held.sku_id, quantity=held.quantity) for held in group]
        decisions.append(RoutingDecision(
            order=order, shipment=shipment, kind=DecisionKind.CARRIER, carrier_rule=route.rule,
            rule_name=route.rule.name if route.rule else "", carrier=route.carrier, service=route.service,
            cost=route.cost, reason=route.reason[:500]))
        created_events.append(events.event_shipment_created_row(shipment=shipment, orders=[order.number],
                                                                actor=actor, actor_label=actor_label))
        routed_events.append(events.event_shipment_routed_row(
            shipment=shipment, reason=route.reason, carrier=route.carrier.code if route.carrier else "",
            service=route.service, rule=route.rule.name if route.rule else ""))
        touched[order_id].append(shipment)
    rows_insert(lines)
    rows_insert(decisions)
    events_record_many(created_events + routed_events)
    return dict(touched)


def _shipments_create_merging(*, order_id: int, actor=None, actor_label: str = "system") -> list[Shipment]:
    """One order whose buyer may already have an open parcel: into that parcel (merge by rule), or a new
    one per warehouse. Returns the shipments touched."""
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


def routing_record_warehouses(*, decisions: list[tuple[Order, routing.WarehouseRoute, list[int]]]) -> None:
    """Record where each order's stock was reserved and why (called by the order pipeline): one INSERT."""
    wanted = set()
    for _order, route, reserved_in in decisions:
        wanted |= set(route.ranking[:1]) | set(reserved_in)
    names = dict(Warehouse.objects.filter(pk__in=wanted).values_list("pk", "name")) if wanted else {}
    rows_insert([
        RoutingDecision(order=order, kind=DecisionKind.WAREHOUSE, warehouse_rule=route.rule,
                        rule_name=route.rule.name if route.rule else "",
                        preferred_warehouse_id=route.ranking[0] if route.ranking else None, warehouse_ids=reserved_in,
                        reason=routing.warehouse_outcome_reason(route, reserved_in, names)[:500])
        for order, route, reserved_in in decisions])


def routing_record_warehouse(*, order: Order, route: routing.WarehouseRoute, reserved_in: list[int]) -> None:
    """Record where the order's stock was reserved and why (called by the order pipeline)."""
    routing_record_warehouses(decisions=[(order, route, reserved_in)])
