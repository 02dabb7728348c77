"""Helpers of the fulfilment tests: walk a parcel along, take a picture of the stock."""

from contextlib import contextmanager

from django.db.models import Sum

from fulfillment import services
from fulfillment.carriers.sf_sandbox import SFSandbox
from fulfillment.models import Carrier, CarrierKind, Shipment
from inventory.models import Reservation, StockLevel, StockMovement
from pipeline import shipping


def parcel_of(order) -> Shipment:
    return Shipment.objects.filter(lines__order=order).distinct().get()


def scan_all(shipment: Shipment) -> None:
    for line in shipment.lines.select_related("sku"):
        for _unit in range(line.quantity - line.verified_quantity):
            services.shipment_scan_item(shipment_id=shipment.pk, barcode=line.sku.barcode)


def ship_parcel(shipment: Shipment, *, tracking: str = "YT1000000001") -> Shipment:
    """Pick, scan every item, pack and ship with a typed tracking number (manual carrier)."""
    shipping.shipment_start_picking(shipment_id=shipment.pk)
    scan_all(shipment)
    shipping.shipment_pack(shipment_id=shipment.pk)
    return shipping.shipment_ship(shipment_id=shipment.pk, tracking_number=tracking)


def stock_picture() -> dict:
    """Counters, ledger sums and active reservations per (warehouse, SKU): what merge/split must not change."""
    levels = {(lv.warehouse_id, lv.sku_id): (lv.on_hand, lv.reserved) for lv in StockLevel.objects.all()}
    ledger = {(r["warehouse_id"], r["sku_id"]): (r["on_hand"], r["reserved"]) for r in
              StockMovement.objects.values("warehouse_id", "sku_id").annotate(on_hand=Sum("on_hand_delta"),
                                                                             reserved=Sum("reserved_delta"))}
    held = {(r["warehouse_id"], r["sku_id"]): r["q"] for r in
            Reservation.objects.filter(status="active").values("warehouse_id", "sku_id").annotate(q=Sum("quantity"))}
    return {"levels": levels, "ledger": ledger, "held": held, "movements": StockMovement.objects.count()}


@contextmanager
def sf_carrier(warehouse, *, seed: int):
    """A running SF sandbox and the SF carrier pointed at it, the warehouse given a sender address."""
    warehouse.address, warehouse.contact_phone = "上海市青浦区华新镇 88 号", "021-60000000"
    warehouse.save()
    sandbox = SFSandbox(port=0, seed=seed)
    sandbox.start()
    try:
        carrier = Carrier.objects.create(code="SF", name="顺丰速运", kind=CarrierKind.SF, cost_first_kg=1,
                                         services=["standard", "express", "next_morning"],
                                         config=sandbox.adapter_config())
        yield sandbox, carrier
    finally:
        sandbox.stop()
