"""Carrier calls for shipments: waybills (tracking numbers and label data), tracking pulls and the
stale-parcel alert. Network calls happen here, outside transactions; results are saved under a lock.
What the news means for the orders (a delivery) and the voiding of a late waybill are pipeline.shipping's."""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from fulfillment import events
from fulfillment.carriers import adapter_for
from fulfillment.carriers.base import (
    Address,
    CarrierAuthError,
    CarrierError,
    CarrierPermanentError,
    CarrierTransientError,
    WaybillRequest,
)
from fulfillment.exceptions import CarrierUnavailable, RoutingInvalid
from fulfillment.models import CarrierKind, Shipment, ShipmentStatus, TrackingEvent
from oms.locks import lock_one

logger = logging.getLogger(__name__)
SS = ShipmentStatus
# A parcel that may still get a waybill: not yet handed over, not cancelled.
WAYBILL_STATES = (SS.TO_PICK, SS.PICKING, SS.PACKED)
# Numbers asked per tracking query (the SF-like API takes a list).
TRACKING_BATCH = 20


def _waybill_request(shipment: Shipment) -> WaybillRequest:
    line = shipment.lines.select_related("order", "sku").order_by("pk")
    first_order = line[0].order if line else None
    warehouse = shipment.warehouse
    receiver = Address(
        name=first_order.receiver_name if first_order else "", phone=first_order.receiver_phone if first_order else "",
        province=first_order.receiver_province if first_order else "", city=first_order.receiver_city if first_order else "",
        district=first_order.receiver_district if first_order else "",
        address=first_order.receiver_address if first_order else "",
        country=first_order.receiver_country if first_order else "CN")
    sender = Address(name=warehouse.name, phone=warehouse.contact_phone, province="", city="", district="",
                     address=warehouse.address, country=warehouse.country)
    items = tuple((item.sku.name[:60], item.quantity) for item in line)
    return WaybillRequest(order_ref=shipment.number, sender=sender, receiver=receiver,
                          weight_grams=shipment.measured_weight_grams or shipment.expected_weight_grams or 1,
                          service=shipment.service_level, items=items)


def shipment_request_waybill(*, shipment_id: int) -> Shipment:
    """Ask the shipment's carrier for a waybill. Our shipment number is the carrier's order key, so asking
    again after a lost answer returns the waybill the carrier already made (the adapter recovers it: SF
    refuses the repeat with 8016), never a second one; the event says when a waybill was recovered."""
    shipment = Shipment.objects.select_related("carrier", "warehouse").get(pk=shipment_id)
    if shipment.tracking_number:
        return shipment
    if shipment.status not in WAYBILL_STATES:
        raise RoutingInvalid(_("Parcel %(number)s is %(status)s: it needs no waybill.") % {
            "number": shipment.number, "status": shipment.get_status_display()}, code="waybill_not_needed")
    if shipment.carrier is None or shipment.carrier.kind == CarrierKind.MANUAL:
        raise RoutingInvalid(_("Parcel %(number)s has no carrier with an API: scan or type its number.") % {
            "number": shipment.number}, code="tracking_required")
    try:
        adapter = adapter_for(shipment.carrier.kind, shipment.carrier.config)
        waybill = adapter.create_waybill(_waybill_request(shipment))
    except CarrierTransientError as exc:
        raise CarrierUnavailable(_("%(carrier)s did not answer; try again in a moment (%(error)s).") % {
            "carrier": shipment.carrier.name, "error": exc.message}) from exc
    except CarrierError as exc:  # refused (address, credentials): a person must look
        raise RoutingInvalid(_("%(carrier)s refused the waybill: %(error)s") % {
            "carrier": shipment.carrier.name, "error": exc.message}, code="waybill_refused") from exc
    with transaction.atomic():
        locked = lock_one(Shipment, shipment_id)
        if locked.tracking_number:
            return locked
        locked.tracking_number = waybill.tracking_number
        locked.handover_code = waybill.handover_code
        locked.label_data = waybill.label
        try:
            with transaction.atomic():
                locked.save(update_fields=["tracking_number", "handover_code", "label_data", "updated_at"])
        except IntegrityError as exc:
            raise RoutingInvalid(_("The carrier returned a number another parcel already has."),
                                 code="tracking_duplicate") from exc
        events.event_shipment_waybill(shipment=locked, tracking_number=waybill.tracking_number,
                                      source=f"carrier:{shipment.carrier.code}", recovered=waybill.recovered)
        # Cancelled while the carrier was being asked: the waybill is kept on record, and the caller
        # (pipeline.shipping) sees waybill_needs_void() and has it voided.
        return locked


def waybill_needs_void(shipment: Shipment) -> bool:
    """A cancelled parcel that holds an API carrier's waybill not voided yet."""
    return (shipment.status == SS.CANCELLED and bool(shipment.tracking_number) and not shipment.waybill_voided_at
            and shipment.carrier_id is not None and shipment.carrier.kind != CarrierKind.MANUAL)


def shipment_cancel_waybill(*, shipment_id: int) -> bool:
    """Tell the carrier a cancelled parcel's waybill is void. Returns False when it must be retried."""
    shipment = Shipment.objects.select_related("carrier").get(pk=shipment_id)
    if (shipment.status != SS.CANCELLED or not shipment.tracking_number or shipment.carrier is None
            or shipment.waybill_voided_at or shipment.carrier.kind == CarrierKind.MANUAL):
        return True
    try:
        # The carrier cancels by its order key, our shipment number (SF refuses a cancel without it).
        adapter_for(shipment.carrier.kind, shipment.carrier.config).cancel_waybill(
            shipment.tracking_number, order_ref=shipment.number)
    except CarrierTransientError:
        return False
    except CarrierPermanentError as exc:  # e.g. already picked up: nothing more the hub can do
        logger.warning("waybill %s of %s not cancelled: %s", shipment.tracking_number, shipment.number, exc.message)
    Shipment.objects.filter(pk=shipment.pk).update(waybill_voided_at=timezone.now())
    return True


def waybills_to_void(*, limit: int = 200) -> list[int]:
    """Cancelled parcels whose API waybill is not voided yet (the sweeper retries them)."""
    return list(Shipment.objects.filter(status=SS.CANCELLED, waybill_voided_at__isnull=True, carrier__isnull=False)
                .exclude(tracking_number="").exclude(carrier__kind=CarrierKind.MANUAL)
                .order_by("pk").values_list("pk", flat=True)[:limit])


def _save_events(shipment_id: int, found: list, now) -> Shipment | None:
    with transaction.atomic():
        shipment = lock_one(Shipment, shipment_id)
        known = set(shipment.tracking_events.values_list("occurred_at", "code"))
        new = [e for e in found if (e.occurred_at, e.code) not in known]
        TrackingEvent.objects.bulk_create([
            TrackingEvent(shipment=shipment, occurred_at=e.occurred_at, code=e.code[:20],
                          description=e.description[:300], location=e.location[:100]) for e in new],
            ignore_conflicts=True)
        fields = ["tracking_checked_at", "updated_at"]
        shipment.tracking_checked_at = now
        if new:
            shipment.last_tracking_at = max(e.occurred_at for e in found)
            fields.append("last_tracking_at")
            if shipment.tracking_stale_since and shipment.last_tracking_at > shipment.tracking_stale_since:
                shipment.tracking_stale_since = None  # it moves again
                fields.append("tracking_stale_since")
            latest = max(new, key=lambda e: e.occurred_at)
            events.event_shipment_tracking(shipment=shipment, count=len(new),
                                           latest=f"{latest.code}: {latest.description}")
        shipment.save(update_fields=fields)
        return shipment if new else None


@dataclass
class TrackingNews:
    """What a carrier said about one parcel in transit that its flow must act on."""

    shipment_id: int
    number: str
    carrier_code: str
    delivered_at: datetime | None = None  # the carrier reports it delivered (at its latest such checkpoint)
    problem: str = ""  # the carrier reports a new problem, in its words


def shipments_query_tracking(*, now=None, shipment_ids: list[int] | None = None) -> tuple[dict, list[TrackingNews]]:
    """Ask the carriers for news of parcels in transit and save their checkpoints. Returns the counts and the
    news to act on (deliveries, problems), which pipeline.shipping.shipments_pull_tracking applies."""
    now = now or timezone.now()
    query = Shipment.objects.filter(status=SS.SHIPPED, carrier__isnull=False).exclude(tracking_number="").exclude(
        carrier__kind=CarrierKind.MANUAL).select_related("carrier")
    if shipment_ids is not None:
        query = query.filter(pk__in=shipment_ids)
    by_carrier: dict[int, list[Shipment]] = defaultdict(list)
    for shipment in query.order_by("tracking_checked_at", "pk")[:2000]:
        by_carrier[shipment.carrier_id].append(shipment)
    stats = {"checked": 0, "updated": 0, "delivered": 0, "exceptions": 0, "errors": 0}
    news: list[TrackingNews] = []
    for shipments in by_carrier.values():
        carrier = shipments[0].carrier
        for start in range(0, len(shipments), TRACKING_BATCH):
            batch = {s.tracking_number: s for s in shipments[start:start + TRACKING_BATCH]}
            try:  # a carrier with broken settings fails here alone; the other carriers go on
                found = adapter_for(carrier.kind, carrier.config).query_tracking(list(batch))
            except (CarrierTransientError, CarrierAuthError, CarrierPermanentError) as exc:
                stats["errors"] += 1
                logger.warning("tracking query to %s failed: %s", carrier.code, exc.message)
                continue
            for number, shipment in batch.items():
                stats["checked"] += 1
                events_of = found.get(number, [])
                updated = _save_events(shipment.pk, events_of, now)
                stats["updated"] += updated is not None
                delivered = [e.occurred_at for e in events_of if e.code == "delivered"]
                # Decided from every checkpoint the carrier reports, not only the new ones: a
                # delivery saved by a sweep that failed before delivering is picked up again.
                if delivered:
                    news.append(TrackingNews(shipment_id=shipment.pk, number=shipment.number, carrier_code=carrier.code,
                                             delivered_at=max(delivered)))
                elif updated is not None and events_of and events_of[-1].code == "exception":
                    news.append(TrackingNews(shipment_id=shipment.pk, number=shipment.number, carrier_code=carrier.code,
                                             problem=events_of[-1].description or _("Carrier reported a problem.")))
    return stats, news


def shipments_flag_stale_tracking(*, now=None, days: int | None = None) -> int:
    """Parcels in transit with no tracking update for ``days`` (default from settings, 7) raise an
    alert for customer service, once per silence."""
    now = now or timezone.now()
    days = days if days is not None else settings.OMS_TRACKING_STALE_DAYS
    cutoff = now - timedelta(days=days)
    stale = Shipment.objects.filter(status=SS.SHIPPED, tracking_stale_since__isnull=True).filter(
        Q(last_tracking_at__lt=cutoff) | Q(last_tracking_at__isnull=True, shipped_at__lt=cutoff))
    flagged = 0
    for shipment_id in stale.order_by("pk").values_list("pk", flat=True)[:5000]:
        with transaction.atomic():
            shipment = lock_one(Shipment, shipment_id)
            if shipment.status != SS.SHIPPED or shipment.tracking_stale_since:
                continue
            since = shipment.last_tracking_at or shipment.shipped_at
            shipment.tracking_stale_since = since
            shipment.save(update_fields=["tracking_stale_since", "updated_at"])
            events.event_shipment_tracking_stale(shipment=shipment, days=days, since=since.isoformat())
            flagged += 1
    return flagged
