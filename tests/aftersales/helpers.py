"""Helpers of the after-sales tests: ship an order through the real flows before its goods can come back."""

from fulfillment.models import Shipment, ShipmentStatus
from orders.models import Order, OrderStatus
from tests.fulfillment.helpers import ship_parcel


def ship_order(order: Order) -> Order:
    """Pick, scan, pack and ship every parcel of the order still to pick (typed tracking numbers, as the
    warehouse does); the order read back, shipped. A return, an exchange or a resend needs shipped units."""
    parcels = Shipment.objects.filter(lines__order=order, status=ShipmentStatus.TO_PICK).distinct().order_by("pk")
    for parcel in parcels:
        ship_parcel(parcel, tracking=f"YT3{parcel.pk:09d}")
    order.refresh_from_db()
    assert order.status == OrderStatus.SHIPPED, order.status
    return order
