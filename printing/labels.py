"""What goes on a label or a pick list: reads a parcel or a wave into the renderers' plain data."""

from __future__ import annotations

from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import override

from fulfillment.carriers.formatting import customer_tracking
from fulfillment.models import ServiceLevel, Shipment, Wave
from fulfillment.selectors import wave_pick_list
from oms.pii import mask_phone
from orders.models import Priority
from printing.renderers import LabelData, PickListData

# Labels are read by Chinese couriers and packers whatever language the person printing uses.
LABEL_LANGUAGE = "zh-hans"


def now_text() -> str:
    return timezone.localtime().strftime("%Y-%m-%d %H:%M")


def label_data(shipment: Shipment) -> LabelData:
    lines = list(shipment.lines.select_related("order", "sku").order_by("pk"))
    order = lines[0].order if lines else None
    display, url = customer_tracking(shipment.carrier.code if shipment.carrier else "", shipment.tracking_number)
    items: dict[str, int] = {}
    for line in lines:
        items[line.sku.code] = items.get(line.sku.code, 0) + line.quantity
    warehouse = shipment.warehouse
    with override(LABEL_LANGUAGE):
        service = str(ServiceLevel(shipment.service_level).label) if shipment.service_level in ServiceLevel.values \
            else shipment.service_level
        mark = {Priority.VIP: "VIP", Priority.HIGH: _("Urgent")}.get(shipment.priority, "")
    return LabelData(
        carrier_name=shipment.carrier.name if shipment.carrier else "",
        carrier_code=shipment.carrier.code if shipment.carrier else "",
        service=service, tracking_number=shipment.tracking_number, tracking_display=display, tracking_url=url,
        handover_code=shipment.handover_code,
        sender_name=warehouse.name, sender_phone=warehouse.contact_phone, sender_address=warehouse.address,
        receiver_name=order.receiver_name if order else "",
        receiver_phone_masked=mask_phone(order.receiver_phone) if order else "",
        receiver_address=_address(order) if order else "",
        items=tuple(sorted(items.items())), order_numbers=shipment.order_numbers, parcel_number=shipment.number,
        priority_mark=mark, printed_at=now_text(),
    )


def _address(order) -> str:
    """Province, city, district and street; a municipality's city repeats its province (上海市 上海市): once."""
    parts: list[str] = []
    for part in (order.receiver_province, order.receiver_city, order.receiver_district, order.receiver_address):
        part = (part or "").strip()
        if part and (not parts or parts[-1] != part):
            parts.append(part)
    return " ".join(parts)


def pick_list_data(wave: Wave) -> PickListData:
    rows = wave_pick_list(wave)
    return PickListData(
        wave_number=wave.number, warehouse_name=wave.warehouse.name, description=wave.description,
        rows=tuple(rows),
        parcels=wave.shipments.exclude(status="cancelled").count(), printed_at=now_text(),
    )
