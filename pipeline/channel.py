"""The channel flows: apply a platform's order to the hub (create once, then follow), drain a store's
inbox, confirm a shipment to the platform, and what the hub does after a confirmation is sent.

connectors/ stores and maps payloads and talks to the platforms; orders/, inventory/ and finance/
own what a payload changes. This module is where the two meet.
"""

from __future__ import annotations

import json
import random

from django.conf import settings
from django.db import DataError, transaction
from django.utils.translation import gettext as _

from connectors import inbox, pushback
from connectors import services as intake
from connectors.base import AuthError, PermanentError, TransientError, UnifiedOrder
from connectors.ingest import UnmappedSKU, order_input_from_unified, resolve_sku_codes_many
from connectors.models import DeadReason, InboxMessage, InboxStatus, ShipmentPush
from connectors.selectors import authorized_counts_as_paid
from connectors.wake import inbox_wake
from finance.models import PaymentEvent
from finance.services import payment_snapshot_capture, payment_snapshots_take
from inventory.selectors import sku_ids_and_titles
from oms.effects import task_after_commit
from oms.exceptions import DomainError, NotFoundError, ValidationFailed
from orders import services as order_services
from orders.exceptions import OrderInvalid, OrderNotFound
from orders.models import Order, OrderStatus, Store
from pipeline import after_sales
from pipeline.capture import payment_capture_enqueue_if_due
from pipeline.orders import order_follow_channel, order_has_shipments, order_ship, orders_process
from pipeline.shipping import PUSH_TASK, shipment_push_queue

PROCESS_TASK = "connectors.tasks.process_inbox_task"


# --- Applying platform orders -------------------------------------------------------------------

def channel_order_apply(*, store: Store, unified: UnifiedOrder, raw_ref: str) -> tuple[Order, str]:
    """Create the order the first time, follow the platform after: channel_orders_apply with one order.
    Returns (order, outcome); a refusal is raised."""
    result = channel_orders_apply(store=store, items=[(unified, raw_ref)])[0]
    if isinstance(result, Exception):
        raise result
    return result


def _payment_target(unified: UnifiedOrder, authorized_paid: bool) -> tuple[str, object, str]:
    """The status to follow, when it was paid, and which payment event that is."""
    if unified.status == "pending_payment" and unified.authorized_at and authorized_paid:
        # A store that captures on fulfilment: the authorization lets the order reserve, route and ship;
        # the capture follows at shipping (pipeline/capture.py) and gets its own snapshot.
        return "paid", unified.authorized_at, PaymentEvent.AUTHORIZATION
    return unified.status, unified.paid_at, PaymentEvent.PAYMENT


# New orders in these platform statuses are entered set-based; any other (already cancelled, shipped,
# a group buy not formed yet) is entered unpaid and then follows the platform through the state machine.
_ENTERED_DIRECTLY = ("paid", "pending_payment")


def channel_orders_apply(*, store: Store, items: list[tuple[UnifiedOrder, str]]
                         ) -> list[tuple[Order, str] | Exception]:
    """Apply a batch of platform orders (at most one version of each) in the caller's transaction.

    New orders go through the set-based steps together: one SKU resolution, orders_insert, one pay
    transition and one payment-snapshot insert for the paid ones, then orders_process (reserve, route,
    approve, parcels) for all. Orders the hub already has follow the platform one by one through the
    state machine (order_follow_channel), each in a savepoint, in order-id order (the lock order).
    Returns per item (order, "created" / "updated" / "stale") or the DomainError refusing it (an unknown
    SKU, an invalid order); a refusal never stops the others. Unexpected errors (a value the database
    refuses) fail the whole batch: the caller retries each item alone.
    """
    label = f"channel:{store.platform}"
    authorized_paid = authorized_counts_as_paid(store_id=store.pk)
    results: list[tuple[Order, str] | Exception | None] = [None] * len(items)
    existing = dict(Order.objects.filter(store=store, platform_order_id__in=[u.platform_order_id for u, _r in items])
                    .values_list("platform_order_id", "pk"))
    new = [index for index, (unified, _r) in enumerate(items) if unified.platform_order_id not in existing]
    follow_existing = [index for index, (unified, _r) in enumerate(items) if unified.platform_order_id in existing]
    if new:
        follow_existing += _channel_orders_create(store=store, items=items, indexes=new, results=results,
                                                  authorized_paid=authorized_paid, label=label)
    if follow_existing:
        existing = dict(Order.objects.filter(store=store, platform_order_id__in=[
            items[index][0].platform_order_id for index in follow_existing]).values_list("platform_order_id", "pk"))
        for index in sorted(follow_existing, key=lambda i: existing[items[i][0].platform_order_id]):
            unified = items[index][0]
            try:
                with transaction.atomic():
                    results[index] = _channel_order_follow(store=store, order_id=existing[unified.platform_order_id],
                                                           unified=unified, authorized_paid=authorized_paid,
                                                           label=label, outcome="updated")
            except DomainError as exc:
                results[index] = exc
    if any(unified.after_sale_requests for unified, _r in items):  # Taobao, Shopify: nothing to do for the rest
        after_sales.channel_orders_after_sales_apply(store=store, items=items, results=results)
    return results


def _channel_orders_create(*, store: Store, items, indexes: list[int], results: list, authorized_paid: bool,
                           label: str) -> list[int]:
    """The new orders of a batch, set-based. Fills ``results``; returns the indexes that turned out to exist
    already (created a moment ago elsewhere), for the caller to follow."""
    unifieds = [items[index][0] for index in indexes]
    resolved = resolve_sku_codes_many(store=store, unifieds=unifieds)
    inputs, entered, targets = [], [], {}
    for index, codes in zip(indexes, resolved, strict=True):
        if isinstance(codes, UnmappedSKU):
            results[index] = codes
            continue
        unified, raw_ref = items[index]
        data = order_input_from_unified(store=store, unified=unified, raw_ref=raw_ref, codes=codes)
        targets[index] = _payment_target(unified, authorized_paid)
        if targets[index][0] in _ENTERED_DIRECTLY:
            data.platform_updated_at = unified.updated_at  # applied here; older versions are skipped
        inputs.append(data)
        entered.append(index)
    skus = sku_ids_and_titles([line.sku_code for data in inputs for line in data.lines])
    inserted = order_services.orders_insert(store=store, inputs=inputs, skus=skus, actor_label=label,
                                            known_absent=True)  # channel_orders_apply has just looked them up
    exists_already, paying, processing, following = [], [], [], []
    for index, data, result in zip(entered, inputs, inserted, strict=True):
        if isinstance(result, OrderInvalid):
            if result.code == "duplicate_order":
                exists_already.append(index)
            else:
                results[index] = result
            continue
        results[index] = (result, "created")
        if data.platform_updated_at is None:
            following.append(index)
            continue
        processing.append(result)
        if targets[index][0] == "paid":
            paying.append((index, result))
    if paying:
        paid_orders = [order for _index, order in paying]
        order_services.orders_mark_paid(
            orders=paid_orders, payments={order.pk: (targets[index][1], None) for index, order in paying},
            actor_label=label, reasons={order.pk: items[index][0].raw_status or items[index][0].status
                                        for index, order in paying})
        payment_snapshots_take(orders=paid_orders, events={order.pk: targets[index][2] for index, order in paying})
    orders_process([order.pk for order in processing], created=processing)
    for index, order in paying:
        unified = items[index][0]
        if targets[index][2] == PaymentEvent.AUTHORIZATION and unified.paid_at:
            # Authorized and already captured on the platform: the capture is recorded beside the authorization.
            payment_snapshot_capture(order=order, amount=order.paid_amount, currency=order.currency,
                                     captured_at=unified.paid_at, source="platform update")
    for index in following:
        order = results[index][0]
        results[index] = (_channel_order_follow(store=store, order_id=order.pk, unified=items[index][0],
                                                authorized_paid=authorized_paid, label=label, outcome="created")[0],
                          "created")
    return exists_already


def _channel_order_follow(*, store: Store, order_id: int, unified: UnifiedOrder, authorized_paid: bool, label: str,
                          outcome: str) -> tuple[Order, str]:
    """An order the hub has follows the platform's status (newer updates only) through the state machine."""
    target, paid_at, payment_event = _payment_target(unified, authorized_paid)
    order, applied = order_follow_channel(
        order_id=order_id, target=target, platform_updated_at=unified.updated_at,
        raw_status=unified.raw_status or unified.status, paid_at=paid_at, payment_event=payment_event,
        actor_label=label, payment_id=unified.payment_id, platform_fee=unified.platform_fee)
    if applied and unified.paid_at:
        # Captured on the platform (by the hub, or by the seller in the platform's admin): recorded once,
        # beside the authorization; an order paid in one step has no authorization and gets nothing here.
        payment_snapshot_capture(order=order, amount=order.paid_amount, currency=order.currency,
                                 captured_at=unified.paid_at, source="platform update")
    if not applied and outcome == "updated":
        outcome = "stale"
    return order, outcome


# --- Draining a store's inbox ---------------------------------------------------------------------

# Inbox rows a worker claims at once: large enough that the per-batch statements vanish per order, small
# enough that a batch's transaction (and its stock row locks) stays well under a second.
INBOX_BATCH_SIZE = 500


def _inbox_fail(message: InboxMessage, exc: Exception) -> str | None:
    """Dead letter or retry for a row that failed alone; None for an error nobody expected (raised on)."""
    if isinstance(exc, json.JSONDecodeError):
        return intake.inbox_mark_dead(message, DeadReason.BAD_PAYLOAD, f"not JSON: {exc}")
    if isinstance(exc, UnmappedSKU):
        return intake.inbox_mark_dead(message, DeadReason.UNMAPPED_SKU, exc.message)
    if isinstance(exc, (AuthError, TransientError)):
        return intake.inbox_retry_later(message, exc.message)
    if isinstance(exc, PermanentError):
        return intake.inbox_mark_dead(message, DeadReason.BAD_PAYLOAD, exc.message)
    if isinstance(exc, DomainError):
        return intake.inbox_mark_dead(message, DeadReason.REJECTED, f"{exc.code}: {exc.message}")
    if isinstance(exc, DataError):
        # A value the database cannot hold (out of range, too long): a person looks at this row; the
        # rows behind it go on instead of stalling on it.
        return intake.inbox_mark_dead(message, DeadReason.REJECTED, f"database refused a value: {exc}")
    return None


def inbox_process_messages(*, store: Store, message_ids: list[int]) -> dict[int, str]:
    """Map and apply a batch of the store's inbox rows; returns the new status of each row handled.

    One version per platform order per batch (a later version waits for the next batch, after this one
    commits). Payloads that only name their order are fetched first, outside any transaction; a row that
    cannot be read or mapped is dead-lettered (or retried later) on its own. The rest are claimed (FOR
    UPDATE SKIP LOCKED), applied with channel_orders_apply and marked, in one transaction: a worker that
    dies mid-batch leaves nothing half-done, and the rows are claimed again. When that transaction fails
    on something no single row was refused for, each row is retried alone, so one bad row becomes a dead
    letter and the others orders.
    """
    messages = sorted(intake.InboxMessage.objects.filter(pk__in=message_ids, status=InboxStatus.PENDING),
                      key=lambda m: (m.platform_updated_at is not None, m.platform_updated_at or 0, m.pk))
    statuses: dict[int, str] = {}
    prepared, seen = [], set()
    for message in messages:
        key = message.platform_order_id or f"#{message.pk}"
        if key in seen:
            continue
        seen.add(key)
        try:
            payload = intake.inbox_payload(message=message, store=store)  # may fetch: outside the transaction
            unified = intake.inbox_map(store=store, payload=payload, body=message.body)
        except Exception as exc:  # noqa: BLE001 - mapped to a dead letter or a retry; anything else re-raised
            status = _inbox_fail(message, exc)
            if status is None:
                raise
            statuses[message.pk] = status
            continue
        prepared.append((message, unified))
    if not prepared:
        return statuses
    try:
        with transaction.atomic():
            claimed = {m.pk for m in inbox.inbox_claim(message_ids=[m.pk for m, _u in prepared])}
            todo = [(m, u) for m, u in prepared if m.pk in claimed]
            results = channel_orders_apply(store=store, items=[(u, f"inbox:{m.pk}") for m, u in todo])
            applied = []
            for (message, _unified), result in zip(todo, results, strict=True):
                if isinstance(result, Exception):
                    statuses[message.pk] = _inbox_fail(message, result) or InboxStatus.PENDING
                else:
                    applied.append((message, result[0].pk, result[1]))
            inbox.inbox_mark_applied_many(outcomes=applied)
            statuses.update({m.pk: m.status for m, _o, _x in applied})
    except Exception as exc:  # noqa: BLE001 - the batch rolled back; see below
        if len(prepared) > 1:
            for message, _unified in prepared:  # each alone: the bad row is found, the rest go through
                statuses.update(inbox_process_messages(store=store, message_ids=[message.pk]))
            return statuses
        message = prepared[0][0]
        message.refresh_from_db()
        status = _inbox_fail(message, exc)
        if status is None:
            raise
        statuses[message.pk] = status
    return statuses


def inbox_process_message(*, message_id: int, store: Store | None = None) -> str:
    """Process one inbox row (a batch of one). Returns the row's new status."""
    message = intake.InboxMessage.objects.select_related("store").get(pk=message_id)
    if message.status != InboxStatus.PENDING:
        return message.status
    statuses = inbox_process_messages(store=store or message.store, message_ids=[message_id])
    return statuses.get(message_id) or intake.InboxMessage.objects.get(pk=message_id).status


def inbox_process_store(*, store_id: int, limit: int = 20_000, batch_size: int = INBOX_BATCH_SIZE) -> int:
    """Drain the store's due inbox rows, partition by partition, batch by batch. Returns how many were handled.

    Each partition is drained only while this worker holds its lock (connectors.inbox), so several
    workers drain one store at once, each in its own partitions, and two versions of one order are never
    applied concurrently; within a partition rows go in platform-update order. Partitions another worker
    holds are left to it (it drains until its partition is empty).
    """
    store = Store.objects.get(pk=store_id)
    intake.sync_state_for(store)
    handled = 0
    while handled < limit:
        due = inbox.inbox_due_partitions(store_id=store_id)
        random.shuffle(due)  # workers starting together spread over the partitions
        progress = 0
        for partition in due:
            if handled + progress >= limit or not inbox.inbox_partition_lock(store_id, partition):
                continue
            try:
                while handled + progress < limit:
                    ids = inbox.inbox_due_ids(store_id=store_id, partition=partition, limit=batch_size)
                    moved = len(inbox_process_messages(store=store, message_ids=ids)) if ids else 0
                    if not moved:
                        break
                    progress += moved
            finally:
                inbox.inbox_partition_unlock(store_id, partition)
        handled += progress
        if not progress:
            return handled
    # Stopped at the limit with rows left: hand the rest to a fresh task rather than waiting for the sweeper.
    if inbox.inbox_due_partitions(store_id=store_id):
        inbox_schedule_processing(store_id=store_id)
    return handled


def inbox_schedule_processing(*, store_id: int) -> None:
    """Drain the store's inbox on a worker once the rows just stored are committed (a debounced wake: one
    drain serves every row stored in the same second)."""
    inbox_wake(store_id)


def inbox_drain_helpers_request(*, store_id: int) -> int:
    """Queue drains that help this one: one per further partition with rows waiting, up to
    OMS_INBOX_DRAIN_WORKERS in all. Returns how many were queued."""
    partitions = len(inbox.inbox_due_partitions(store_id=store_id))
    helpers = max(0, min(partitions, settings.OMS_INBOX_DRAIN_WORKERS) - 1)
    for _helper in range(helpers):
        task_after_commit(PROCESS_TASK, store_id=store_id, fan_out=False)
    return helpers


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


