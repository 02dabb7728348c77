"""Celery tasks of the inventory pool: retry orders awaiting stock, release stale reservations, reconcile."""

import logging

from celery import shared_task

from inventory.services import stock_reconcile
from pipeline.orders import orders_release_stale_reservations, orders_retry_awaiting_stock

logger = logging.getLogger(__name__)


@shared_task(acks_late=True, ignore_result=True)
def retry_awaiting_stock_task(*, sku_ids: list[int] | None = None) -> int:
    """Stock arrived (receipt, release, adjustment): orders waiting for these SKUs try again."""
    return orders_retry_awaiting_stock(sku_ids=sku_ids)


@shared_task(acks_late=True, ignore_result=True)
def release_stale_reservations_task() -> int:
    released = orders_release_stale_reservations()
    if released:
        logger.warning("released %s units still reserved for cancelled/closed orders", released)
    return released


@shared_task(acks_late=True, ignore_result=True)
def reconcile_stock_task(*, repair: bool = True) -> int:
    drifts = stock_reconcile(repair=repair)
    for drift in drifts:
        logger.error("stock drift warehouse=%s sku=%s counters=%s/%s ledger=%s/%s repaired=%s", drift.warehouse_id,
                     drift.sku_id, drift.on_hand, drift.reserved, drift.ledger_on_hand, drift.ledger_reserved, repair)
    return len(drifts)
