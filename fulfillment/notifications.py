"""Customer notifications: queued as outbox rows in the shipping transaction, sent by a task (scheduled
after commit by pipeline.shipping), swept until done."""

from __future__ import annotations

import logging
import smtplib
from datetime import timedelta

from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from fulfillment.carriers.formatting import customer_tracking
from fulfillment.models import CustomerNotification, NotificationStatus, Shipment
from oms.leases import lease_claim_one
from orders.models import Order

logger = logging.getLogger(__name__)
MAX_ATTEMPTS = 8
SEND_LEASE = timedelta(minutes=2)


# The languages a buyer e-mail is written in: Chinese for receivers in China, English for everyone else
# (an overseas Shopify buyer cannot read Chinese, whatever language the seller's screen is in).
BUYER_LANGUAGE_BY_COUNTRY = {"CN": "zh-hans"}
BUYER_DEFAULT_LANGUAGE = "en"


def buyer_language(*, order: Order) -> str:
    """The language of the buyer's messages, from the receiver's country (ISO code)."""
    return BUYER_LANGUAGE_BY_COUNTRY.get((order.receiver_country or "").strip().upper(), BUYER_DEFAULT_LANGUAGE)


def notification_queue_shipped(*, order: Order, shipment: Shipment,
                               kind: str = "shipped") -> tuple[CustomerNotification, bool]:
    """Write the "your parcel is on its way" message for the buyer; returns it and whether this call wrote
    it (like get_or_create). The caller schedules the send of a new queued one after commit; the sweeper
    sends what that missed. A buyer without an e-mail address gets a skipped row, never sent. A resend from
    the desk passes a ``kind`` of its own ("shipped#2"…): one row per message, each sent once."""
    number, url = customer_tracking(shipment.carrier.code if shipment.carrier else "", shipment.tracking_number)
    carrier = shipment.carrier.name if shipment.carrier else ""
    # Written now, in the buyer's language, not the language of whoever (or whichever task) shipped the parcel.
    with translation.override(buyer_language(order=order)):
        subject = _("Your order %(number)s has shipped") % {"number": order.number}
        body = _("Hello %(name)s,\n\nyour order %(number)s left our warehouse with %(carrier)s.\n"
                 "Tracking number: %(tracking)s\n%(url)s\n") % {
            "name": order.buyer_name or order.receiver_name, "number": order.number, "carrier": carrier,
            "tracking": number, "url": url}
    recipient = order.buyer_email.strip()
    try:
        with transaction.atomic():
            notification = CustomerNotification.objects.create(
                order=order, shipment=shipment, kind=kind, recipient=recipient, subject=subject[:200], body=body,
                status=NotificationStatus.QUEUED if recipient else NotificationStatus.SKIPPED,
                last_error="" if recipient else "no e-mail address", next_attempt_at=timezone.now())
    except IntegrityError:
        return CustomerNotification.objects.get(order=order, shipment=shipment, kind=kind), False
    return notification, True


def notification_send(*, notification_id: int) -> str:
    """Send one queued message; the row is claimed first so two workers never send it twice."""
    now = timezone.now()
    # The outbox row is a leased work row: claimed through the one claim helper (next_attempt_at is its lease).
    claimed = lease_claim_one(
        CustomerNotification.objects.filter(status=NotificationStatus.QUEUED).filter(
            Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)),
        pk=notification_id, lease_field="next_attempt_at", lease=SEND_LEASE,
        set_fields={"attempts": F("attempts") + 1}, now=now)
    notification = CustomerNotification.objects.get(pk=notification_id)
    if not claimed:
        return notification.status
    try:
        send_mail(notification.subject, notification.body, None, [notification.recipient], fail_silently=False)
    except (smtplib.SMTPException, OSError) as exc:
        failed = notification.attempts >= MAX_ATTEMPTS
        CustomerNotification.objects.filter(pk=notification.pk).update(
            status=NotificationStatus.FAILED if failed else NotificationStatus.QUEUED, last_error=str(exc)[:500],
            next_attempt_at=now + timedelta(minutes=2 ** min(notification.attempts, 8)))
        logger.warning("notification %s not sent (attempt %s): %s", notification.pk, notification.attempts, exc)
        return NotificationStatus.FAILED if failed else NotificationStatus.QUEUED
    CustomerNotification.objects.filter(pk=notification.pk).update(status=NotificationStatus.SENT, sent_at=now,
                                                                   last_error="")
    return NotificationStatus.SENT


def notifications_due() -> list[int]:
    return list(CustomerNotification.objects.filter(status=NotificationStatus.QUEUED,
                                                    next_attempt_at__lte=timezone.now())
                .order_by("next_attempt_at").values_list("pk", flat=True)[:500])
