"""Capture of authorized payments at shipping (Shopify manual capture) through an outbox, retried like push-backs.

A flow across connectors (the outbox row, the platform call) and finance (the capture snapshot), so it
lives in the pipeline.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from decimal import Decimal, InvalidOperation

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _

from connectors.base import AuthError, ConnectorError, PermanentError, TransientError
from connectors.models import CaptureStatus, ChannelSyncState, PaymentCapture
from connectors.registry import connector_class, connector_for_store
from connectors.services import backoff_seconds
from finance.models import PaymentEvent, PaymentSnapshot
from finance.services import payment_snapshot_capture
from oms.effects import task_after_commit
from oms.leases import outbox_claim_one, outbox_due
from oms.locks import lock_one
from orders.events import event_order_payment_capture
from orders.models import Order, OrderStatus

logger = logging.getLogger(__name__)

SEND_LEASE = timedelta(minutes=2)
CAPTURE_TASK = "connectors.tasks.capture_payment_task"
MAX_CAPTURE_ATTEMPTS = 50
# Captured when the whole order has left: Shopify's own "capture when the order is fulfilled" does the same.
SHIPPED_WHOLE = (OrderStatus.SHIPPED, OrderStatus.DELIVERED, OrderStatus.COMPLETED)


def payment_capture_enqueue_if_due(*, order: Order) -> PaymentCapture | None:
    """Queue the capture of the order's authorized payment once the whole order shipped (call inside the
    transaction that records the confirmation). None when nothing is to capture."""
    if order.status not in SHIPPED_WHOLE:
        return None
    if not hasattr(connector_class(order.store.platform), "capture_payment"):
        return None
    if not ChannelSyncState.objects.filter(store_id=order.store_id, authorized_counts_as_paid=True).exists():
        return None
    snapshots = set(PaymentSnapshot.objects.filter(order=order).values_list("event", flat=True))
    if PaymentEvent.AUTHORIZATION not in snapshots or PaymentEvent.CAPTURE in snapshots:
        return None
    try:
        with transaction.atomic():
            capture = PaymentCapture.objects.create(order=order, store_id=order.store_id,
                                                    next_attempt_at=timezone.now())
            event_order_payment_capture(order=order, state="queued",
                                        reason=_("The payment will be captured on the platform."))
    except IntegrityError:
        return PaymentCapture.objects.get(order=order)  # queued before: one capture per order
    task_after_commit(CAPTURE_TASK, capture_id=capture.pk)
    return capture


def _amount(transactions: list[dict]) -> Decimal:
    total = Decimal("0")
    for item in transactions:
        try:
            total += Decimal(str(item.get("amount") or "0"))
        except InvalidOperation:
            raise PermanentError(f"capture answered a bad amount {item.get('amount')!r}", code="bad_response") from None
    return total


def payment_capture_send(*, capture_id: int) -> str:
    """Capture one order's authorized payment on its platform; returns the row's status afterwards.

    Claimed with the lease helper (oms.leases) so two workers never capture at once; the HTTP call runs
    outside any transaction; the connector's capture is itself safe to repeat (it skips what is captured).
    """
    now = timezone.now()
    claimed = outbox_claim_one(PaymentCapture, pk=capture_id, pending=CaptureStatus.PENDING,
                               sending=CaptureStatus.SENDING, lease=SEND_LEASE, now=now)
    capture = PaymentCapture.objects.select_related("order", "store").get(pk=capture_id)
    if not claimed:
        return capture.status
    try:
        transactions = connector_for_store(capture.store).capture_payment(
            platform_order_id=capture.order.platform_order_id)
        amount = _amount(transactions)
    except (TransientError, AuthError) as exc:
        return _capture_retry(capture, exc)
    except PermanentError as exc:
        return _capture_failed(capture, exc)
    captured_at = max((parse_datetime(str(t.get("processed_at") or t.get("created_at") or "")) or now
                       for t in transactions), default=now)
    with transaction.atomic():
        order = lock_one(Order, capture.order_id)
        PaymentCapture.objects.filter(pk=capture.pk).update(
            status=CaptureStatus.CAPTURED, captured_at=timezone.now(), lease_until=None, last_error="",
            response={"transactions": transactions})
        payment_snapshot_capture(order=order, amount=amount, currency=str(transactions[0].get("currency") or ""),
                                 captured_at=captured_at, source="hub capture",
                                 reference=",".join(str(t.get("id")) for t in transactions),
                                 transactions=transactions)
        event_order_payment_capture(order=order, state="captured", attempts=capture.attempts,
                                    reason=_("The payment was captured on the platform: %(amount)s %(currency)s.")
                                    % {"amount": amount, "currency": order.currency})
    return CaptureStatus.CAPTURED


def _capture_retry(capture: PaymentCapture, exc: ConnectorError) -> str:
    if capture.attempts >= MAX_CAPTURE_ATTEMPTS:
        return _capture_failed(capture, exc)
    delay = 300 if isinstance(exc, AuthError) else max(backoff_seconds(capture.attempts, base=2, cap=600),
                                                         exc.retry_after or 0)
    PaymentCapture.objects.filter(pk=capture.pk).update(
        status=CaptureStatus.PENDING, lease_until=None, last_error=f"{type(exc).__name__}: {exc.message}"[:2000],
        next_attempt_at=timezone.now() + timedelta(seconds=delay))
    logger.warning("payment capture %s failed (attempt %s), retrying in %.0f s: %s", capture.pk, capture.attempts,
                   delay, exc.message)
    return CaptureStatus.PENDING


def _capture_failed(capture: PaymentCapture, exc: ConnectorError) -> str:
    # A refused capture (expired or voided authorization…) needs a person before the money is lost.
    with transaction.atomic():
        PaymentCapture.objects.filter(pk=capture.pk).update(
            status=CaptureStatus.FAILED, lease_until=None, last_error=f"{type(exc).__name__}: {exc.message}"[:2000])
        event_order_payment_capture(order=capture.order, state="failed", attempts=capture.attempts,
                                    reason=_("The platform refused to capture the payment: capture it in the "
                                             "platform's admin before the authorization expires."),
                                    error=exc.message)
    logger.error("payment capture %s for order %s failed: %s", capture.pk, capture.order_id, exc.message)
    return CaptureStatus.FAILED


def payment_captures_due() -> list[int]:
    return list(outbox_due(PaymentCapture, pending=CaptureStatus.PENDING, sending=CaptureStatus.SENDING)
                .values_list("pk", flat=True)[:500])
