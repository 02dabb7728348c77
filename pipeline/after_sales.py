"""Platform after-sales as a flow: from the connectors' after-sales (in order payloads or polled) to tickets.

connectors/ maps a platform after-sale into a UnifiedAfterSale; aftersales/ opens or follows its ticket from plain
values (aftersales.platform). Here the two meet: the platform's line ids become order lines, the order is found,
and each polled after-sale row of the inbox is applied once, in platform-update order, or dead-lettered.
"""

from __future__ import annotations

import logging

from django.db import transaction

from aftersales.models import Refund, RefundMethod, Ticket
from aftersales.platform import PlatformAfterSale, PlatformAfterSaleLine, ticket_upsert_from_platform
from connectors import after_sales as intake
from connectors.base import PermanentError, UnifiedAfterSale, UnifiedOrder
from connectors.models import DeadReason, InboxMessage, InboxStatus
from connectors.services import inbox_lock_pending
from oms.exceptions import DomainError
from orders.models import Order, OrderLine, Store

logger = logging.getLogger(__name__)


def _lines(order: Order, after_sale: UnifiedAfterSale) -> list[PlatformAfterSaleLine]:
    """The after-sale's lines as order lines: by the platform's line id, else its SKU id, else the merchant code.
    A line the order does not have is left out (none found: the ticket is on the whole order)."""
    order_lines = list(OrderLine.objects.filter(order=order).order_by("line_no"))
    found = []
    for item in after_sale.lines:
        line = next((line for line in order_lines if item.platform_line_id
                     and line.platform_line_id == item.platform_line_id), None) \
            or next((line for line in order_lines if item.platform_sku_id
                     and line.platform_sku_id == item.platform_sku_id), None) \
            or next((line for line in order_lines if item.sku and line.sku_code == item.sku), None)
        if line is not None and all(existing.order_line_id != line.pk for existing in found):
            found.append(PlatformAfterSaleLine(order_line_id=line.pk, quantity=item.quantity))
    return found


def _hub_refund(*, store: Store, order: Order, after_sale: UnifiedAfterSale) -> Refund | None:
    """The hub's own refund on ``order`` that this after-sale is, coming back from the platform (Shopify lists
    every refund of the order, those the hub sent too), when no ticket follows this after-sale yet. The platform
    refund id the hub kept for it (numeric; a GraphQL gid compared by its number) is the after-sale's id."""
    after_sale_id = after_sale.platform_after_sale_id
    if not after_sale_id or Ticket.objects.filter(store=store, platform_after_sale_id=after_sale_id).exists():
        return None  # a ticket opened from this after-sale follows it, even when the hub paid it
    ids = {after_sale_id, after_sale_id.rsplit("/", 1)[-1]}
    return Refund.objects.filter(order=order, method=RefundMethod.PLATFORM, platform_refund_id__in=ids).exclude(
        platform_refund_id="").select_related("ticket").order_by("id").first()


def platform_after_sale_apply(*, store: Store, order: Order, after_sale: UnifiedAfterSale) -> tuple[object, str]:
    """Open or follow the ticket of one platform after-sale of ``order``. Returns (ticket, outcome); the hub's
    own refund coming back opens nothing: (its ticket, "own_refund")."""
    own = _hub_refund(store=store, order=order, after_sale=after_sale)
    if own is not None:
        logger.info("after-sale %s of order %s is the hub's refund %s: no ticket opened",
                    after_sale.platform_after_sale_id, order.pk, own.pk)
        return own.ticket, "own_refund"
    plain = PlatformAfterSale(
        platform_after_sale_id=after_sale.platform_after_sale_id, type=after_sale.type, status=after_sale.status,
        raw_status=after_sale.raw_status, updated_at=after_sale.updated_at, lines=_lines(order, after_sale),
        reason_text=after_sale.reason_text, refund_amount=after_sale.refund_amount,
        return_tracking_number=after_sale.return_tracking_number)
    return ticket_upsert_from_platform(store_id=store.pk, order_id=order.pk, after_sale=plain,
                                       actor_label=f"channel:{store.platform}")


def channel_orders_after_sales_apply(*, store: Store, items: list[tuple[UnifiedOrder, str]], results: list) -> int:
    """The after-sales carried in a batch's order payloads (Taobao, Shopify), after the orders were applied, in
    the batch's transaction. Each in a savepoint: a refused after-sale never undoes its order (it is logged; the
    order's raw payload stays in the inbox to replay). Returns how many were applied."""
    applied = 0
    for (unified, raw_ref), result in zip(items, results, strict=True):
        if not unified.after_sale_requests or not isinstance(result, tuple):
            continue
        order = result[0]
        for after_sale in unified.after_sale_requests:
            try:
                with transaction.atomic():
                    platform_after_sale_apply(store=store, order=order, after_sale=after_sale)
                applied += 1
            except DomainError as exc:
                logger.warning("after-sale %s of order %s (%s) refused: %s %s", after_sale.platform_after_sale_id,
                               order.pk, raw_ref, exc.code, exc.message)
    return applied


def after_sales_process_store(*, store_id: int, limit: int = 2000) -> dict[int, str]:
    """Apply the store's due polled after-sale rows, oldest platform update first. Returns each row's status.

    A row that cannot be read or mapped is a dead letter; one whose order the hub does not have yet waits and is
    retried (the order poll brings it), until the attempts run out; one the tickets refuse is a dead letter with
    the reason. Applying a row and marking it happen in one transaction, under the row's lock.
    """
    store = Store.objects.get(pk=store_id)
    statuses: dict[int, str] = {}
    for message_id in intake.after_sale_due_ids(store_id=store_id, limit=limit):
        message = InboxMessage.objects.get(pk=message_id)
        if message.status != InboxStatus.PENDING:
            continue
        try:
            unified = intake.after_sale_map(platform=store.platform, body=message.body)
        except PermanentError as exc:
            statuses[message.pk] = intake.after_sale_dead(message, DeadReason.BAD_PAYLOAD, exc.message)
            continue
        order = Order.objects.filter(store=store, platform_order_id=unified.platform_order_id).first()
        if order is None:
            statuses[message.pk] = intake.after_sale_retry_later(
                message, f"order {unified.platform_order_id} is not in the hub yet")
            continue
        try:
            with transaction.atomic():
                if inbox_lock_pending(message_id=message.pk) is None:
                    continue
                _ticket, outcome = platform_after_sale_apply(store=store, order=order, after_sale=unified)
                statuses[message.pk] = intake.after_sale_mark(message=message, order_id=order.pk, outcome=outcome)
        except DomainError as exc:
            statuses[message.pk] = intake.after_sale_dead(message, DeadReason.REJECTED, f"{exc.code}: {exc.message}")
    return statuses


def store_after_sales_sync(*, store_id: int, now=None) -> dict:
    """One beat of a store's platform after-sales: poll the list (Douyin, PDD) and apply what is due. A platform
    failure is kept on the sync state and retried on the next beat."""
    if not intake.after_sales_polled(Store.objects.values_list("platform", flat=True).get(pk=store_id)):
        return {"poll": "disabled", "fetched": 0, "stored": 0, "applied": 0}
    result = intake.after_sales_poll(store_id=store_id, now=now)
    statuses = after_sales_process_store(store_id=store_id)
    return {"poll": result.status, "fetched": result.fetched, "stored": result.stored, "applied": len(statuses)}
