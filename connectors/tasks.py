"""Celery tasks of the channels: polling, the inbox, the outboxes (shipments, captures, refunds), their sweepers."""

from celery import shared_task

from connectors import pushback, services
from connectors.completeness import sync_check_last_hour
from connectors.refunds import refund_pushes_due
from pipeline import after_sales, channel
from pipeline.capture import payment_capture_send, payment_captures_due
from pipeline.refunds import refund_push_deliver
from pipeline.stock import channel_stock_flush


@shared_task(ignore_result=True)
def poll_due_stores_task() -> int:
    store_ids = services.store_ids_due_for_poll()
    for store_id in store_ids:
        poll_store_task.delay(store_id=store_id)
    return len(store_ids)


@shared_task(acks_late=True, ignore_result=True)
def poll_store_task(*, store_id: int) -> str:
    result = services.store_poll(store_id=store_id)
    if result.stored:
        channel.inbox_schedule_processing(store_id=store_id)
    # Douyin and PDD list their after-sales apart from the orders: polled after them and applied to tickets (rows
    # left pending, e.g. for an order not drained yet, are retried here on the next beats).
    after_sales.store_after_sales_sync(store_id=store_id)
    return result.status


@shared_task(acks_late=True, ignore_result=True)
def process_inbox_task(*, store_id: int, fan_out: bool = True) -> int:
    """Drain the store's inbox; with rows waiting in several partitions, first ask for helpers (which do
    not ask again), so several workers drain one store at once."""
    if fan_out:
        channel.inbox_drain_helpers_request(store_id=store_id)
    return channel.inbox_process_store(store_id=store_id)


@shared_task(ignore_result=True)
def sweep_inbox_task() -> int:
    """Lost messages lose no work: stores with overdue pending rows are drained again."""
    store_ids = services.inbox_overdue_store_ids()
    for store_id in store_ids:
        process_inbox_task.delay(store_id=store_id)
    return len(store_ids)


@shared_task(acks_late=True, ignore_result=True)
def push_shipment_task(*, push_id: int) -> str:
    return channel.shipment_push_send(push_id=push_id)


@shared_task(ignore_result=True)
def sweep_shipment_pushes_task() -> int:
    """Pushes whose retry time came (or whose sender died) are sent again."""
    due = pushback.shipment_pushes_due()
    for push_id in due:
        push_shipment_task.delay(push_id=push_id)
    # Payment captures follow shipment confirmations and are retried on the same beat.
    captures = payment_captures_due()
    for capture_id in captures:
        capture_payment_task.delay(capture_id=capture_id)
    return len(due) + len(captures)


@shared_task(acks_late=True, ignore_result=True)
def capture_payment_task(*, capture_id: int) -> str:
    return payment_capture_send(capture_id=capture_id)


@shared_task(acks_late=True, ignore_result=True)
def push_refund_task(*, push_id: int) -> str:
    return refund_push_deliver(push_id=push_id)


@shared_task(ignore_result=True)
def sweep_refund_pushes_task() -> int:
    """Refund decisions whose retry time came (or whose sender died) are sent again."""
    due = refund_pushes_due()
    for push_id in due:
        push_refund_task.delay(push_id=push_id)
    return len(due)


@shared_task(ignore_result=True)
def flush_channel_stock_task() -> dict:
    return channel_stock_flush()


@shared_task(ignore_result=True)
def sync_check_task() -> int:
    missing = [check for check in sync_check_last_hour() if check.missing]
    for check in missing:  # what the platform has and the hub lacks is fetched right away
        poll_store_task.delay(store_id=check.store_id)
    return len(missing)


@shared_task(ignore_result=True)
def purge_refused_deliveries_task() -> int:
    """Records of refused (unverified) webhook deliveries are kept for a retention period only."""
    return services.refused_deliveries_purge()
