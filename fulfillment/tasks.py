"""Celery tasks of fulfilment: waybills, tracking pulls, the stale-parcel alert and customer notifications."""

from celery import shared_task

from fulfillment import notifications, tracking
from fulfillment.exceptions import CarrierUnavailable, RoutingInvalid
from fulfillment.models import Shipment
from pipeline import shipping


@shared_task(bind=True, acks_late=True, ignore_result=True, max_retries=8)
def request_waybill_task(self, *, shipment_id: int) -> str:
    """Get the tracking number of a packed parcel ahead of shipping (the label prints from it)."""
    if not Shipment.objects.filter(pk=shipment_id).exists():
        return "skipped"
    try:
        return shipping.shipment_request_waybill(shipment_id=shipment_id).tracking_number
    except CarrierUnavailable as exc:
        raise self.retry(exc=exc, countdown=min(30 * 2 ** self.request.retries, 900)) from exc
    except RoutingInvalid as exc:  # no longer needed (cancelled, shipped) or refused: a person sees the parcel
        return exc.code


@shared_task(bind=True, acks_late=True, ignore_result=True, max_retries=10)
def cancel_waybill_task(self, *, shipment_id: int) -> None:
    if not tracking.shipment_cancel_waybill(shipment_id=shipment_id):
        raise self.retry(countdown=min(60 * 2 ** self.request.retries, 3600))


@shared_task(acks_late=True, ignore_result=True)
def sweep_waybill_voids_task() -> int:
    due = tracking.waybills_to_void()
    for shipment_id in due:
        cancel_waybill_task.delay(shipment_id=shipment_id)
    return len(due)


@shared_task(acks_late=True, ignore_result=True)
def pull_tracking_task() -> dict:
    return shipping.shipments_pull_tracking()


@shared_task(acks_late=True, ignore_result=True)
def flag_stale_tracking_task() -> int:
    return tracking.shipments_flag_stale_tracking()


@shared_task(acks_late=True, ignore_result=True)
def send_notification_task(*, notification_id: int) -> str:
    return notifications.notification_send(notification_id=notification_id)


@shared_task(acks_late=True, ignore_result=True)
def sweep_notifications_task() -> int:
    due = notifications.notifications_due()
    for notification_id in due:
        send_notification_task.delay(notification_id=notification_id)
    return len(due)
