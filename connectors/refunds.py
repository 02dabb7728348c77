"""Refund decisions to the platforms through an outbox (RefundPush): queued, claimed, sent, retried until confirmed.

What a refund means for the after-sales ticket is the pipeline's (pipeline/refunds.py): connectors never import
aftersales, so this module only knows the outbox row, the platform call and its outcome.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.utils import timezone

from connectors.base import AuthError, ConnectorError
from connectors.models import RefundPush, RefundPushStatus
from connectors.registry import CONNECTORS, connector_for_store
from connectors.services import backoff_seconds
from oms.leases import outbox_claim_one, outbox_due
from orders.models import Order

logger = logging.getLogger(__name__)

SEND_LEASE = timedelta(minutes=2)
# Transient failures are retried until the platform confirms; after this many a person is asked.
MAX_REFUND_ATTEMPTS = 50


def refund_push_key(push: RefundPush) -> str:
    """The idempotency key the platform sees: the same for every retry of one refund, never shared by two."""
    return f"oms-refund-{push.refund_ref}"


def refund_push_enqueue(*, order: Order, refund_ref: int, amount: Decimal, platform_after_sale_id: str = "",
                        line_ids: list[str] | None = None) -> RefundPush | None:
    """Write the outbox row sending one refund decision to the order's platform (None for a store without a
    platform). Call it inside the transaction that records the refund; the same refund queued again is the row
    already queued (``refund_ref`` is unique), so one refund is never sent twice."""
    if order.store.platform not in CONNECTORS:
        return None
    try:
        with transaction.atomic():
            return RefundPush.objects.create(order=order, store_id=order.store_id, refund_ref=refund_ref,
                                             platform_after_sale_id=(platform_after_sale_id or "")[:64],
                                             amount=amount, currency=order.currency, line_ids=list(line_ids or []),
                                             next_attempt_at=timezone.now())
    except IntegrityError:
        return RefundPush.objects.get(refund_ref=refund_ref)


def refund_push_claim(*, push_id: int) -> RefundPush | None:
    """Claim one due row for sending (None when it is not due or another worker holds it)."""
    claimed = outbox_claim_one(RefundPush, pk=push_id, pending=RefundPushStatus.PENDING,
                               sending=RefundPushStatus.SENDING, lease=SEND_LEASE)
    return RefundPush.objects.select_related("order", "store").get(pk=push_id) if claimed else None


def refund_push_call(push: RefundPush) -> dict:
    """The platform call itself, outside any transaction; raises the connector's errors."""
    result = connector_for_store(push.store).refund(
        platform_order_id=push.order.platform_order_id, platform_after_sale_id=push.platform_after_sale_id,
        amount=push.amount, currency=push.currency, key=refund_push_key(push), line_ids=push.line_ids or None)
    return result if isinstance(result, dict) else {}


def refund_push_mark_sent(push: RefundPush, result: dict) -> str:
    """The platform confirmed: record its refund id and answer (inside the caller's transaction)."""
    platform_refund_id = str(result.get("platform_refund_id") or "")[:64]
    RefundPush.objects.filter(pk=push.pk).update(status=RefundPushStatus.SENT, sent_at=timezone.now(),
                                                 lease_until=None, last_error="", response=result,
                                                 platform_refund_id=platform_refund_id)
    push.status, push.platform_refund_id = RefundPushStatus.SENT, platform_refund_id
    return platform_refund_id


def refund_push_retry_later(push: RefundPush, exc: ConnectorError) -> bool:
    """A transient failure: the row waits for its next attempt (backoff with jitter). False once the attempts
    are used up, when the caller fails it instead."""
    if push.attempts >= MAX_REFUND_ATTEMPTS:
        return False
    # An expired token needs a person; wait longer than for a hiccup, but keep trying.
    delay = 300 if isinstance(exc, AuthError) else max(backoff_seconds(push.attempts, base=2, cap=600),
                                                         exc.retry_after or 0)
    RefundPush.objects.filter(pk=push.pk).update(status=RefundPushStatus.PENDING, lease_until=None,
                                                 last_error=f"{type(exc).__name__}: {exc.message}"[:2000],
                                                 next_attempt_at=timezone.now() + timedelta(seconds=delay))
    push.status = RefundPushStatus.PENDING
    logger.warning("refund push %s failed (attempt %s), retrying in %.0f s: %s", push.pk, push.attempts, delay,
                   exc.message)
    return True


def refund_push_mark_failed(push: RefundPush, exc: ConnectorError) -> None:
    """The platform refused the refund (or never answered in time): a person must look (caller's transaction)."""
    RefundPush.objects.filter(pk=push.pk).update(status=RefundPushStatus.FAILED, lease_until=None,
                                                 last_error=f"{type(exc).__name__}: {exc.message}"[:2000])
    push.status = RefundPushStatus.FAILED
    logger.error("refund push %s for order %s failed: %s", push.pk, push.order_id, exc.message)


def refund_pushes_due() -> list[int]:
    """Rows whose retry time came, or whose sender died holding the lease (the sweeper sends them again)."""
    return list(outbox_due(RefundPush, pending=RefundPushStatus.PENDING, sending=RefundPushStatus.SENDING)
                .values_list("pk", flat=True)[:500])
