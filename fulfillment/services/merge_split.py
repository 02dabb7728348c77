"""Merging parcels of one buyer and address, unmerging them, and splitting a parcel by quantity."""

from __future__ import annotations

from django.db import transaction
from django.db.models import F
from django.utils.translation import gettext as _

from fulfillment import events
from fulfillment.exceptions import MoveRefused, RoutingInvalid, ShipmentNotFound
from fulfillment.models import (
    Shipment,
    ShipmentLine,
    ShipmentStatus,
)
from fulfillment.services.building import _refresh_summary, shipment_number_next
from fulfillment.services.common import _apply, _lock_shipment_with_orders
from inventory import services as stock
from oms.locks import lock_many
from orders.models import Order

SS = ShipmentStatus


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
