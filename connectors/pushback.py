"""Push-back to the platforms: shipment confirmations through an outbox, sent until the platform confirms."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from connectors.base import AuthError, ConnectorError, PermanentError, TransientError
from connectors.models import PushStatus, ShipmentPush, line_list
from connectors.registry import CONNECTORS, connector_for_store
from connectors.services import backoff_seconds
from oms.exceptions import ConflictError, NotFoundError, ValidationFailed
from oms.leases import outbox_claim_one, outbox_due
from oms.locks import lock_one
from orders.events import event_order_shipment_push
from orders.models import Order, OrderLine

logger = logging.getLogger(__name__)

SEND_LEASE = timedelta(minutes=2)
# Transient failures are retried until the platform confirms; after this many a person is asked.
MAX_PUSH_ATTEMPTS = 50


def shipment_push_enqueue(*, order_id: int, carrier_code: str, tracking_number: str,
                          line_nos: list[int] | None = None, shipment_key: str = "") -> ShipmentPush | None:
    """Write the outbox row confirming one shipment to the order's platform (None for manual stores);
    pipeline.channel.shipment_push_queue sends it after commit.

    ``line_nos`` (our line numbers) make it a partial shipment: the platform gets their platform
    line ids (Taobao sub-orders, Shopify line items). The same shipment queued again is a no-op.
    """
    carrier_code, tracking_number = carrier_code.strip().upper(), tracking_number.strip()
    if not carrier_code or not tracking_number:
        raise ValidationFailed(_("Carrier and tracking number are required."),
                               data={"tracking_number": [_("This field may not be blank.")]})
    order = Order.objects.select_related("store").get(pk=order_id)
    # A replacement (after-sales exchange or resend) is not the platform's order: confirming it would tell the
    # platform the original shipped again, under another tracking number.
    if order.store.platform not in CONNECTORS or order.replaces_id:
        return None
    line_ids: list[str] = []
    sent_nos: list[int] = []
    skipped: list[int] = []
    if line_nos:
        lines = dict(OrderLine.objects.filter(order=order, line_no__in=line_nos)
                     .values_list("line_no", "platform_line_id"))
        missing = sorted(set(line_nos) - set(lines))
        if missing:
            raise ValidationFailed(_("Lines %(lines)s are not lines of this order.") % {
                "lines": line_list(missing)}, data={"line_nos": [_("Unknown line.")]})
        # A line without a platform id (a gift, a line added here) is not the platform's to confirm: the
        # platform is told about the others, and the push says which lines it was not told about.
        sent_nos = sorted(n for n, platform_id in lines.items() if platform_id)
        skipped = sorted(n for n, platform_id in lines.items() if not platform_id)
        if not sent_nos:
            raise ValidationFailed(_("Lines %(lines)s are not the platform's sub-orders: there is nothing to "
                                     "confirm to it.") % {"lines": line_list(skipped)},
                                   code="no_platform_lines", data={"line_nos": [_("Not a platform line.")]})
        line_ids = [lines[n] for n in sent_nos]
        if not skipped and len(line_ids) == order.lines.count():
            line_ids, sent_nos = [], []  # every line: a full shipment
    key = (shipment_key or f"{carrier_code}:{tracking_number}")[:100]
    try:
        with transaction.atomic():
            push = ShipmentPush.objects.create(order=order, store=order.store, shipment_key=key,
                                               carrier_code=carrier_code, tracking_number=tracking_number,
                                               line_ids=line_ids, line_nos=sent_nos, skipped_line_nos=skipped,
                                               next_attempt_at=timezone.now())
            event_order_shipment_push(order=order, state="queued", carrier=carrier_code, tracking=tracking_number,
                                      line_ids=line_ids, reason=push.state_summary,
                                      data={"line_nos": sent_nos, "skipped_line_nos": skipped})
    except IntegrityError:
        return ShipmentPush.objects.get(order=order, shipment_key=key)
    return push


def shipment_push_send(*, push_id: int) -> str:
    """Send one queued confirmation; returns the row's status afterwards.

    The row is claimed with the lease helper (oms.leases), so two workers never send it at the
    same time; the HTTP call happens outside any transaction.
    """
    now = timezone.now()
    claimed = outbox_claim_one(ShipmentPush, pk=push_id, pending=PushStatus.PENDING, sending=PushStatus.SENDING,
                               lease=SEND_LEASE, now=now)
    push = ShipmentPush.objects.select_related("order", "store").get(pk=push_id)
    if not claimed:
        return push.status
    connector = connector_for_store(push.store)
    try:
        response = connector.ship(platform_order_id=push.order.platform_order_id,
                                  tracking_number=push.tracking_number, carrier_code=push.carrier_code,
                                  line_ids=push.line_ids or None)
    except (TransientError, AuthError) as exc:
        return _push_retry(push, exc)
    except PermanentError as exc:
        return _push_failed(push, exc)
    # The platform took what it was sent; lines it does not know were never sent, so the state says "partly".
    done = PushStatus.PARTIAL if push.skipped_line_nos else PushStatus.SENT
    with transaction.atomic():
        ShipmentPush.objects.filter(pk=push.pk).update(status=done, sent_at=timezone.now(),
                                                       lease_until=None, last_error="",
                                                       response=response if isinstance(response, dict) else {})
        push.status = done
        event_order_shipment_push(order=push.order, state=done, carrier=push.carrier_code,
                                  tracking=push.tracking_number, line_ids=push.line_ids, attempts=push.attempts,
                                  reason=push.state_summary,
                                  data={"line_nos": push.line_nos, "skipped_line_nos": push.skipped_line_nos})
    return done


def _push_retry(push: ShipmentPush, exc: ConnectorError) -> str:
    if push.attempts >= MAX_PUSH_ATTEMPTS:
        return _push_failed(push, exc)
    # An expired token needs a person; wait longer than for a hiccup, but keep trying.
    delay = 300 if isinstance(exc, AuthError) else max(backoff_seconds(push.attempts, base=2, cap=600),
                                                         exc.retry_after or 0)
    ShipmentPush.objects.filter(pk=push.pk).update(status=PushStatus.PENDING, lease_until=None,
                                                   last_error=f"{type(exc).__name__}: {exc.message}"[:2000],
                                                   next_attempt_at=timezone.now() + timedelta(seconds=delay))
    logger.warning("shipment push %s failed (attempt %s), retrying in %.0f s: %s", push.pk, push.attempts, delay,
                   exc.message)
    return PushStatus.PENDING


def _push_failed(push: ShipmentPush, exc: ConnectorError) -> str:
    with transaction.atomic():
        ShipmentPush.objects.filter(pk=push.pk).update(status=PushStatus.FAILED, lease_until=None,
                                                       last_error=f"{type(exc).__name__}: {exc.message}"[:2000])
        event_order_shipment_push(order=push.order, state="failed", carrier=push.carrier_code,
                                  tracking=push.tracking_number, line_ids=push.line_ids, error=exc.message)
    return PushStatus.FAILED


def _lock_push(push_id: int) -> ShipmentPush:
    try:
        return lock_one(ShipmentPush, push_id)
    except ShipmentPush.DoesNotExist:
        raise NotFoundError(_("Shipment push %(id)s does not exist.") % {"id": push_id},
                            code="push_not_found") from None


def shipment_push_retry(*, push_id: int, actor=None) -> ShipmentPush:
    """A person sends a failed (or discarded) confirmation again, after fixing the cause: a fresh round of tries."""
    with transaction.atomic():
        push = _lock_push(push_id)
        if push.status not in (PushStatus.FAILED, PushStatus.DISCARDED):
            raise ConflictError(_("Only a failed or discarded push-back can be sent again; this one is: "
                                  "%(status)s.") % {"status": push.get_status_display()}, code="push_not_failed")
        push.status, push.attempts, push.next_attempt_at, push.lease_until = (PushStatus.PENDING, 0,
                                                                               timezone.now(), None)
        push.save(update_fields=["status", "attempts", "next_attempt_at", "lease_until"])
        event_order_shipment_push(order=push.order, state="retried", carrier=push.carrier_code,
                                  tracking=push.tracking_number, line_ids=push.line_ids, actor=actor)
        return push


def shipment_push_discard(*, push_id: int, actor=None) -> ShipmentPush:
    """A person gives up on a confirmation that failed or keeps waiting (e.g. it was shipped on the platform
    by hand): it is never sent, and the order page says so rather than "waiting"."""
    with transaction.atomic():
        push = _lock_push(push_id)
        if push.status == PushStatus.SENDING:
            raise ConflictError(_("This push-back is being sent right now: wait a moment and look again."),
                                code="push_sending")
        if push.status not in (PushStatus.PENDING, PushStatus.FAILED):
            raise ConflictError(_("Only a waiting or failed push-back can be discarded; this one is: "
                                  "%(status)s.") % {"status": push.get_status_display()}, code="push_done")
        push.status, push.lease_until = PushStatus.DISCARDED, None
        push.save(update_fields=["status", "lease_until"])
        event_order_shipment_push(order=push.order, state=PushStatus.DISCARDED, carrier=push.carrier_code,
                                  tracking=push.tracking_number, line_ids=push.line_ids, actor=actor)
        return push


def shipment_pushes_due() -> list[int]:
    return list(outbox_due(ShipmentPush, pending=PushStatus.PENDING, sending=PushStatus.SENDING)
                .values_list("pk", flat=True)[:500])
