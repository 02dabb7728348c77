"""Write operations of finance: one payment snapshot per payment event of an order.

Each snapshot carries the platform's payment id and reported fee as the order had them when it was taken
(Order.payment_id / platform_fee, filled by the connectors' mappers). Snapshots taken before those columns
existed, or of orders whose platform names no payment, have an empty payment_id: settlement matching then
falls back to the platform order id (and the merchant order number), never to a guess.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import NamedTuple

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from finance.models import (
    Difference,
    DifferenceStatus,
    FinancePeriod,
    FinancePeriodStatus,
    PaymentEvent,
    PaymentSnapshot,
)
from oms.bulk import rows_insert
from oms.exceptions import ConflictError, NotFoundError
from orders.models import Order, OrderLine


class _LineFacts(NamedTuple):
    """What a snapshot keeps of a line, read without model instances for a batch."""

    line_no: int
    sku_code: str
    quantity: int
    unit_price: Decimal
    discount_amount: Decimal


def _order_data(order: Order, lines=None) -> dict:
    lines = [
        {"line_no": line.line_no, "sku_code": line.sku_code, "quantity": line.quantity,
         "unit_price": str(line.unit_price), "discount_amount": str(line.discount_amount)}
        for line in (order.lines.all() if lines is None else lines)
    ]
    return {
        "order_number": order.number, "store": order.store.code, "platform_order_id": order.platform_order_id,
        "currency": order.currency, "goods_amount": str(order.goods_amount),
        "discount_amount": str(order.discount_amount), "shipping_amount": str(order.shipping_amount),
        "tax_amount": str(order.tax_amount), "total_amount": str(order.total_amount),
        "paid_amount": str(order.paid_amount), "paid_at": order.paid_at.isoformat() if order.paid_at else None,
        "lines": lines,
    }


def payment_snapshot_take(*, order: Order, event: str = PaymentEvent.PAYMENT) -> PaymentSnapshot:
    """The snapshot of the moment the order counts as paid: a payment, or an authorization still to capture."""
    return payment_snapshots_take(orders=[order], events={order.pk: event})[0]


def payment_snapshots_take(*, orders: list[Order], events: dict[int, str]) -> list[PaymentSnapshot]:
    """payment_snapshot_take for a batch: one read of the lines, one INSERT. ``events`` maps order id → event."""
    if not orders:
        return []
    lines_of: dict[int, list] = {order.pk: [] for order in orders}
    for order in orders:
        if "lines" in getattr(order, "_prefetched_objects_cache", {}):  # written by this batch: no read
            lines_of[order.pk] = list(order.lines.all())
    rest = [order.pk for order in orders if not lines_of[order.pk]]
    for line in (OrderLine.objects.filter(order_id__in=rest).order_by("order_id", "line_no").values(
            "order_id", "line_no", "sku_code", "quantity", "unit_price", "discount_amount") if rest else ()):
        lines_of[line["order_id"]].append(_LineFacts(**{k: v for k, v in line.items() if k != "order_id"}))
    return rows_insert([
        PaymentSnapshot(order=order, currency=order.currency, paid_amount=order.paid_amount,
                        data={**_order_data(order, lines_of[order.pk]), "event": str(events[order.pk])},
                        event=events[order.pk], payment_id=order.payment_id, platform_fee=order.platform_fee)
        for order in orders])


def _captured_payment_id(order: Order, transactions: list | None) -> str:
    """The capture's own transaction id (a settlement lists the capture, not the authorization), else the
    order's payment id."""
    for transaction_data in transactions or []:
        if isinstance(transaction_data, dict) and transaction_data.get("kind") == "capture" \
                and transaction_data.get("status", "success") == "success" and transaction_data.get("id"):
            return str(transaction_data["id"])[:64]
    return order.payment_id


def payment_snapshot_capture(*, order: Order, amount: Decimal, currency: str, captured_at: datetime | None,
                             source: str, reference: str = "", transactions: list | None = None
                             ) -> PaymentSnapshot | None:
    """Record that an authorized payment was captured: a second snapshot beside the authorization's.

    Returns None when the order has no authorization snapshot (it was paid in one step) or when the
    capture is already recorded (the hub's capture and the platform's update both report it).
    """
    if not PaymentSnapshot.objects.filter(order=order, event=PaymentEvent.AUTHORIZATION).exists():
        return None
    if PaymentSnapshot.objects.filter(order=order, event=PaymentEvent.CAPTURE).exists():
        return None
    data = {**_order_data(order), "event": PaymentEvent.CAPTURE, "source": source,
            "captured_amount": str(amount), "captured_at": captured_at.isoformat() if captured_at else None,
            "transactions": transactions or []}
    try:
        with transaction.atomic():  # a savepoint: a concurrent recording of the same capture wins quietly
            return PaymentSnapshot.objects.create(order=order, currency=currency or order.currency,
                                                  paid_amount=amount, data=data, event=PaymentEvent.CAPTURE,
                                                  reference=reference[:200],
                                                  payment_id=_captured_payment_id(order, transactions),
                                                  platform_fee=order.platform_fee)
    except IntegrityError:
        return None


# --- Differences ------------------------------------------------------------------------------------------------


def finance_month_closed(*, store_id: int | None, month) -> bool:
    """Whether the month is closed for the store or for all stores: its differences then stay as they are."""
    stores = Q(store__isnull=True) | (Q(store_id=store_id) if store_id else Q())
    return FinancePeriod.objects.filter(stores, month=month, status=FinancePeriodStatus.CLOSED).exists()


def finance_month_refuse_closed(*, store_id: int | None, month) -> None:
    """Refuse a change to a closed month (409 finance_period_closed): its differences stay as they were closed.
    ``month`` is the month's first day."""
    if finance_month_closed(store_id=store_id, month=month):
        raise ConflictError(_("The period %(month)s is closed; reopen it first.") % {"month": f"{month:%Y-%m}"},
                            code="finance_period_closed")


def _difference_locked(difference_id: int) -> Difference:
    """The difference, locked until the transaction ends (two people resolving it at once do not both win);
    404 difference_not_found, 409 finance_period_closed when its month is closed."""
    difference = Difference.objects.select_for_update().filter(pk=difference_id).first()
    if difference is None:
        raise NotFoundError(_("Difference %(id)s does not exist.") % {"id": difference_id},
                            code="difference_not_found")
    finance_month_refuse_closed(store_id=difference.store_id, month=difference.month)
    return difference


def difference_resolve(*, difference_id: int, user, note: str) -> Difference:
    """Close one open difference with who, when and why; 409 difference_not_open when it is resolved already."""
    with transaction.atomic():
        difference = _difference_locked(difference_id)
        if difference.status != DifferenceStatus.OPEN:
            raise ConflictError(_("The difference is already resolved."), code="difference_not_open",
                                data={"status": difference.status})
        difference.resolve()
        difference.resolved_by, difference.resolved_at, difference.resolution_note = user, timezone.now(), note
        difference.save(update_fields=["status", "resolved_by", "resolved_at", "resolution_note"])
    return difference


def difference_reopen(*, difference_id: int) -> Difference:
    """Open a resolved difference again, its resolution cleared; 409 difference_not_resolved when it is open."""
    with transaction.atomic():
        difference = _difference_locked(difference_id)
        if difference.status != DifferenceStatus.RESOLVED:
            raise ConflictError(_("The difference is not resolved."), code="difference_not_resolved",
                                data={"status": difference.status})
        difference.reopen()
        difference.resolved_by, difference.resolved_at, difference.resolution_note = None, None, ""
        difference.save(update_fields=["status", "resolved_by", "resolved_at", "resolution_note"])
    return difference
