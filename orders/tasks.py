"""Celery tasks of the order core: the unpaid-order timeout and the purge of old idempotency keys."""

from celery import shared_task

from orders.services import idempotency_records_purge
from pipeline.orders import orders_cancel_expired_unpaid


@shared_task(acks_late=True, ignore_result=True)
def cancel_expired_unpaid_orders_task() -> int:
    return orders_cancel_expired_unpaid()


@shared_task(acks_late=True, ignore_result=True)
def purge_idempotency_records_task() -> int:
    return idempotency_records_purge()
