"""The desk's order actions that cross apps: expedite (the order's priority and its parcels on the kanban)
and the resend of the shipping notification through the notification outbox."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from fulfillment.models import (
    CustomerNotification,
    NotificationStatus,
    Shipment,
    ShipmentLine,
    ShipmentStatus,
)
from fulfillment.notifications import notification_queue_shipped
from fulfillment.services.moves import shipments_expedite_of_order
from oms.effects import task_after_commit
from oms.exceptions import ConflictError
from orders.models import Order, Priority
from orders.services import order_lock, order_raise_priority

SEND_NOTIFICATION_TASK = "fulfillment.tasks.send_notification_task"
# A notification's kind column is 20 wide: "shipped#<n>" leaves room for any number of resends.
RESEND_KIND = "shipped#{n}"


@dataclass
class Expedited:
    order: Order
    priority_raised: bool
    parcels: list[Shipment]


def order_expedite(*, order_id: int, actor, reason: str = "") -> Expedited:
    """Hurry one order: its priority goes up to at least "high" and its parcels still in the warehouse become
    due now, which is what moves them up their kanban lane (the board sorts by ship-by time, not priority).
    One order event records both, with the parcels' new ship-by. Lock order: the order, then its parcels."""
    now = timezone.now()
    with transaction.atomic():
        order = order_lock(order_id)
        target = max(order.priority, Priority.HIGH)
        parcels = shipments_expedite_of_order(order_id=order.pk, due_at=now, priority=target)
        data = {"expedite": True, "parcels": [{"number": s.number, "ship_by": s.sla_due_at.isoformat()}
                                              for s in parcels]}
        order, raised = order_raise_priority(
            order_id=order.pk, priority=target, reason=reason or _("Expedite requested by customer service"),
            actor=actor, actor_label=getattr(actor, "username", "") or "system", data=data)
        if not raised and not parcels:
            raise ConflictError(_("Order %(number)s already has priority “%(priority)s” and no parcel left to move "
                                  "up: it is already expedited.") % {
                "number": order.number, "priority": order.get_priority_display()}, code="already_expedited")
    return Expedited(order=order, priority_raised=raised, parcels=parcels)


def order_resend_shipping_notification(*, order_id: int) -> list[CustomerNotification]:
    """Queue the "your parcel is on its way" message again for each parcel of the order that has left, as new
    outbox rows (the first ones stay as they were sent); each is sent after commit, and swept if that is lost."""
    with transaction.atomic():
        order = order_lock(order_id)
        shipment_ids = sorted(set(ShipmentLine.objects.filter(
            order_id=order.pk, shipment__status__in=[ShipmentStatus.SHIPPED, ShipmentStatus.DELIVERED])
            .values_list("shipment_id", flat=True)))
        if not shipment_ids:
            raise ConflictError(_("Order %(number)s has no parcel that has left: there is no shipping "
                                  "notification to send.") % {"number": order.number}, code="nothing_shipped")
        if not order.buyer_email.strip():
            raise ConflictError(_("Order %(number)s has no buyer e-mail address to send the notification to.")
                                % {"number": order.number}, code="no_email")
        queued = []
        for shipment in Shipment.objects.filter(pk__in=shipment_ids).select_related("carrier").order_by("pk"):
            sent_before = CustomerNotification.objects.filter(order=order, shipment=shipment,
                                                              kind__startswith="shipped").count()
            notification, _created = notification_queue_shipped(order=order, shipment=shipment,
                                                                kind=RESEND_KIND.format(n=sent_before + 1))
            if notification.status == NotificationStatus.QUEUED:
                task_after_commit(SEND_NOTIFICATION_TASK, notification_id=notification.pk)
            queued.append(notification)
    return queued
