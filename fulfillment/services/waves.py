"""Waves: batches of waiting parcels picked together."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from fulfillment.exceptions import MoveRefused, RoutingInvalid, ShipmentNotFound
from fulfillment.models import (
    Carrier,
    Shipment,
    ShipmentLine,
    ShipmentStatus,
    Wave,
)
from fulfillment.services.moves import shipment_start_picking
from oms.locks import lock_many, lock_one
from oms.sequences import next_sequence_value
from orders.models import Order

SS = ShipmentStatus


# --- Waves ----------------------------------------------------------------------------------------

def wave_number_next() -> str:
    return f"W{next_sequence_value('wave_number')}"


def wave_create(*, shipment_ids: list[int], actor=None, description: str = "") -> Wave:
    """Batch parcels of one warehouse that are waiting to be picked into a wave."""
    ids = sorted(set(shipment_ids))
    if not ids:
        raise RoutingInvalid(_("Choose the parcels for the wave."), code="wave_empty")
    with transaction.atomic():
        shipments = lock_many(Shipment, ids)
        if len(shipments) != len(ids):
            raise ShipmentNotFound(_("A parcel of the wave does not exist."))
        if len({s.warehouse_id for s in shipments}) != 1:
            raise RoutingInvalid(_("A wave picks in one warehouse only."), code="wave_invalid")
        busy = [s.number for s in shipments if s.status != SS.TO_PICK or s.wave_id]
        if busy:
            raise MoveRefused(_("Already picking or in a wave: %(numbers)s.") % {"numbers": ", ".join(busy)},
                              code="wave_refused")
        wave = Wave.objects.create(number=wave_number_next(), warehouse_id=shipments[0].warehouse_id,
                                   description=description[:200], created_by=actor)
        Shipment.objects.filter(pk__in=ids).update(wave=wave)
        return wave


def wave_create_by_rule(*, warehouse_id: int, carrier_id: int | None = None, province: str = "", limit: int = 50,
                        actor=None) -> Wave:
    """The rule version: parcels waiting in the warehouse, of one carrier and/or area, most urgent first, up to N."""
    if not 1 <= limit <= 500:
        raise RoutingInvalid(_("A wave holds 1 to 500 parcels."), code="wave_invalid")
    query = Shipment.objects.filter(warehouse_id=warehouse_id, status=SS.TO_PICK, wave__isnull=True)
    if carrier_id:
        query = query.filter(carrier_id=carrier_id)
    if province:
        query = query.filter(receiver_province=province)
    ids = list(query.order_by("-priority", "sla_due_at", "pk").values_list("pk", flat=True)[:limit])
    if not ids:
        raise RoutingInvalid(_("No parcel waiting to be picked matches."), code="wave_empty")
    parts = [p for p in [Carrier.objects.filter(pk=carrier_id).values_list("code", flat=True).first()
                         if carrier_id else "", province] if p]
    return wave_create(shipment_ids=ids, actor=actor, description=" · ".join(parts))


def wave_start(*, wave_id: int, actor=None) -> Wave:
    """Print-and-pick: every parcel of the wave still waiting moves to picking."""
    with transaction.atomic():
        wave = lock_one(Wave, wave_id)
        if wave.status != Wave.Status.OPEN:
            raise MoveRefused(_("Wave %(number)s has already started.") % {"number": wave.number},
                              code="wave_started")
        # Every order of the wave is locked up front, in one ascending sweep, so starting parcel after
        # parcel never takes order locks out of order.
        lock_many(Order, ShipmentLine.objects.filter(shipment__wave=wave).values_list("order_id", flat=True))
        for shipment_id in wave.shipments.filter(status=SS.TO_PICK).order_by("pk").values_list("pk", flat=True):
            shipment_start_picking(shipment_id=shipment_id, actor=actor)
        wave.status, wave.started_at = Wave.Status.PICKING, timezone.now()
        wave.save(update_fields=["status", "started_at", "updated_at"])
        return wave
