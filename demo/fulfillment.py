"""Demo fulfilment: carriers (SF on its local sandbox), routing rules, bin locations, and the parcel steps that
take the demo orders through picking, shipping and delivery."""

from __future__ import annotations

import hashlib
import os
from datetime import datetime, timedelta
from decimal import Decimal

from fulfillment import services as fulfilment
from fulfillment.models import Carrier, CarrierKind, CarrierRule, Shipment, ShipmentStatus, WarehouseRule
from inventory.models import StockLevel, Warehouse
from orders.models import Order, Priority
from pipeline import shipping

# (code, name, kind, services, first kg, each further kg)
CARRIERS = [
    ("SF", "顺丰速运", CarrierKind.SF, ["standard", "express", "next_morning"], "18.00", "6.00"),
    ("YTO", "圆通速递", CarrierKind.MANUAL, ["standard"], "5.50", "2.00"),
    ("ZTO", "中通快递", CarrierKind.MANUAL, ["standard"], "5.00", "2.50"),
    ("USPS", "USPS", CarrierKind.MANUAL, ["standard", "express"], "35.00", "12.00"),
]
SF_SANDBOX_PORT = int(os.environ.get("OMS_SF_SANDBOX_PORT", "8805"))


def fulfilment_load() -> int:
    """Carriers (SF talks to the local SF-like sandbox), a few routing rules and bin locations."""
    created = 0
    for code, name, kind, offered, first, extra in CARRIERS:
        config = ({"base_url": f"http://127.0.0.1:{SF_SANDBOX_PORT}", "partner_id": "OMS_DEMO",
                   "checkword": "sandbox-checkword"} if kind == CarrierKind.SF else {})
        _carrier, new = Carrier.objects.get_or_create(code=code, defaults={
            "name": name, "kind": kind, "services": offered, "cost_first_kg": Decimal(first),
            "cost_extra_kg": Decimal(extra), "config": config})
        created += new
    carriers = {c.code: c for c in Carrier.objects.all()}
    if not CarrierRule.objects.exists():
        CarrierRule.objects.create(name="VIP 一律顺丰次晨", position=10, priorities=[Priority.VIP],
                                   carrier=carriers["SF"], service="next_morning")
        CarrierRule.objects.create(name="美国订单走 USPS", position=20, countries=["US"], carrier=carriers["USPS"])
        CarrierRule.objects.create(name="承诺次晨达走顺丰", position=30, services=["next_morning", "express"],
                                   carrier=carriers["SF"], service="express")
    if not WarehouseRule.objects.exists():
        WarehouseRule.objects.create(name="海外订单走新泽西仓", position=10, countries=["US"],
                                     warehouse=Warehouse.objects.get(code="US-NJ"))
        WarehouseRule.objects.create(name="华南订单走广州仓", position=20, provinces=["广东省", "广西壮族自治区",
                                                                                "福建省", "海南省"],
                                     warehouse=Warehouse.objects.get(code="GZ"))
    for index, level in enumerate(StockLevel.objects.filter(location="").select_related("warehouse")
                                  .order_by("warehouse_id", "sku__code")):
        level.location = f"{'ABC'[index % 3]}-{index // 3 % 12 + 1:02d}-{index % 4 + 1}"
        level.save(update_fields=["location"])
    return created


def order_parcels(order_id: int, *statuses: str) -> list[int]:
    return list(Shipment.objects.filter(lines__order_id=order_id, status__in=statuses).distinct()
                .order_by("pk").values_list("pk", flat=True))


def parcel_ship(shipment_id: int, actor_label: str) -> None:
    """Pick, scan every item, pack and ship with a made-up tracking number (no carrier runs yet)."""
    parcel = Shipment.objects.select_related("carrier").get(pk=shipment_id)
    if parcel.status == ShipmentStatus.TO_PICK:
        shipping.shipment_start_picking(shipment_id=shipment_id, actor_label=actor_label)
    for line in parcel.lines.select_related("sku"):
        for _unit in range(line.quantity - line.verified_quantity):
            fulfilment.shipment_scan_item(shipment_id=shipment_id, barcode=line.sku.code)
    shipping.shipment_pack(shipment_id=shipment_id)
    code = parcel.carrier.code if parcel.carrier else "YT"
    digits = f"{int(hashlib.sha1(parcel.number.encode()).hexdigest(), 16) % 10**12:012d}"
    shipping.shipment_ship(shipment_id=shipment_id, tracking_number=f"{code}{digits}"[:20])


def parcels_start_picking(*, order_id: int, actor_label: str) -> Order:
    for shipment_id in order_parcels(order_id, ShipmentStatus.TO_PICK):
        shipping.shipment_start_picking(shipment_id=shipment_id, actor_label=actor_label)
    return Order.objects.get(pk=order_id)


def parcel_ship_first_line(*, order_id: int, actor_label: str) -> Order:
    """A part ships first: the first line goes into a parcel of its own, which ships."""
    for shipment_id in order_parcels(order_id, ShipmentStatus.TO_PICK, ShipmentStatus.PICKING):
        parcel = Shipment.objects.get(pk=shipment_id)
        first = parcel.lines.order_by("order_line__line_no", "pk").first()
        if parcel.lines.count() < 2 or first is None:
            continue
        if parcel.status == ShipmentStatus.PICKING:
            fulfilment.shipment_unpick(shipment_id=shipment_id)
        part = fulfilment.shipment_split(shipment_id=shipment_id, quantities={first.pk: first.quantity},
                                         reason="部分商品缺货，先发有货商品")
        parcel_ship(part.pk, actor_label)
        shipping.shipment_start_picking(shipment_id=shipment_id, actor_label=actor_label)
        break
    return Order.objects.get(pk=order_id)


def parcels_ship(*, order_id: int, actor_label: str) -> Order:
    for shipment_id in order_parcels(order_id, ShipmentStatus.TO_PICK, ShipmentStatus.PICKING):
        parcel_ship(shipment_id, actor_label)
    return Order.objects.get(pk=order_id)


def parcels_deliver(*, order_id: int, actor_label: str) -> Order:
    for shipment_id in order_parcels(order_id, ShipmentStatus.SHIPPED):
        shipping.shipment_deliver(shipment_id=shipment_id, actor_label=actor_label)
    return Order.objects.get(pk=order_id)


def parcels_backdate(order: Order, *, now: datetime) -> None:
    """Demo orders are placed days ago; their parcels get times that fit (the kanban shows ages and
    shipping times), instead of all being made and shipped "just now"."""
    start = order.paid_at or order.placed_at
    shipped = min(start + timedelta(hours=20), now)
    for parcel in Shipment.objects.filter(lines__order=order).distinct():
        values = {"created_at": start}
        if parcel.status in (ShipmentStatus.SHIPPED, ShipmentStatus.DELIVERED):
            values.update(picked_at=shipped - timedelta(hours=2), packed_at=shipped - timedelta(hours=1),
                          shipped_at=shipped)
        if parcel.status == ShipmentStatus.DELIVERED:
            values["delivered_at"] = min(shipped + timedelta(days=2), now)
        Shipment.objects.filter(pk=parcel.pk).update(**values)

