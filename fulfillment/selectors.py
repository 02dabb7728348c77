"""Reads of fulfilment: pick lists, shipment pages, the stale-tracking list (the kanban's reads live in kanban.py)."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, Q, QuerySet, Sum

from fulfillment.carriers.formatting import customer_tracking
from fulfillment.models import Shipment, ShipmentLine, ShipmentStatus, Wave
from inventory.models import StockLevel
from orders.models import HoldReason, OrderStatus


@dataclass(frozen=True)
class PickRow:
    """One line of a pick list (the printed pick list renders these rows as they are)."""

    location: str
    sku_code: str
    sku_name: str
    barcode: str
    quantity: int
    shipments: int


def pick_list(*, shipments: QuerySet[Shipment] | list[int], warehouse_id: int) -> list[PickRow]:
    """One row per SKU with the total to pick, sorted by bin location (a walk through the aisles)."""
    ids = list(shipments.values_list("pk", flat=True)) if isinstance(shipments, QuerySet) else list(shipments)
    rows = (ShipmentLine.objects.filter(shipment_id__in=ids)
            .values("sku_id", "sku__code", "sku__name", "sku__barcode")
            .annotate(quantity=Sum("quantity"), shipments=Count("shipment_id", distinct=True)))
    locations = dict(StockLevel.objects.filter(warehouse_id=warehouse_id, sku_id__in=[r["sku_id"] for r in rows])
                     .values_list("sku_id", "location"))
    result = [PickRow(location=locations.get(r["sku_id"], "") or "", sku_code=r["sku__code"], sku_name=r["sku__name"],
                      barcode=r["sku__barcode"], quantity=r["quantity"], shipments=r["shipments"]) for r in rows]
    # Shelves without a location go last, so the walk covers the known bins first.
    return sorted(result, key=lambda row: (row.location == "", row.location, row.sku_code))


def wave_pick_list(wave: Wave) -> list[PickRow]:
    return pick_list(shipments=wave.shipments.exclude(status=ShipmentStatus.CANCELLED), warehouse_id=wave.warehouse_id)


def shipment_detail(shipment_id: int) -> Shipment:
    return (Shipment.objects.select_related("store", "warehouse", "carrier", "wave")
            .prefetch_related("lines__sku", "lines__order", "lines__order_line", "events__actor", "tracking_events",
                              "routing_decisions__carrier")
            .get(pk=shipment_id))


def customer_tracking_of(shipment: Shipment) -> tuple[str, str]:
    """What a buyer sees: the formatted number and the public tracking page (never the hand-over code)."""
    if not shipment.tracking_number:
        return "", ""
    return customer_tracking(shipment.carrier.code if shipment.carrier else "", shipment.tracking_number)


def stale_shipments() -> QuerySet[Shipment]:
    """Parcels in transit whose tracking went silent: the customer-service alert list."""
    return (Shipment.objects.filter(status=ShipmentStatus.SHIPPED, tracking_stale_since__isnull=False)
            .select_related("carrier", "warehouse", "store").order_by("tracking_stale_since"))


def shipments_for_order(order_id: int) -> QuerySet[Shipment]:
    return (Shipment.objects.filter(lines__order_id=order_id).distinct().select_related("carrier", "warehouse")
            .order_by("pk"))


def merge_candidates(shipment: Shipment) -> QuerySet[Shipment]:
    """Other parcels of the same buyer and address that could join this one."""
    return (Shipment.objects.filter(store_id=shipment.store_id, warehouse_id=shipment.warehouse_id,
                                    receiver_key=shipment.receiver_key, status=ShipmentStatus.TO_PICK)
            .exclude(pk=shipment.pk).filter(Q(wave__isnull=True) | Q(wave_id=shipment.wave_id)))


# --- Held parcels ----------------------------------------------------------------------------------

# Order states that stop a parcel before it is picked: on hold, or sent back before fulfilment (a hold
# released to "paid" waits for approval again). Cancelled and closed orders cancel their parcels themselves,
# and every state listed here is rare next to the history, so the subquery starts from the orders' status index.
HELD_ORDER_STATES = [OrderStatus.HELD, OrderStatus.PENDING_PAYMENT, OrderStatus.PAID, OrderStatus.AWAITING_STOCK]


def shipment_held_q() -> Q:
    """Parcels with an order that may not be worked on (a merged parcel waits for its every order).

    A subquery, not a flag on the parcel: a hold is set and released by the order services, and a copy here
    could fall out of step; PostgreSQL evaluates it once per query (a hashed subplan).
    """
    return Q(pk__in=ShipmentLine.objects.filter(order__status__in=HELD_ORDER_STATES).values("shipment_id"))


def shipment_holds(*, shipment_ids: list[int]) -> dict[int, str]:
    """Why each of these parcels waits, as a card or a wave page shows it: "SO-1: Address problem" (one query)."""
    if not shipment_ids:
        return {}
    rows = (ShipmentLine.objects.filter(shipment_id__in=shipment_ids, order__status__in=HELD_ORDER_STATES)
            .values_list("shipment_id", "order__number", "order__status", "order__hold_reasons")
            .distinct().order_by("shipment_id", "order__number"))
    why: dict[int, list[str]] = {}
    for shipment_id, number, status, reasons in rows:
        labels = [str(HoldReason(r).label) if r in HoldReason.values else str(r) for r in reasons or []]
        text = " · ".join(labels) if status == OrderStatus.HELD and labels else str(OrderStatus(status).label)
        why.setdefault(shipment_id, []).append(f"{number}: {text}")
    return {shipment_id: "; ".join(parts) for shipment_id, parts in why.items()}
