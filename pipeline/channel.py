"""The channel flows: apply a platform's order to the hub (create once, then follow), drain a store's
inbox, confirm a shipment to the platform, and what the hub does after a confirmation is sent.

connectors/ stores and maps payloads and talks to the platforms; orders/, inventory/ and finance/
own what a payload changes. This module is where the two meet.
"""

from __future__ import annotations

import json

from django.db import DataError, transaction
from django.utils.translation import gettext as _

from connectors import pushback
from connectors import services as intake
from connectors.base import AuthError, PermanentError, TransientError, UnifiedOrder
from connectors.ingest import UnmappedSKU, order_input_from_unified
from connectors.models import DeadReason, InboxStatus, ShipmentPush
from connectors.selectors import authorized_counts_as_paid
from finance.models import PaymentEvent
from finance.services import payment_snapshot_capture
from oms.effects import task_after_commit
from oms.exceptions import DomainError, NotFoundError, ValidationFailed
from orders import services as order_services
from orders.exceptions import OrderInvalid, OrderNotFound
from orders.models import Order, OrderStatus, Store
from pipeline.capture import payment_capture_enqueue_if_due
from pipeline.orders import order_create, order_follow_channel, order_has_shipments, order_ship
from pipeline.shipping import PUSH_TASK, shipment_push_queue

PROCESS_TASK = "connectors.tasks.process_inbox_task"


# --- Applying one platform order ------------------------------------------------------------------

def channel_order_apply(*, store: Store, unified: UnifiedOrder, raw_ref: str) -> tuple[Order, str]:
    """Create the order the first time, follow the platform after. Returns (order, outcome).

    outcome is "created", "updated" or "stale" (an update older than what the order already has).
    Called under the store's inbox lease, so two versions of one order are never applied at once;
    a concurrent creation elsewhere still ends as an update thanks to the unique platform id.
    """
    existing = Order.objects.filter(store=store, platform_order_id=unified.platform_order_id).first()
    outcome = "updated"
    if existing is None:
        data = order_input_from_unified(store=store, unified=unified, raw_ref=raw_ref)
        try:
            with transaction.atomic():
                existing = order_create(store=store, data=data, actor_label=f"channel:{store.platform}")
            outcome = "created"
        except OrderInvalid as exc:
            if exc.code != "duplicate_order":
                raise
            existing = Order.objects.get(store=store, platform_order_id=unified.platform_order_id)
    target, paid_at, payment_event = unified.status, unified.paid_at, PaymentEvent.PAYMENT
    if target == "pending_payment" and unified.authorized_at and authorized_counts_as_paid(store_id=store.pk):
        # A store that captures on fulfilment: the authorization lets the order reserve, route and ship;
        # the capture follows at shipping (pipeline/capture.py) and gets its own snapshot.
        target, paid_at, payment_event = "paid", unified.authorized_at, PaymentEvent.AUTHORIZATION
    order, applied = order_follow_channel(
        order_id=existing.pk, target=target, platform_updated_at=unified.updated_at,
        raw_status=unified.raw_status or unified.status, paid_at=paid_at, payment_event=payment_event,
        actor_label=f"channel:{store.platform}")
    if applied and unified.paid_at:
        # Captured on the platform (by the hub, or by the seller in the platform's admin): recorded once,
        # beside the authorization; an order paid in one step has no authorization and gets nothing here.
        payment_snapshot_capture(order=order, amount=order.paid_amount, currency=order.currency,
                                 captured_at=unified.paid_at, source="platform update")
    if not applied and outcome == "updated":
        outcome = "stale"
    return order, outcome


# --- Draining a store's inbox ---------------------------------------------------------------------

def inbox_process_message(*, message_id: int, store: Store | None = None) -> str:
    """Process one inbox row: map and apply it. Returns the row's new status."""
    message = intake.InboxMessage.objects.select_related("store").get(pk=message_id)
    store = store or message.store
    if message.status != InboxStatus.PENDING:
        return message.status
    try:
        payload = intake.inbox_payload(message=message, store=store)  # may fetch: outside the transaction
        unified = intake.inbox_map(store=store, payload=payload)
        with transaction.atomic():
            locked = intake.inbox_lock_pending(message_id=message.pk)
            if locked is None:
                return intake.InboxMessage.objects.get(pk=message.pk).status
            order, outcome = channel_order_apply(store=store, unified=unified, raw_ref=f"inbox:{message.pk}")
            return intake.inbox_mark_applied(message=message, order=order, outcome=outcome)
    except json.JSONDecodeError as exc:
        return intake.inbox_mark_dead(message, DeadReason.BAD_PAYLOAD, f"not JSON: {exc}")
    except UnmappedSKU as exc:
        return intake.inbox_mark_dead(message, DeadReason.UNMAPPED_SKU, exc.message)
    except (AuthError, TransientError) as exc:
        return intake.inbox_retry_later(message, exc.message)
    except PermanentError as exc:
        return intake.inbox_mark_dead(message, DeadReason.BAD_PAYLOAD, exc.message)
    except DomainError as exc:
        return intake.inbox_mark_dead(message, DeadReason.REJECTED, f"{exc.code}: {exc.message}")
    except DataError as exc:
        # A value the database cannot hold (out of range, too long): a person looks at this row; the
        # rows behind it go on instead of stalling on it.
        return intake.inbox_mark_dead(message, DeadReason.REJECTED, f"database refused a value: {exc}")


def inbox_process_store(*, store_id: int, limit: int = 1000) -> int:
    """Drain the store's due inbox rows in platform-update order. Returns how many were handled."""
    store = Store.objects.get(pk=store_id)
    intake.sync_state_for(store)
    handled = 0
    while handled < limit:
        if not intake.store_lease_take(store_id, "process_lease_until", intake.PROCESS_LEASE):
            return handled  # another worker drains this store right now
        try:
            batch = intake.inbox_due_ids(store_id=store_id)
            for message_id in batch:
                inbox_process_message(message_id=message_id, store=store)
                handled += 1
        finally:
            intake.store_lease_release(store_id, "process_lease_until")
        if not batch:
            return handled
    # Stopped at the limit with rows left: hand the rest to a fresh task rather than waiting for the
    # sweeper (other queued drain tasks found the lease taken and already ended).
    if intake.inbox_has_due(store_id=store_id):
        inbox_schedule_processing(store_id=store_id)
    return handled


def inbox_schedule_processing(*, store_id: int) -> None:
    """Drain the store's inbox on a worker once the rows just stored are committed."""
    task_after_commit(PROCESS_TASK, store_id=store_id)


def dead_letter_replay(*, message_id: int):
    """Put a dead letter back in line (after fixing its cause, e.g. adding the SKU mapping) and drain it."""
    with transaction.atomic():
        message = intake.dead_letter_replay(message_id=message_id)
        inbox_schedule_processing(store_id=message.store_id)
    return message


# --- Confirming shipments to the platform ---------------------------------------------------------

def shipment_push_retry(*, push_id: int, actor=None) -> ShipmentPush:
    """A person sends a failed confirmation again, now."""
    with transaction.atomic():
        push = pushback.shipment_push_retry(push_id=push_id, actor=actor)
        task_after_commit(PUSH_TASK, push_id=push.pk)
    return push


def shipment_push_send(*, push_id: int) -> str:
    """Send one queued confirmation; once the platform has the whole shipment, an authorized payment
    (capture on fulfilment) is queued for capture."""
    status = pushback.shipment_push_send(push_id=push_id)
    if status in (pushback.PushStatus.SENT, pushback.PushStatus.PARTIAL):
        with transaction.atomic():
            order = Order.objects.select_related("store").get(pk=ShipmentPush.objects.get(pk=push_id).order_id)
            payment_capture_enqueue_if_due(order=order)
    return status


def shipment_confirm(*, order_id: int, carrier_code: str, tracking_number: str, line_nos: list[int] | None = None,
                     actor=None) -> ShipmentPush | None:
    """A person records a shipment made outside the parcels: the order ships here and the platform is told.

    All lines (or none given): the order ships; some lines: it ships partially. The confirmation to the
    platform is queued in the same transaction, so it cannot be forgotten.
    """
    with transaction.atomic():
        try:
            order = order_services.order_lock(order_id)
        except OrderNotFound:
            raise NotFoundError(_("Order %(id)s does not exist.") % {"id": order_id}, code="order_not_found") from None
        if order_has_shipments(order_id=order.pk):
            raise ValidationFailed(_("This order ships in parcels: ship them from the warehouse kanban."),
                                   code="follows_shipments")
        partial = bool(line_nos) and len(set(line_nos)) < order.lines.count()
        if order.status in (OrderStatus.IN_FULFILMENT, OrderStatus.PARTIALLY_SHIPPED):
            if partial:
                order_services.order_ship_partially(order_id=order.pk, actor=actor, reason=tracking_number)
            else:
                order_ship(order_id=order.pk, actor=actor, reason=tracking_number)
        elif order.status not in (OrderStatus.SHIPPED, OrderStatus.DELIVERED, OrderStatus.COMPLETED):
            raise ValidationFailed(_("Only an order in fulfilment (or already shipped) can get a tracking number."),
                                   code="not_in_fulfilment")
        return shipment_push_queue(order_id=order.pk, carrier_code=carrier_code, tracking_number=tracking_number,
                                   line_nos=line_nos)


