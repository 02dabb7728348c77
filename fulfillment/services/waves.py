"""Waves: batches of waiting parcels picked together; held parcels stay out, a wave can drop one or be cancelled."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from fulfillment import events
from fulfillment.exceptions import MoveRefused, RoutingInvalid, ShipmentNotFound
from fulfillment.models import (
    Carrier,
    Shipment,
    ShipmentLine,
    ShipmentStatus,
    Wave,
)
from fulfillment.selectors import shipment_held_q, shipment_holds
from fulfillment.services.moves import ParcelMoved, shipment_mark_picking
from oms.locks import lock_many, lock_one
from oms.sequences import next_sequence_value
from orders.models import Order

SS = ShipmentStatus
# A parcel may leave a wave while nobody has its goods in hand yet: still to pick, set aside as an
# exception, or cancelled. A parcel being picked or packed stays: its goods are on the pick list in a basket.
REMOVABLE_STATES = (SS.TO_PICK, SS.EXCEPTION, SS.CANCELLED)


@dataclass
class WaveStarted:
    """What starting a wave did: the parcels now being picked, and the ones it left waiting, with why."""

    wave: Wave
    started: list[str] = field(default_factory=list)
    held: list[str] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    # Each started parcel with its orders, for the order side of picking (pipeline.shipping.wave_start).
    picking: list[ParcelMoved] = field(default_factory=list)


# --- Waves ----------------------------------------------------------------------------------------

def wave_number_next() -> str:
    return f"W{next_sequence_value('wave_number')}"


def wave_create(*, shipment_ids: list[int], actor=None, description: str = "") -> Wave:
    """Batch parcels of one warehouse that are waiting to be picked into a wave; a held parcel is refused."""
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
        # Chosen by hand, so said rather than dropped: the person sees which parcels wait for their order.
        held = list(Shipment.objects.filter(shipment_held_q(), pk__in=ids).order_by("number")
                    .values_list("number", flat=True))
        if held:
            raise MoveRefused(_("Their order is on hold, so they cannot be picked: %(numbers)s.") % {
                "numbers": ", ".join(held)}, code="wave_held", data={"shipments": held})
        wave = Wave.objects.create(number=wave_number_next(), warehouse_id=shipments[0].warehouse_id,
                                   description=description[:200], created_by=actor)
        Shipment.objects.filter(pk__in=ids).update(wave=wave)
        return wave


def wave_create_by_rule(*, warehouse_id: int, carrier_id: int | None = None, province: str = "", limit: int = 50,
                        actor=None) -> Wave:
    """The rule version: parcels waiting in the warehouse, of one carrier and/or area, most urgent first, up to N.
    Parcels whose order is on hold are skipped: a wave is work that can be done now."""
    if not 1 <= limit <= 500:
        raise RoutingInvalid(_("A wave holds 1 to 500 parcels."), code="wave_invalid")
    query = Shipment.objects.filter(warehouse_id=warehouse_id, status=SS.TO_PICK, wave__isnull=True).exclude(
        shipment_held_q())
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


def wave_remove_shipment(*, wave_id: int, shipment_id: int, actor=None, reason: str = "") -> Shipment:
    """Drop a parcel from a wave (open or started) while nobody has its goods in hand; it waits again on its own."""
    with transaction.atomic():
        wave = lock_one(Wave, wave_id)
        try:
            shipment = lock_one(Shipment, shipment_id)
        except Shipment.DoesNotExist:
            raise ShipmentNotFound(_("Shipment %(id)s does not exist.") % {"id": shipment_id}) from None
        if shipment.wave_id != wave.pk:
            raise MoveRefused(_("Parcel %(number)s is not in wave %(wave)s.") % {
                "number": shipment.number, "wave": wave.number}, code="wave_not_member")
        if wave.status in (Wave.Status.DONE, Wave.Status.CANCELLED):
            raise MoveRefused(_("Wave %(number)s is %(status)s: its parcels stay as they are.") % {
                "number": wave.number, "status": wave.get_status_display()}, code="wave_closed")
        if shipment.status not in REMOVABLE_STATES:
            raise MoveRefused(_("Parcel %(number)s is %(status)s: its goods are on the pick list already. "
                                "Put it back to pick first.") % {
                "number": shipment.number, "status": shipment.get_status_display()}, code="wave_parcel_busy")
        shipment.wave = None
        shipment.save(update_fields=["wave", "updated_at"])
        events.event_shipment_wave_removed(shipment=shipment, wave=wave.number, actor=actor, reason=reason)
        return shipment


def wave_cancel(*, wave_id: int, actor=None) -> Wave:
    """Cancel a wave while nothing of it was picked: its parcels go back to the waiting list.

    Allowed before the wave started, and after it started as long as no parcel of it is being picked or further
    on (e.g. every parcel was held when it started). Once goods are in a basket, cancelling the batch would
    leave them without their pick list: put those parcels back to pick first, or finish the wave.
    """
    with transaction.atomic():
        wave = lock_one(Wave, wave_id)
        if wave.status in (Wave.Status.DONE, Wave.Status.CANCELLED):
            raise MoveRefused(_("Wave %(number)s is %(status)s already.") % {
                "number": wave.number, "status": wave.get_status_display()}, code="wave_closed")
        shipments = lock_many(Shipment, wave.shipments.values_list("pk", flat=True))
        picked = [s.number for s in shipments if s.status not in REMOVABLE_STATES]
        if picked:
            raise MoveRefused(_("Wave %(wave)s cannot be cancelled: %(numbers)s are being picked or further on. "
                                "Put them back to pick first.") % {"wave": wave.number, "numbers": ", ".join(picked)},
                              code="wave_picked", data={"shipments": picked})
        for shipment in shipments:
            shipment.wave = None
            shipment.save(update_fields=["wave", "updated_at"])
            events.event_shipment_wave_cancelled(shipment=shipment, wave=wave.number, actor=actor)
        wave.status = Wave.Status.CANCELLED
        wave.save(update_fields=["status", "updated_at"])
        return wave


def wave_mark_started(*, wave_id: int, actor=None) -> WaveStarted:
    """Print-and-pick: every parcel of the wave that can be picked moves to picking; the others (their order on
    hold, or cancelled) stay out and are reported. With nothing to pick the wave is refused and stays open.
    The parcels' side only: pipeline.shipping.wave_start moves their orders into fulfilment."""
    with transaction.atomic():
        wave = lock_one(Wave, wave_id)
        if wave.status != Wave.Status.OPEN:
            raise MoveRefused(_("Wave %(number)s has already started.") % {"number": wave.number},
                              code="wave_started")
        # Every order of the wave is locked up front, in one ascending sweep, so starting parcel after
        # parcel never takes order locks out of order (and no hold can land between the check and the start).
        lock_many(Order, ShipmentLine.objects.filter(shipment__wave=wave).values_list("order_id", flat=True))
        result = WaveStarted(wave=wave)
        result.cancelled = list(wave.shipments.filter(status=SS.CANCELLED).order_by("number")
                                .values_list("number", flat=True))
        waiting = list(wave.shipments.filter(status=SS.TO_PICK).order_by("pk"))
        held_ids = set(wave.shipments.filter(shipment_held_q(), status=SS.TO_PICK).values_list("pk", flat=True))
        if not waiting:
            raise MoveRefused(_("Nothing in wave %(number)s waits to be picked.") % {"number": wave.number},
                              code="wave_nothing_to_pick")
        if len(held_ids) == len(waiting):
            raise MoveRefused(_("Nothing in wave %(number)s can be picked: every waiting parcel's order is on "
                                "hold. Remove those parcels or cancel the wave.") % {"number": wave.number},
                              code="wave_all_held")
        holds = shipment_holds(shipment_ids=sorted(held_ids))
        for shipment in waiting:
            if shipment.pk in held_ids:
                result.held.append(shipment.number)
                events.event_shipment_wave_skipped(shipment=shipment, wave=wave.number, why="held",
                                                   reason=holds.get(shipment.pk, ""), actor=actor)
                continue
            result.picking.append(shipment_mark_picking(shipment_id=shipment.pk, actor=actor))
            result.started.append(shipment.number)
        wave.status, wave.started_at = Wave.Status.PICKING, timezone.now()
        wave.save(update_fields=["status", "started_at", "updated_at"])
        return result
