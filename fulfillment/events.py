"""One function per shipment event type; each writes one ShipmentEvent row in the caller's transaction."""

from django.utils.translation import gettext as _

from fulfillment.models import Shipment, ShipmentEvent, ShipmentEventType
from oms.events import event_build, event_record, events_record_many


def _event(shipment: Shipment, type_: str, *, actor=None, actor_label: str = "system", reason: str = "",
           data: dict | None = None, from_status: str = "", to_status: str = "") -> ShipmentEvent:
    return event_record(ShipmentEvent, shipment=shipment, type=type_, reason=reason, data=data or {},
                        from_status=from_status or shipment.status, to_status=to_status or shipment.status,
                        actor=actor, actor_label=actor_label)


def event_shipment_created(*, shipment: Shipment, orders: list[str], actor=None, actor_label: str = "system"):
    return events_record_many([event_shipment_created_row(shipment=shipment, orders=orders, actor=actor,
                                                          actor_label=actor_label)])[0]


def event_shipment_created_row(*, shipment: Shipment, orders: list[str], actor=None, actor_label: str = "system"):
    """The "created" event unsaved, for a batch written with oms.events.events_record_many."""
    return event_build(ShipmentEvent, shipment=shipment, type=ShipmentEventType.CREATED, data={"orders": orders},
                       from_status=shipment.status, to_status=shipment.status, actor=actor, actor_label=actor_label)


def event_shipment_routed_row(*, shipment: Shipment, reason: str, carrier: str, service: str, rule: str):
    """The "routed" event unsaved, for a batch written with oms.events.events_record_many."""
    return event_build(ShipmentEvent, shipment=shipment, type=ShipmentEventType.ROUTED, reason=reason,
                       data={"carrier": carrier, "service": service, "rule": rule},
                       from_status=shipment.status, to_status=shipment.status, actor=None, actor_label="system")


def event_shipment_status_changed(*, shipment: Shipment, from_status: str, transition: str, actor=None,
                                  actor_label: str = "system", reason: str = "", data: dict | None = None):
    return _event(shipment, ShipmentEventType.STATUS_CHANGED, actor=actor, actor_label=actor_label, reason=reason,
                  from_status=from_status, data={"transition": transition, **(data or {})})


def event_shipment_routed(*, shipment: Shipment, reason: str, carrier: str, service: str, rule: str):
    return events_record_many([event_shipment_routed_row(shipment=shipment, reason=reason, carrier=carrier,
                                                         service=service, rule=rule)])[0]


def event_shipment_routing_overridden(*, shipment: Shipment, what: str, before: str, after: str, reason: str,
                                      actor=None):
    return _event(shipment, ShipmentEventType.ROUTING_OVERRIDDEN, actor=actor, reason=reason,
                  data={"what": what, "before": before, "after": after})


def event_shipment_merged(*, shipment: Shipment, other: str, orders: list[str], actor=None, actor_label="system",
                          reason: str = ""):
    return _event(shipment, ShipmentEventType.MERGED, actor=actor, actor_label=actor_label, reason=reason,
                  data={"other": other, "orders": orders})


def event_shipment_unmerged(*, shipment: Shipment, new_shipments: list[str], actor=None, reason: str = ""):
    return _event(shipment, ShipmentEventType.UNMERGED, actor=actor, reason=reason,
                  data={"new_shipments": new_shipments})


def event_shipment_split(*, shipment: Shipment, new_shipment: str, moved: list[dict], actor=None, reason: str = ""):
    return _event(shipment, ShipmentEventType.SPLIT, actor=actor, reason=reason,
                  data={"new_shipment": new_shipment, "moved": moved})


def event_shipment_scan_refused(*, shipment: Shipment, barcode: str, problem: str, message: str, actor=None):
    return _event(shipment, ShipmentEventType.SCAN_REFUSED, actor=actor, reason=message,
                  data={"barcode": barcode[:64], "problem": problem})


def event_shipment_waybill(*, shipment: Shipment, tracking_number: str, source: str, actor=None,
                           recovered: bool = False):
    """``recovered``: the carrier had made this waybill on an earlier call whose answer was lost."""
    data = {"tracking_number": tracking_number, "source": source}
    reason = ""
    if recovered:
        data["recovered"] = True
        reason = _("The carrier had already made this waybill on an earlier request whose answer was lost; "
                   "it was looked up and adopted, no second waybill was made.")
    return _event(shipment, ShipmentEventType.WAYBILL, actor=actor, actor_label=source, reason=reason, data=data)


def event_shipment_tracking(*, shipment: Shipment, count: int, latest: str):
    return _event(shipment, ShipmentEventType.TRACKING, actor_label="carrier", reason=latest,
                  data={"new_events": count})


def event_shipment_tracking_stale(*, shipment: Shipment, days: int, since: str):
    return _event(shipment, ShipmentEventType.TRACKING_STALE, actor_label="system",
                  data={"days": days, "since": since})


def event_shipment_weight_mismatch(*, shipment: Shipment, expected: int, measured: int, actor=None):
    return _event(shipment, ShipmentEventType.WEIGHT_MISMATCH, actor=actor,
                  data={"expected_grams": expected, "measured_grams": measured})


def event_shipment_wave_removed(*, shipment: Shipment, wave: str, actor=None, reason: str = ""):
    return _event(shipment, ShipmentEventType.WAVE_REMOVED, actor=actor, reason=reason, data={"wave": wave})


def event_shipment_wave_cancelled(*, shipment: Shipment, wave: str, actor=None):
    return _event(shipment, ShipmentEventType.WAVE_CANCELLED, actor=actor, data={"wave": wave})


def event_shipment_wave_skipped(*, shipment: Shipment, wave: str, why: str, reason: str, actor=None):
    return _event(shipment, ShipmentEventType.WAVE_SKIPPED, actor=actor, reason=reason,
                  data={"wave": wave, "why": why})
