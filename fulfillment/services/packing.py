"""Scan-to-verify packing: find the parcel, count each scanned item, pack only when every line is verified."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NoReturn

from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from fulfillment import events
from fulfillment.carriers.formatting import normalize_tracking_number
from fulfillment.exceptions import PackingRefused, ScanRefused, ShipmentNotFound
from fulfillment.models import (
    Shipment,
    ShipmentLine,
    ShipmentStatus,
)
from fulfillment.services.common import _apply, _lock_shipment_with_orders, _require_workable_orders
from oms.locks import lock_one

SS = ShipmentStatus
# A weighed parcel may differ from the sum of its SKU weights by this much (packing material).
WEIGHT_TOLERANCE_GRAMS = 50
WEIGHT_TOLERANCE_RATIO = 0.10


# --- Packing --------------------------------------------------------------------------------------

def shipment_find_for_scan(*, code: str) -> Shipment:
    """The parcel a packer scanned: by shipment number or by tracking number."""
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


def shipment_mark_packed(*, shipment_id: int, actor=None, weight_grams: int | None = None) -> Shipment:
    """Close the parcel: every line must be scanned, and a weight, when given, must match the expected one.
    (pipeline.shipping.shipment_pack then asks the carrier for the waybill after commit.)"""
    if weight_grams is not None:
        _check_weight(shipment_id=shipment_id, weight_grams=weight_grams, actor=actor)
    with transaction.atomic():
        shipment, orders = _lock_shipment_with_orders(shipment_id)
        if shipment.status == SS.PACKED:
            raise PackingRefused(_("Parcel %(number)s is already packed.") % {"number": shipment.number},
                                 code="already_packed")
        if shipment.status == SS.PICKING:
            _require_workable_orders(shipment, orders)
        missing = missing_items(shipment) if shipment.status == SS.PICKING else []
        if missing:
            raise PackingRefused(_("Not every item is scanned: %(missing)s missing. Scan them at the packing station.")
                                 % {"missing": ", ".join(f"{m['sku']} × {m['missing']}" for m in missing)},
                                 code="items_missing", data={"missing": missing})
        if weight_grams is not None:
            shipment.measured_weight_grams = weight_grams
        shipment.packed_at = timezone.now()
        _apply(shipment, "pack", actor=actor, extra_fields=("packed_at", "measured_weight_grams"))
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

