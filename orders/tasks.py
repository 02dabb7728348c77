"""Celery tasks of the order core: the unpaid-order timeout."""

from celery import shared_task

from orders.services import orders_cancel_expired_unpaid


@shared_task(acks_late=True, ignore_result=True)
def cancel_expired_unpaid_orders_task() -> int:
    return orders_cancel_expired_unpaid()
