"""Write operations on the order rows alone: creation, every status transition, holds and notes.

Each state change follows one recipe: open a transaction, lock the order row, check the transition
is allowed from the state found in the database, call it, save only the changed fields, write the
event row. Nothing here reaches another app: what a change means for stock, parcels, payments and
platforms is the pipeline's (pipeline/orders.py), which calls these inside its own transaction.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django_fsm import can_proceed

from oms.bulk import rows_insert, rows_update
from oms.events import events_record_many
from oms.exceptions import DomainError
from oms.fsm import transition_label as fsm_transition_label
from oms.locks import lock_one
from oms.sequences import next_sequence_value, next_sequence_values
from orders import events
from orders.exceptions import (
    HoldConflict,
    IdempotencyKeyReused,
    OrderInvalid,
    OrderNotFound,
    TransitionNotAllowed,
)
from orders.models import (
    AMOUNT_COLUMN_MAX,
    IDEMPOTENCY_KEY_MAX_LENGTH,
    LINE_MAX_QUANTITY,
    LINE_MAX_UNIT_PRICE,
    ORDER_MAX_FEE,
    ORDER_MAX_LINES,
    CancelReason,
    HoldReason,
    IdempotencyRecord,
    Order,
    OrderLine,
    OrderStatus,
    Platform,
    Priority,
    Store,
)

CENT = Decimal("0.01")
PAYMENT_ID_MAX_LENGTH = Order._meta.get_field("payment_id").max_length


# --- Input shapes ------------------------------------------------------------------------------

@dataclass
class LineInput:
    sku_code: str
    quantity: int
    unit_price: Decimal
    title: str = ""
    discount_amount: Decimal = Decimal("0")
    platform_sku_id: str = ""
    platform_line_id: str = ""


@dataclass
class ReceiverInput:
    name: str
    phone: str
    address: str
    country: str = "CN"
    province: str = ""
    city: str = ""
    district: str = ""
    zip: str = ""


@dataclass
class BuyerInput:
    id: str = ""
    name: str = ""
    email: str = ""
    phone: str = ""


@dataclass
class OrderInput:
    """Everything needed to create an order, whatever the channel (manual form, API, connector)."""

    platform_order_id: str
    lines: list[LineInput]
    receiver: ReceiverInput
    buyer: BuyerInput = field(default_factory=BuyerInput)
    currency: str = ""  # empty: the store's default currency
    shipping_amount: Decimal = Decimal("0")
    discount_amount: Decimal = Decimal("0")
    tax_amount: Decimal = Decimal("0")
    expected_total: Decimal | None = None
    # The platform's own total is authoritative for channel orders (its rounding, its fees).
    platform_total: Decimal | None = None
    paid: bool = False
    paid_at: datetime | None = None
    placed_at: datetime | None = None
    platform_updated_at: datetime | None = None
    priority: int = Priority.NORMAL
    tags: list[str] = field(default_factory=list)
    buyer_note: str = ""
    seller_note: str = ""
    raw_payload_ref: str = ""
    receiver_ciphertext: dict = field(default_factory=dict)
    # The platform's payment/transaction id and the fee it reported (None: not reported), for settlement matching.
    payment_id: str = ""
    platform_fee: Decimal | None = None
    # A replacement (after-sales exchange or resend): the order it replaces, and a number that says so
    # (empty: the next number from the sequence).
    replaces_id: int | None = None
    number: str = ""


# --- Helpers -----------------------------------------------------------------------------------

def _get_order_for_update(order_id: int) -> Order:
    try:
        return lock_one(Order, order_id)
    except Order.DoesNotExist as exc:
        raise OrderNotFound(_("Order %(id)s does not exist.") % {"id": order_id}) from exc


def order_number_next() -> str:
    return f"{settings.ORDER_NUMBER_PREFIX}{next_sequence_value('order_number'):08d}"


def _money(value: Decimal) -> Decimal:
    return Decimal(value).quantize(CENT)


def _check_amount_ranges(data: OrderInput) -> None:
    """Refuse quantities and amounts that would not fit the order's columns (a database error, a 500)."""
    errors: dict[str, list[str]] = {}

    def too_large(name: str, value, limit) -> None:
        if value is not None and value > limit:
            errors.setdefault(name, []).append(_("At most %(limit)s.") % {"limit": limit})

    if len(data.lines) > ORDER_MAX_LINES:
        errors.setdefault("lines", []).append(
            _("An order has at most %(limit)s lines.") % {"limit": ORDER_MAX_LINES})
    for index, line in enumerate(data.lines):
        too_large(f"lines[{index}].quantity", line.quantity, LINE_MAX_QUANTITY)
        too_large(f"lines[{index}].unit_price", line.unit_price, LINE_MAX_UNIT_PRICE)
    for name in ("shipping_amount", "discount_amount", "tax_amount"):
        too_large(name, getattr(data, name), ORDER_MAX_FEE)
    too_large("total_amount", data.expected_total, AMOUNT_COLUMN_MAX)
    too_large("total_amount", data.platform_total, AMOUNT_COLUMN_MAX)
    too_large("platform_fee", data.platform_fee, AMOUNT_COLUMN_MAX)
    if len(data.payment_id) > PAYMENT_ID_MAX_LENGTH:
        errors.setdefault("payment_id", []).append(
            _("At most %(limit)s characters.") % {"limit": PAYMENT_ID_MAX_LENGTH})
    if errors:
        raise OrderInvalid(_("A quantity or an amount is out of range."), code="amount_out_of_range",
                           data=errors)


def _validate_order_input(*, store: Store, data: OrderInput, skus: dict[str, tuple[int, str]]) -> dict:
    """Check the input and compute the amounts; every problem is reported per field at once."""
    _check_amount_ranges(data)
    errors: dict[str, list[str]] = {}
    if not store.active:
        errors.setdefault("store", []).append(_("Store %(store)s is not active.") % {"store": store.code})
    if not data.platform_order_id.strip() and store.platform != Platform.MANUAL:
        errors.setdefault("platform_order_id", []).append(_("This field may not be blank."))
    if not data.lines:
        errors.setdefault("lines", []).append(_("An order needs at least one line."))
    for index, line in enumerate(data.lines):
        if line.quantity is None or line.quantity <= 0:
            errors.setdefault(f"lines[{index}].quantity", []).append(_("Quantity must be at least 1."))
        if line.unit_price < 0:
            errors.setdefault(f"lines[{index}].unit_price", []).append(_("Price may not be negative."))
        if line.discount_amount < 0:
            errors.setdefault(f"lines[{index}].discount_amount", []).append(_("Discount may not be negative."))
        elif line.quantity and line.quantity > 0 and line.discount_amount > line.unit_price * line.quantity:
            errors.setdefault(f"lines[{index}].discount_amount", []).append(
                _("Discount may not exceed the line amount."))
    for index, line in enumerate(data.lines):
        if line.sku_code not in skus:
            errors.setdefault(f"lines[{index}].sku_code", []).append(
                _("Unknown SKU code %(code)s.") % {"code": line.sku_code})
    for name in ("shipping_amount", "discount_amount", "tax_amount"):
        if getattr(data, name) < 0:
            errors.setdefault(name, []).append(_("Amount may not be negative."))
    if data.platform_fee is not None and data.platform_fee < 0:
        errors.setdefault("platform_fee", []).append(_("Amount may not be negative."))
    if errors:
        raise OrderInvalid(_("The order is not valid."), data=errors)

    goods = sum((_money(line.unit_price) * line.quantity for line in data.lines), Decimal("0"))
    discount = _money(data.discount_amount) + sum((_money(line.discount_amount) for line in data.lines), Decimal("0"))
    total = goods - discount + _money(data.shipping_amount) + _money(data.tax_amount)
    if total < 0:
        raise OrderInvalid(_("The discount is larger than the order."), data={"discount_amount": [_("Too large.")]})
    if data.platform_total is not None:
        if data.platform_total < 0:
            raise OrderInvalid(_("The total may not be negative."), data={"total_amount": [_("Negative.")]})
        computed, total = total, _money(data.platform_total)
        return {"goods_amount": goods, "discount_amount": discount, "total_amount": total, "computed_total": computed}
    if data.expected_total is not None and _money(data.expected_total) != total:
        raise OrderInvalid(
            _("The total does not add up."),
            data={"total_amount": [_("Expected %(computed)s from lines, discount, shipping and tax.") % {"computed": total}]},
        )
    return {"goods_amount": goods, "discount_amount": discount, "total_amount": total}


# --- Creation ----------------------------------------------------------------------------------

def order_insert(*, store: Store, data: OrderInput, skus: dict[str, tuple[int, str]], actor=None,
                 actor_label: str = "system") -> Order:
    """Write one new order: orders_insert with a batch of one; its refusal is raised."""
    result = orders_insert(store=store, inputs=[data], skus=skus, actor=actor, actor_label=actor_label)[0]
    if isinstance(result, Exception):
        raise result
    return result


def _order_row(*, store: Store, data: OrderInput, amounts: dict, number: str) -> Order:
    return Order(
        number=data.number or number, store=store, replaces_id=data.replaces_id,
        # Manual orders without an outside id are known by their own number.
        platform_order_id=data.platform_order_id.strip() or number,
        buyer_id=data.buyer.id, buyer_name=data.buyer.name, buyer_email=data.buyer.email, buyer_phone=data.buyer.phone,
        receiver_name=data.receiver.name, receiver_phone=data.receiver.phone,
        receiver_country=data.receiver.country or "CN", receiver_province=data.receiver.province,
        receiver_city=data.receiver.city, receiver_district=data.receiver.district,
        receiver_address=data.receiver.address, receiver_zip=data.receiver.zip,
        receiver_ciphertext=data.receiver_ciphertext,
        currency=(data.currency or store.default_currency).upper(),
        goods_amount=amounts["goods_amount"], discount_amount=amounts["discount_amount"],
        shipping_amount=_money(data.shipping_amount), tax_amount=_money(data.tax_amount),
        total_amount=amounts["total_amount"], priority=data.priority, tags=list(data.tags),
        buyer_note=data.buyer_note, seller_note=data.seller_note, placed_at=data.placed_at or timezone.now(),
        platform_updated_at=data.platform_updated_at, raw_payload_ref=data.raw_payload_ref,
        payment_id=data.payment_id.strip(),
        platform_fee=None if data.platform_fee is None else _money(data.platform_fee))


def _duplicate(store: Store, platform_order_id: str) -> OrderInvalid:
    return OrderInvalid(
        _("Store %(store)s already has an order %(id)s.") % {"store": store.code, "id": platform_order_id},
        code="duplicate_order", http_status=409, data={"platform_order_id": [_("Already exists in this store.")]})


def orders_insert(*, store: Store, inputs: list[OrderInput], skus: dict[str, tuple[int, str]], actor=None,
                  actor_label: str = "system", known_absent: bool = False) -> list[Order | OrderInvalid]:
    """Write new orders with their lines and "created" events, set-based: one INSERT each for orders,
    lines and events, whatever the batch size. Nothing more (pipeline.orders pays, reserves and routes).

    Returns, per input in the same order, the new Order or the OrderInvalid refusing it (invalid
    input, unknown SKU, or a platform id the store already has); a refusal never stops the others.
    ``skus`` maps each known active SKU code to (SKU id, name): the caller resolves them once per batch.
    ``known_absent``: the caller has just looked the platform ids up (the unique constraint still has the
    last word on a concurrent insert).
    """
    results: list[Order | OrderInvalid | None] = [None] * len(inputs)
    valid: list[tuple[int, OrderInput, dict]] = []
    for index, data in enumerate(inputs):
        try:
            valid.append((index, data, _validate_order_input(store=store, data=data, skus=skus)))
        except OrderInvalid as exc:
            results[index] = exc
    wanted = {data.platform_order_id.strip() for _i, data, _a in valid if data.platform_order_id.strip()}
    taken = set(Order.objects.filter(store=store, platform_order_id__in=wanted)
                .values_list("platform_order_id", flat=True)) if wanted and not known_absent else set()
    seen: set[str] = set()
    fresh = []
    for index, data, amounts in valid:
        platform_id = data.platform_order_id.strip()
        if platform_id and (platform_id in taken or platform_id in seen):
            results[index] = _duplicate(store, data.platform_order_id)
            continue
        seen.add(platform_id)
        fresh.append((index, data, amounts))
    if not fresh:
        return results
    numbers = [f"{settings.ORDER_NUMBER_PREFIX}{value:08d}"
               for value in next_sequence_values("order_number", len(fresh))]
    orders = [_order_row(store=store, data=data, amounts=amounts, number=number)
              for (_i, data, amounts), number in zip(fresh, numbers, strict=True)]
    try:
        with transaction.atomic():
            rows_insert(orders)
    except IntegrityError:
        # A concurrent writer created one of these platform ids between the check and the insert:
        # each order is tried alone, so only that one is refused.
        if len(fresh) == 1:
            index, data, _amounts = fresh[0]
            if not Order.objects.filter(store=store, platform_order_id=data.platform_order_id.strip()).exists():
                raise
            results[index] = _duplicate(store, data.platform_order_id)
            return results
        for index, data, _amounts in fresh:
            results[index] = orders_insert(store=store, inputs=[data], skus=skus, actor=actor,
                                           actor_label=actor_label)[0]  # checked again, one by one
        return results
    lines_of = {order.pk: [
        OrderLine(order=order, line_no=number + 1, sku_code=line.sku_code, sku_id=skus[line.sku_code][0],
                  platform_sku_id=line.platform_sku_id, platform_line_id=line.platform_line_id,
                  title=line.title or skus[line.sku_code][1], quantity=line.quantity,
                  unit_price=_money(line.unit_price), discount_amount=_money(line.discount_amount))
        for number, line in enumerate(data.lines)] for order, (_i, data, _a) in zip(orders, fresh, strict=True)}
    rows_insert([line for order in orders for line in lines_of[order.pk]])
    for order in orders:
        # The lines just written ride along as if prefetched (order.lines.all() needs no query): the batch's
        # later steps (routing facts, payment snapshots) read them from here.
        prefetched = order.lines.all()
        prefetched._result_cache, prefetched._prefetch_done = lines_of[order.pk], True
        order._prefetched_objects_cache = {"lines": prefetched}
    created = []
    for order, (index, data, amounts) in zip(orders, fresh, strict=True):
        created_data = {"channel": store.platform, "total": str(order.total_amount), "currency": order.currency,
                        "lines": len(data.lines)}
        computed_total = amounts.get("computed_total")
        if computed_total is not None and computed_total != order.total_amount:
            created_data["computed_total"] = str(computed_total)  # lines + fees disagree with the platform
        created.append(events.event_order_created_row(order=order, actor=actor, actor_label=actor_label,
                                                      data=created_data))
        results[index] = order
    events_record_many(created)
    return results


def order_check_manual_store(*, store: Store) -> None:
    """Manual orders (WeChat/offline) are created only in a manual store."""
    if store.platform != Platform.MANUAL:
        raise OrderInvalid(_("Manual orders can only be created in a manual store."),
                           data={"store": [_("Not a manual store.")]})


def request_fingerprint(payload) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def _idempotency_cutoff(now: datetime | None = None) -> datetime:
    return (now or timezone.now()) - timedelta(hours=settings.IDEMPOTENCY_KEY_TTL_HOURS)


def idempotent_call(*, user, endpoint: str, key: str, fingerprint: str, perform) -> tuple[int, dict, bool]:
    """Run ``perform()`` once per (user, endpoint, key); retries get the first answer back.

    ``perform`` returns ``(status, body, order)``. Returns ``(status, body, replayed)``. A failing
    ``perform`` rolls back the key too, so a corrected retry with the same key can still succeed.
    Concurrent requests with the same key wait on the unique index and then replay. A key is
    remembered for IDEMPOTENCY_KEY_TTL_HOURS: after that it counts as new (and the purge drops it).
    """
    key = key.strip()
    if not key:
        raise DomainError(_("The Idempotency-Key is empty."), code="idempotency_key_invalid")
    if len(key) > IDEMPOTENCY_KEY_MAX_LENGTH:
        # Cutting it would make two different keys collide and replay someone else's answer.
        raise DomainError(_("The Idempotency-Key may have at most %(limit)s characters.") % {
            "limit": IDEMPOTENCY_KEY_MAX_LENGTH}, code="idempotency_key_too_long")
    with transaction.atomic():
        # An expired record is not replayed; deleting it first lets the key start afresh (a concurrent
        # request with the same key waits on this row lock, then on the unique index, then replays).
        IdempotencyRecord.objects.filter(user=user, endpoint=endpoint, key=key,
                                         created_at__lt=_idempotency_cutoff()).delete()
        try:
            with transaction.atomic():
                record = IdempotencyRecord.objects.create(user=user, endpoint=endpoint, key=key,
                                                          request_hash=fingerprint)
        except IntegrityError:
            record = IdempotencyRecord.objects.get(user=user, endpoint=endpoint, key=key)
            if record.request_hash != fingerprint:
                raise IdempotencyKeyReused(
                    _("This Idempotency-Key was already used with a different request.")) from None
            return record.response_status, record.response_body, True
        status, body, order = perform()
        record.response_status, record.response_body, record.order = status, body, order
        record.save(update_fields=["response_status", "response_body", "order"])
    return status, body, False


def idempotency_records_purge(*, now: datetime | None = None) -> int:
    """Delete the idempotency records older than IDEMPOTENCY_KEY_TTL_HOURS; returns how many went."""
    deleted, _by_model = IdempotencyRecord.objects.filter(created_at__lt=_idempotency_cutoff(now)).delete()
    return deleted


# --- Transitions -------------------------------------------------------------------------------

def transition_label(name: str) -> str:
    """The translated button label of an order transition (its name if it has none)."""
    return fsm_transition_label(Order, name)


def order_transition(*, order_id: int, name: str, actor, actor_label: str, reason: str = "",
                data: dict | None = None, before=None, extra_fields: tuple[str, ...] = ()) -> Order:
    """Apply the FSM transition ``name`` under the row lock and write its event."""
    with transaction.atomic():
        order = _get_order_for_update(order_id)
        method = getattr(order, name)
        if not can_proceed(method):
            raise TransitionNotAllowed(
                _("Order %(number)s cannot be changed by “%(action)s” while it is %(status)s.") % {
                    "number": order.number, "action": transition_label(name), "status": order.get_status_display()},
                data={"status": order.status, "transition": name},
            )
        if before is not None:
            before(order)
        from_status = order.status
        method()
        order.save(update_fields=["status", "status_before_hold", "updated_at", *extra_fields])
        events.event_order_status_changed(order=order, from_status=from_status, to_status=order.status,
                                          transition=name, actor=actor, actor_label=actor_label,
                                          reason=reason, data=data)
    return order


def orders_transition_many(*, orders: list[Order], name: str, actor=None, actor_label: str = "system",
                           reasons: dict[int, str] | None = None, reason: str = "",
                           data_for=None, before=None, extra_fields: tuple[str, ...] = ()) -> list[Order]:
    """order_transition for a batch of orders the caller has locked: the same check and event per order,
    one UPDATE and one INSERT of events for the whole batch. ``reasons`` (by order id) overrides ``reason``;
    ``data_for(order)`` gives an event's data; ``before(order)`` sets the extra fields."""
    if not orders:
        return orders
    now = timezone.now()
    rows = []
    for order in orders:
        method = getattr(order, name)
        if not can_proceed(method):
            raise TransitionNotAllowed(
                _("Order %(number)s cannot be changed by “%(action)s” while it is %(status)s.") % {
                    "number": order.number, "action": transition_label(name), "status": order.get_status_display()},
                data={"status": order.status, "transition": name})
        if before is not None:
            before(order)
        from_status = order.status
        method()
        order.updated_at = now
        rows.append(events.event_order_status_changed_row(
            order=order, from_status=from_status, to_status=order.status, transition=name, actor=actor,
            actor_label=actor_label, reason=(reasons or {}).get(order.pk, reason),
            data=data_for(order) if data_for else None))
    rows_update(orders, ["status", "status_before_hold", "updated_at", *extra_fields])
    events_record_many(rows)
    return orders


def orders_mark_paid(*, orders: list[Order], payments: dict[int, tuple[datetime | None, Decimal | None]],
                     actor=None, actor_label: str = "system", reasons: dict[int, str] | None = None) -> list[Order]:
    """order_mark_paid for a locked batch; ``payments`` maps order id → (paid_at, paid_amount or None for the total)."""
    now = timezone.now()

    def record_payment(order: Order) -> None:
        paid_at, paid_amount = payments.get(order.pk, (None, None))
        order.paid_at = paid_at or now
        order.paid_amount = order.total_amount if paid_amount is None else paid_amount

    return orders_transition_many(orders=orders, name="pay", actor=actor, actor_label=actor_label, reasons=reasons,
                                  before=record_payment, extra_fields=("paid_at", "paid_amount"))


def orders_lock(order_ids) -> dict[int, Order]:
    """Lock a batch of orders in id order (the first lock of every batched flow), with their stores."""
    ordered = sorted(set(order_ids))
    orders = list(Order.objects.select_for_update().filter(pk__in=ordered).order_by("pk"))
    stores = Store.objects.in_bulk({order.store_id for order in orders})  # one instance per store, shared
    for order in orders:
        order.store = stores[order.store_id]
    return {order.pk: order for order in orders}


def order_mark_paid(*, order_id: int, actor=None, actor_label: str = "system", paid_at: datetime | None = None,
                    paid_amount: Decimal | None = None, reason: str = "") -> Order:
    """The order counts as paid (or authorized for a later capture): status, paid_at, paid_amount."""
    def record_payment(order: Order) -> None:
        order.paid_at = paid_at or timezone.now()
        order.paid_amount = order.total_amount if paid_amount is None else paid_amount

    return order_transition(order_id=order_id, name="pay", actor=actor, actor_label=actor_label, reason=reason,
                            before=record_payment, extra_fields=("paid_at", "paid_amount"))


def order_mark_approved(*, order_id: int, actor=None, actor_label: str = "system", reason: str = "") -> Order:
    return order_transition(order_id=order_id, name="approve", actor=actor, actor_label=actor_label, reason=reason)


def order_start_fulfilment(*, order_id: int, actor=None, actor_label: str = "system", reason: str = "") -> Order:
    return order_transition(order_id=order_id, name="start_fulfilment", actor=actor, actor_label=actor_label,
                            reason=reason)


def order_ship_partially(*, order_id: int, actor=None, actor_label: str = "system", reason: str = "") -> Order:
    return order_transition(order_id=order_id, name="ship_partially", actor=actor, actor_label=actor_label,
                            reason=reason)


def order_mark_shipped(*, order_id: int, actor=None, actor_label: str = "system", reason: str = "") -> Order:
    """The order's ship transition and event only (its parcels and stock are the caller's)."""
    return order_transition(order_id=order_id, name="ship", actor=actor, actor_label=actor_label, reason=reason)


def order_deliver(*, order_id: int, actor=None, actor_label: str = "system", reason: str = "") -> Order:
    return order_transition(order_id=order_id, name="deliver", actor=actor, actor_label=actor_label, reason=reason)


def order_complete(*, order_id: int, actor=None, actor_label: str = "system", reason: str = "") -> Order:
    return order_transition(order_id=order_id, name="complete", actor=actor, actor_label=actor_label, reason=reason)


def _check_cancel_reason(*, reason_code: str, reason: str) -> None:
    """A reason code must be one of CancelReason; "other" says nothing without its words."""
    if reason_code not in CancelReason.values:
        raise OrderInvalid(_("Unknown cancel reason %(reason)s.") % {"reason": reason_code},
                           code="unknown_cancel_reason",
                           data={"reason_code": [_("Choose one of: %(values)s") % {
                               "values": ", ".join(CancelReason.values)}]})
    if reason_code == CancelReason.OTHER and not reason.strip():
        raise OrderInvalid(_("Say why the order is cancelled."), code="cancel_reason_required",
                           data={"reason": [_("Say why the order is cancelled.")]})


def order_cancel_sentence(*, reason: str = "", reason_code: str = "") -> str:
    """What the stock ledger and the parcels are told about a cancel: a sentence, not a code."""
    return reason.strip() or (str(CancelReason(reason_code).label) if reason_code else "") or "cancelled"


def order_mark_cancelled(*, order_id: int, actor=None, actor_label: str = "system", reason: str = "",
                         reason_code: str = "") -> Order:
    """The cancel transition before fulfilment; its holds and shortages end with it.

    ``reason_code`` (a CancelReason) is what a person picked; platforms and timeouts cancel without one.
    """
    if reason_code:
        _check_cancel_reason(reason_code=reason_code, reason=reason)

    def clear_holds(order: Order) -> None:
        order.hold_reasons = []
        order.stock_shortages = []

    return order_transition(order_id=order_id, name="cancel", actor=actor, actor_label=actor_label,
                            reason=reason.strip(), data={"cancel_reason": reason_code} if reason_code else None,
                            before=clear_holds, extra_fields=("hold_reasons", "stock_shortages"))


def order_mark_closed(*, order_id: int, actor=None, actor_label: str = "system", reason: str = "") -> Order:
    """The close transition after fulfilment started (e.g. refunded in full)."""
    return order_transition(order_id=order_id, name="close", actor=actor, actor_label=actor_label, reason=reason)


def order_wait_for_stock(*, order_id: int, shortages: list) -> Order:
    """A paid order could not be reserved: it waits for stock with the shortages listed."""
    return order_transition(order_id=order_id, name="wait_for_stock", actor=None, actor_label="system",
                            reason=_("Not enough stock."), data={"shortages": shortages},
                            before=lambda o: setattr(o, "stock_shortages", shortages),
                            extra_fields=("stock_shortages",))


def order_stock_arrived(*, order_id: int) -> Order:
    return order_transition(order_id=order_id, name="stock_arrived", actor=None, actor_label="system",
                            reason=_("Stock arrived."), extra_fields=("stock_shortages",))


def orders_wait_for_stock(*, orders: list[Order], shortages: dict[int, list]) -> list[Order]:
    """order_wait_for_stock for a locked batch: each paid order that could not be reserved waits."""
    return orders_transition_many(orders=orders, name="wait_for_stock", reason=_("Not enough stock."),
                                  data_for=lambda o: {"shortages": shortages[o.pk]},
                                  before=lambda o: setattr(o, "stock_shortages", shortages[o.pk]),
                                  extra_fields=("stock_shortages",))


def orders_stock_arrived(*, orders: list[Order]) -> list[Order]:
    """order_stock_arrived for a locked batch."""
    return orders_transition_many(orders=orders, name="stock_arrived", reason=_("Stock arrived."),
                                  extra_fields=("stock_shortages",))


def order_update_shortages(*, order: Order, shortages: list) -> Order:
    """A waiting order's shortages changed (a locked order: the caller holds its row)."""
    if shortages != order.stock_shortages:
        order.stock_shortages = shortages
        order.save(update_fields=["stock_shortages", "updated_at"])
    return order


def order_lock(order_id: int) -> Order:
    """Lock the order row for the caller's transaction (the first lock of every order flow)."""
    return _get_order_for_update(order_id)


def order_record_platform_update(*, order_id: int, platform_updated_at, payment_id: str = "",
                                 platform_fee: Decimal | None = None) -> tuple[Order, bool]:
    """Lock the order and note the platform's update time; False (nothing written) for an update older
    than, or as old as, the one already applied.

    A payment id or fee the platform names only once the order is paid (an order first seen unpaid) is kept
    in the same UPDATE when the order has none yet; a known one is never replaced."""
    order = _get_order_for_update(order_id)
    if order.platform_updated_at and platform_updated_at <= order.platform_updated_at:
        return order, False
    changes = {"platform_updated_at": platform_updated_at}
    payment_id = (payment_id or "").strip()
    if payment_id and not order.payment_id and len(payment_id) <= PAYMENT_ID_MAX_LENGTH:
        changes["payment_id"] = payment_id
    if platform_fee is not None and order.platform_fee is None and Decimal("0") <= platform_fee < AMOUNT_COLUMN_MAX:
        changes["platform_fee"] = _money(platform_fee)
    Order.objects.filter(pk=order.pk).update(**changes)
    for name, value in changes.items():
        setattr(order, name, value)
    return order, True


def order_hold(*, order_id: int, hold_reason: str, note: str = "", actor=None, actor_label: str = "system") -> Order:
    """Put a hold on the order; the first hold moves it to "held", later ones only add their reason."""
    if hold_reason not in HoldReason.values:
        raise OrderInvalid(_("Unknown hold reason %(reason)s.") % {"reason": hold_reason},
                           data={"reason": [_("Choose one of: %(values)s") % {"values": ", ".join(HoldReason.values)}]})
    with transaction.atomic():
        order = _get_order_for_update(order_id)
        if hold_reason in order.hold_reasons:
            raise HoldConflict(_("Order %(number)s is already held for this reason.") % {"number": order.number})
        if order.status != OrderStatus.HELD and not can_proceed(order.hold):
            raise TransitionNotAllowed(
                _("Order %(number)s cannot be held while it is %(status)s.") % {
                    "number": order.number, "status": order.get_status_display()},
                data={"status": order.status, "transition": "hold"})
        order.hold_reasons = [*order.hold_reasons, hold_reason]
        from_status = order.status
        if order.status != OrderStatus.HELD:
            order.hold()
        order.save(update_fields=["status", "status_before_hold", "hold_reasons", "updated_at"])
        events.event_order_hold_added(order=order, hold_reason=hold_reason, note=note, actor=actor,
                                      actor_label=actor_label)
        if from_status != order.status:
            events.event_order_status_changed(order=order, from_status=from_status, to_status=order.status,
                                              transition="hold", actor=actor, actor_label=actor_label,
                                              reason=note or HoldReason(hold_reason).label)
    return order


def order_release_hold(*, order_id: int, hold_reason: str, note: str = "", actor=None,
                       actor_label: str = "system") -> Order:
    """Lift one hold; when none is left the order returns to where it was (paid orders are re-reviewed)."""
    with transaction.atomic():
        order = _get_order_for_update(order_id)
        if order.status != OrderStatus.HELD or hold_reason not in order.hold_reasons:
            raise HoldConflict(_("Order %(number)s is not held for “%(reason)s”.") % {
                "number": order.number, "reason": hold_reason}, data={"hold_reasons": order.hold_reasons})
        order.hold_reasons = [r for r in order.hold_reasons if r != hold_reason]
        events.event_order_hold_released(order=order, hold_reason=hold_reason, note=note, actor=actor,
                                         actor_label=actor_label)
        from_status = order.status
        if not order.hold_reasons:
            if order.status_before_hold == OrderStatus.PENDING_PAYMENT:
                order.release_unpaid()
            else:
                order.release()
        order.save(update_fields=["status", "status_before_hold", "hold_reasons", "updated_at"])
        if from_status != order.status:
            events.event_order_status_changed(order=order, from_status=from_status, to_status=order.status,
                                              transition="release", actor=actor, actor_label=actor_label,
                                              reason=note)
    return order


def order_add_note(*, order_id: int, note: str, actor=None, actor_label: str = "system") -> Order:
    if not note.strip():
        raise OrderInvalid(_("The note is empty."), data={"note": [_("This field may not be blank.")]})
    if len(note.strip()) > 500:  # said, not cut: the rest of what was written would be lost
        message = _("A note has at most %(limit_value)d characters.") % {"limit_value": 500}
        raise OrderInvalid(message, data={"note": [message]})
    with transaction.atomic():
        order = _get_order_for_update(order_id)
        events.event_order_note_added(order=order, note=note.strip(), actor=actor, actor_label=actor_label)
    return order


# An order may be hurried until its last parcel has left (a part still waiting counts).
PRIORITY_RAISABLE_STATES = [OrderStatus.PENDING_PAYMENT, OrderStatus.PAID, OrderStatus.AWAITING_STOCK,
                            OrderStatus.HELD, OrderStatus.READY, OrderStatus.IN_FULFILMENT,
                            OrderStatus.PARTIALLY_SHIPPED]


def order_raise_priority(*, order_id: int, priority: int, reason: str = "", actor=None, actor_label: str = "system",
                         data: dict | None = None) -> tuple[Order, bool]:
    """Raise the order's priority to ``priority`` (never lowers it); returns the order and whether it changed.
    An order that has left the warehouse or ended is refused: nothing is left to hurry."""
    if priority not in Priority.values:
        raise OrderInvalid(_("Unknown priority %(priority)s.") % {"priority": priority},
                           data={"priority": [_("Choose one of: %(values)s") % {
                               "values": ", ".join(str(v) for v in Priority.values)}]})
    with transaction.atomic():
        order = _get_order_for_update(order_id)
        if order.status not in PRIORITY_RAISABLE_STATES:
            raise TransitionNotAllowed(
                _("Order %(number)s cannot be hurried while it is %(status)s.") % {
                    "number": order.number, "status": order.get_status_display()},
                data={"status": order.status})
        if order.priority >= priority:
            return order, False
        from_priority = order.priority
        order.priority = priority
        order.save(update_fields=["priority", "updated_at"])
        events.event_order_priority_raised(order=order, from_priority=from_priority, reason=reason, actor=actor,
                                           actor_label=actor_label, data=data)
    return order, True


# The transitions a person may trigger from the UI or the API, with the permission each needs.
# Holds and releases have their own services because they carry a reason code.
# With parcels, these steps happen when the parcels move (fulfillment.services), not by hand.
SHIPMENT_DRIVEN = {"start_fulfilment", "ship_partially", "ship", "deliver"}


# Each transition has its own permission; oms/roles.py gives each to the roles that own the step.
USER_TRANSITION_PERMISSIONS = {
    "pay": "orders.pay_order",
    "approve": "orders.approve_order",
    "start_fulfilment": "orders.start_fulfilment_order",
    "ship_partially": "orders.ship_partially_order",
    "ship": "orders.ship_order",
    "deliver": "orders.deliver_order",
    "complete": "orders.complete_order",
    "cancel": "orders.cancel_order",
    "close": "orders.close_order",
}


def order_user_transition_refusal(*, order: Order, name: str) -> DomainError | None:
    """Why a person may not apply ``name`` to this order whatever their role, or None.

    Payment of a platform order is the platform's to report (the connector follows it); marking it
    paid by hand would ship goods nobody paid for. Only manual stores take a hand-marked payment.
    """
    if name == "pay" and order.store.platform != Platform.MANUAL:
        return DomainError(
            _("Order %(number)s comes from %(platform)s, which reports its payment: it cannot be marked paid "
              "by hand.") % {"number": order.number, "platform": order.store.get_platform_display()},
            code="paid_by_platform", http_status=409, data={"platform": order.store.platform})
    return None
