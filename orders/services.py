"""Write operations on orders: creation, every status transition, holds and notes.

Each state change follows one recipe: open a transaction, lock the order row, check the transition
is allowed from the state found in the database, call it, save only the changed fields, write the
event row, and leave side effects to ``transaction.on_commit``.
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

from finance.services import payment_snapshot_take
from inventory import services as stock
from inventory.selectors import sku_codes_missing, sku_ids_and_titles
from oms.exceptions import DomainError
from oms.locks import lock_one
from oms.sequences import next_sequence_value
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
    ReserveOn,
    Store,
)

CENT = Decimal("0.01")


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
    if errors:
        raise OrderInvalid(_("A quantity or an amount is out of range."), code="amount_out_of_range",
                           data=errors)


def _validate_order_input(*, store: Store, data: OrderInput) -> dict:
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
    missing = sku_codes_missing([line.sku_code for line in data.lines])
    for index, line in enumerate(data.lines):
        if line.sku_code in missing:
            errors.setdefault(f"lines[{index}].sku_code", []).append(
                _("Unknown SKU code %(code)s.") % {"code": line.sku_code})
    for name in ("shipping_amount", "discount_amount", "tax_amount"):
        if getattr(data, name) < 0:
            errors.setdefault(name, []).append(_("Amount may not be negative."))
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

def order_create(*, store: Store, data: OrderInput, actor=None, actor_label: str = "system") -> Order:
    """Create an order with its lines and the "created" event; a paid order then runs the pipeline."""
    amounts = _validate_order_input(store=store, data=data)
    computed_total = amounts.pop("computed_total", None)
    skus = sku_ids_and_titles([line.sku_code for line in data.lines])
    now = timezone.now()
    with transaction.atomic():
        number = order_number_next()
        try:
            with transaction.atomic():
                order = Order.objects.create(
                    number=number,
                    store=store,
                    # Manual orders without an outside id are known by their own number.
                    platform_order_id=data.platform_order_id.strip() or number,
                    buyer_id=data.buyer.id, buyer_name=data.buyer.name, buyer_email=data.buyer.email,
                    buyer_phone=data.buyer.phone,
                    receiver_name=data.receiver.name, receiver_phone=data.receiver.phone,
                    receiver_country=data.receiver.country or "CN", receiver_province=data.receiver.province,
                    receiver_city=data.receiver.city, receiver_district=data.receiver.district,
                    receiver_address=data.receiver.address, receiver_zip=data.receiver.zip,
                    receiver_ciphertext=data.receiver_ciphertext,
                    currency=(data.currency or store.default_currency).upper(),
                    goods_amount=amounts["goods_amount"], discount_amount=amounts["discount_amount"],
                    shipping_amount=_money(data.shipping_amount), tax_amount=_money(data.tax_amount),
                    total_amount=amounts["total_amount"],
                    priority=data.priority, tags=list(data.tags), buyer_note=data.buyer_note,
                    seller_note=data.seller_note, placed_at=data.placed_at or now,
                    platform_updated_at=data.platform_updated_at, raw_payload_ref=data.raw_payload_ref,
                )
        except IntegrityError:
            # Only the (store, platform id) constraint means "duplicate"; anything else is a real bug.
            if not Order.objects.filter(store=store, platform_order_id=data.platform_order_id.strip()).exists():
                raise
            raise OrderInvalid(
                _("Store %(store)s already has an order %(id)s.") % {"store": store.code, "id": data.platform_order_id},
                code="duplicate_order", http_status=409,
                data={"platform_order_id": [_("Already exists in this store.")]},
            ) from None
        OrderLine.objects.bulk_create([
            OrderLine(order=order, line_no=index + 1, sku_code=line.sku_code, sku_id=skus[line.sku_code][0],
                      platform_sku_id=line.platform_sku_id, platform_line_id=line.platform_line_id,
                      title=line.title or skus[line.sku_code][1], quantity=line.quantity,
                      unit_price=_money(line.unit_price), discount_amount=_money(line.discount_amount))
            for index, line in enumerate(data.lines)
        ])
        created_data = {"channel": store.platform, "total": str(order.total_amount), "currency": order.currency,
                        "lines": len(data.lines)}
        if computed_total is not None and computed_total != order.total_amount:
            created_data["computed_total"] = str(computed_total)  # lines + fees disagree with the platform
        events.event_order_created(order=order, actor=actor, actor_label=actor_label, data=created_data)
        if data.paid:
            order = order_pay(order_id=order.pk, actor=actor, actor_label=actor_label,
                              paid_at=data.paid_at or now, paid_amount=amounts["total_amount"])
        else:
            order = order_process(order_id=order.pk)
    return order


def order_create_manual(*, store: Store, data: OrderInput, actor=None) -> Order:
    """Manual channel (WeChat/offline): the store must be a manual one; the id defaults to a new number."""
    if store.platform != Platform.MANUAL:
        raise OrderInvalid(_("Manual orders can only be created in a manual store."),
                           data={"store": [_("Not a manual store.")]})
    return order_create(store=store, data=data, actor=actor, actor_label="manual")


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
    meta = getattr(getattr(Order, name, None), "_django_fsm", None)
    if meta is None or not meta.transitions:
        return name
    return str(next(iter(meta.transitions.values())).custom.get("label", name))


def _transition(*, order_id: int, name: str, actor, actor_label: str, reason: str = "",
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


def order_pay(*, order_id: int, actor=None, actor_label: str = "system", paid_at: datetime | None = None,
              paid_amount: Decimal | None = None, reason: str = "", payment_event: str = "payment") -> Order:
    """Paid (or, with ``payment_event="authorization"``, authorized for a later capture): reserve and route."""
    def record_payment(order: Order) -> None:
        order.paid_at = paid_at or timezone.now()
        order.paid_amount = order.total_amount if paid_amount is None else paid_amount

    with transaction.atomic():
        order = _transition(order_id=order_id, name="pay", actor=actor, actor_label=actor_label, reason=reason,
                            before=record_payment, extra_fields=("paid_at", "paid_amount"))
        payment_snapshot_take(order=order, event=payment_event)
        order = order_process(order_id=order.pk)
    return order


def order_approve(*, order_id: int, actor=None, actor_label: str = "system", reason: str = "") -> Order:
    """Ready for the warehouse: the reserved units become parcels on the warehouse's kanban."""
    from fulfillment.services import shipments_create_for_order

    with transaction.atomic():
        order = _transition(order_id=order_id, name="approve", actor=actor, actor_label=actor_label, reason=reason)
        shipments_create_for_order(order_id=order.pk, actor=actor, actor_label=actor_label)
    return order


def order_start_fulfilment(*, order_id: int, actor=None, actor_label: str = "system", reason: str = "") -> Order:
    return _transition(order_id=order_id, name="start_fulfilment", actor=actor, actor_label=actor_label, reason=reason)


def order_ship_partially(*, order_id: int, actor=None, actor_label: str = "system", reason: str = "") -> Order:
    return _transition(order_id=order_id, name="ship_partially", actor=actor, actor_label=actor_label, reason=reason)


def order_ship(*, order_id: int, actor=None, actor_label: str = "system", reason: str = "") -> Order:
    """Everything left the warehouse: the order's remaining reservations leave the pool."""
    with transaction.atomic():
        order = _transition(order_id=order_id, name="ship", actor=actor, actor_label=actor_label, reason=reason)
        # Shipped here rather than through its parcels (the platform says it shipped, e.g. from the
        # seller's own back office): open parcels must not be picked and shipped a second time. When
        # the last parcel just shipped there is none left open and this does nothing. Parcels are
        # locked before stock rows, as everywhere (orders → parcels → stock).
        _cancel_shipments(order, reason=_("Shipped outside the warehouse flow: %(reason)s") % {
            "reason": reason or actor_label}, actor=actor)
        units = stock.stock_ship(order_id=order.pk, reference=f"order:{order.number}")
        if units:
            events.event_order_stock_shipped(order=order, units=units)
    return order


def order_deliver(*, order_id: int, actor=None, actor_label: str = "system", reason: str = "") -> Order:
    return _transition(order_id=order_id, name="deliver", actor=actor, actor_label=actor_label, reason=reason)


def order_complete(*, order_id: int, actor=None, actor_label: str = "system", reason: str = "") -> Order:
    return _transition(order_id=order_id, name="complete", actor=actor, actor_label=actor_label, reason=reason)


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


def order_cancel(*, order_id: int, actor=None, actor_label: str = "system", reason: str = "",
                 reason_code: str = "") -> Order:
    """Cancel before fulfilment; holds end and reserved stock goes back to the pool in the same transaction.

    ``reason_code`` (a CancelReason) is what a person picked; platforms and timeouts cancel without one.
    """
    if reason_code:
        _check_cancel_reason(reason_code=reason_code, reason=reason)

    def clear_holds(order: Order) -> None:
        order.hold_reasons = []
        order.stock_shortages = []

    # The stock ledger and the parcels get a sentence, not a code.
    sentence = reason.strip() or (str(CancelReason(reason_code).label) if reason_code else "") or "cancelled"
    with transaction.atomic():
        order = _transition(order_id=order_id, name="cancel", actor=actor, actor_label=actor_label,
                            reason=reason.strip(), data={"cancel_reason": reason_code} if reason_code else None,
                            before=clear_holds, extra_fields=("hold_reasons", "stock_shortages"))
        _cancel_shipments(order, reason=sentence, actor=actor)
        _release_stock(order, reason=sentence)
    return order


def order_close(*, order_id: int, actor=None, actor_label: str = "system", reason: str = "") -> Order:
    """Close after fulfilment started (e.g. refunded in full); anything still reserved is released."""
    with transaction.atomic():
        order = _transition(order_id=order_id, name="close", actor=actor, actor_label=actor_label, reason=reason)
        _cancel_shipments(order, reason=reason or "closed", actor=actor)
        _release_stock(order, reason=reason or "closed")
    return order


def _cancel_shipments(order: Order, *, reason: str, actor) -> None:
    from fulfillment.services import shipments_cancel_for_order

    shipments_cancel_for_order(order_id=order.pk, reason=reason, actor=actor)


def _release_stock(order: Order, *, reason: str) -> None:
    units = stock.stock_release_for_order(order_id=order.pk, reference=f"order:{order.number}")
    if units:
        events.event_order_stock_released(order=order, units=units, reason=reason)


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
            order = order_process(order_id=order.pk)
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


# --- The processing pipeline -------------------------------------------------------------------

def order_process(*, order_id: int) -> Order:
    """Move an order forward as far as the rules allow. Every path that changes an order runs this.

    1. Reserve-on-creation stores hold stock for unpaid orders (retried at payment if short).
    2. A paid order without holds reserves its stock, in one warehouse or split where the store
       allows; when it cannot, it waits in "awaiting stock" with the shortages listed.
    3. An awaiting order whose stock arrived goes back to paid.
    4. A paid, reserved order is approved (ready) when the store approves automatically.
    """
    with transaction.atomic():
        order = _get_order_for_update(order_id)
        store = order.store
        if order.hold_reasons:
            return order
        if order.status == OrderStatus.PENDING_PAYMENT and store.reserve_on == ReserveOn.CREATION:
            _reserve(order, store)  # a shortage here is not final: payment tries again
            return order
        if order.status not in (OrderStatus.PAID, OrderStatus.AWAITING_STOCK):
            return order
        result = _reserve(order, store)
        if not result.reserved:
            if order.status == OrderStatus.PAID:
                return _transition(order_id=order.pk, name="wait_for_stock", actor=None, actor_label="system",
                                   reason=_("Not enough stock."), data={"shortages": result.shortages},
                                   before=lambda o: setattr(o, "stock_shortages", result.shortages),
                                   extra_fields=("stock_shortages",))
            if result.shortages != order.stock_shortages:
                order.stock_shortages = result.shortages
                order.save(update_fields=["stock_shortages", "updated_at"])
            return order
        if order.status == OrderStatus.AWAITING_STOCK:
            order = _transition(order_id=order.pk, name="stock_arrived", actor=None, actor_label="system",
                                reason=_("Stock arrived."), extra_fields=("stock_shortages",))
        if store.auto_approve:
            order = order_approve(order_id=order.pk, actor_label="system", reason=_("No holds: approved automatically."))
    return order


def _reserve(order: Order, store: Store):
    """Reserve where the routing rules point first (stock has the last word) and record why."""
    from fulfillment import routing
    from fulfillment.services import routing_record_warehouse

    route = routing.warehouse_route(routing.order_facts(order))
    result = stock.stock_reserve_for_order(order_id=order.pk, allow_split=store.allow_split,
                                           province=order.receiver_province, reference=f"order:{order.number}",
                                           preferred_warehouse_ids=route.ranking)
    if result.reserved and not result.already:
        events.event_order_stock_reserved(order=order, warehouse_ids=result.warehouse_ids)
        routing_record_warehouse(order=order, route=route, reserved_in=result.warehouse_ids)
    return result


def orders_retry_awaiting_stock(*, sku_ids: list[int] | None = None, limit: int = 500) -> int:
    """Try to reserve orders waiting for stock, highest priority and oldest first. Returns how many moved on."""
    waiting = Order.objects.filter(status=OrderStatus.AWAITING_STOCK)
    if sku_ids:
        from inventory.models import BundleComponent

        bundles = BundleComponent.objects.filter(component_id__in=sku_ids).values_list("bundle_id", flat=True)
        waiting = waiting.filter(lines__sku_id__in=[*sku_ids, *bundles]).distinct()
    moved = 0
    for order_id in waiting.order_by("-priority", "placed_at", "pk").values_list("pk", flat=True)[:limit]:
        if order_process(order_id=order_id).status != OrderStatus.AWAITING_STOCK:
            moved += 1
    return moved


def orders_release_stale_reservations() -> int:
    """Safety net: stock still reserved for cancelled or closed orders goes back (normally done inline)."""
    from inventory.models import Reservation, ReservationStatus

    stale = (Reservation.objects.filter(status=ReservationStatus.ACTIVE,
                                        order__status__in=[OrderStatus.CANCELLED, OrderStatus.CLOSED])
             .values_list("order_id", flat=True).distinct())
    released = 0
    for order_id in list(stale):
        with transaction.atomic():
            order = _get_order_for_update(order_id)
            released += stock.stock_release_for_order(order_id=order.pk, reference=f"order:{order.number}")
    return released


def orders_cancel_expired_unpaid(*, now=None) -> int:
    """Cancel unpaid orders of reserve-on-creation stores past their timeout; their stock is released."""
    from datetime import timedelta

    now = now or timezone.now()
    cancelled = 0
    candidates = Order.objects.filter(status=OrderStatus.PENDING_PAYMENT, store__reserve_on=ReserveOn.CREATION)
    for order_id, placed_at, timeout in candidates.values_list("pk", "placed_at", "store__unpaid_timeout_minutes"):
        if placed_at + timedelta(minutes=timeout) > now:
            continue
        try:
            order_cancel(order_id=order_id, actor_label="system",
                         reason=_("Not paid within %(minutes)s minutes.") % {"minutes": timeout})
            cancelled += 1
        except TransitionNotAllowed:
            continue  # paid or cancelled a moment ago
    return cancelled


# --- Following the platform ---------------------------------------------------------------------

# Unified platform statuses (connectors.base.UNIFIED_STATUSES) and how far along each is.
_SHIPPING_TARGETS = {"partially_shipped": 1, "shipped": 2, "completed": 3}


def _channel_next_step(order: Order, target: str):
    """The one service call that brings the order closer to the platform's status, or None."""
    status, holds = order.status, order.hold_reasons
    S_ = OrderStatus
    if target in ("cancelled", "closed"):
        if status in (S_.CANCELLED, S_.CLOSED):
            return None
        if can_proceed(order.cancel):
            return order_cancel, {}
        if can_proceed(order.close):
            return order_close, {}
        return None
    if status == S_.HELD:
        if target != "group_pending" and HoldReason.GROUP_PENDING in holds:
            return order_release_hold, {"hold_reason": HoldReason.GROUP_PENDING,
                                        "note": _("The group formed on the platform.")}
        return None  # other holds are a person's decision; the platform cannot lift them
    if status == S_.PENDING_PAYMENT and target != "pending_payment":
        return order_pay, {}
    if target == "group_pending":
        if status in (S_.PAID, S_.AWAITING_STOCK, S_.READY):
            return order_hold, {"hold_reason": HoldReason.GROUP_PENDING,
                                "note": _("Group buy not formed yet on the platform.")}
        return None
    rank = _SHIPPING_TARGETS.get(target)
    if rank is None:
        return None
    if status == S_.READY:
        return order_start_fulfilment, {}
    if status == S_.IN_FULFILMENT:
        return (order_ship_partially, {}) if rank == 1 else (order_ship, {})
    if status == S_.PARTIALLY_SHIPPED and rank >= 2:
        return order_ship, {}
    if status in (S_.SHIPPED, S_.DELIVERED) and rank == 3:
        return order_complete, {}
    return None


def _channel_reached(order: Order, target: str) -> bool:
    wanted = {
        "pending_payment": {OrderStatus.PENDING_PAYMENT},
        "group_pending": {OrderStatus.HELD},
        "paid": {OrderStatus.PAID, OrderStatus.AWAITING_STOCK, OrderStatus.READY, OrderStatus.IN_FULFILMENT,
                 OrderStatus.PARTIALLY_SHIPPED, OrderStatus.SHIPPED, OrderStatus.DELIVERED, OrderStatus.COMPLETED},
        "partially_shipped": {OrderStatus.PARTIALLY_SHIPPED, OrderStatus.SHIPPED, OrderStatus.DELIVERED,
                              OrderStatus.COMPLETED},
        "shipped": {OrderStatus.SHIPPED, OrderStatus.DELIVERED, OrderStatus.COMPLETED},
        "completed": {OrderStatus.COMPLETED},
        "cancelled": {OrderStatus.CANCELLED, OrderStatus.CLOSED},
        "closed": {OrderStatus.CANCELLED, OrderStatus.CLOSED},
    }
    return order.status in wanted.get(target, set())


def order_follow_channel(*, order_id: int, target: str, platform_updated_at, raw_status: str = "",
                         paid_at=None, actor_label: str = "channel", payment_event: str = "payment"
                         ) -> tuple[Order, bool]:
    """Move the order toward the platform's status through the ordinary services; newer updates only.

    Returns ``(order, applied)``; ``applied`` is False for an update older than (or as old as) the
    one already applied, which changes nothing. When the platform's status cannot be reached from
    the hub's (say the platform reports shipped while the hub still waits for stock), the order
    stays where it is and an event says so for a person to look at.
    """
    with transaction.atomic():
        order = _get_order_for_update(order_id)
        if order.platform_updated_at and platform_updated_at <= order.platform_updated_at:
            return order, False
        Order.objects.filter(pk=order.pk).update(platform_updated_at=platform_updated_at)
        order.platform_updated_at = platform_updated_at
        for _step in range(8):
            if _channel_reached(order, target):
                break
            step = _channel_next_step(order, target)
            if step is None:
                break
            service, kwargs = step
            if service is order_pay:
                kwargs = {"paid_at": paid_at, "payment_event": payment_event}
            order = service(order_id=order.pk, actor_label=actor_label,
                            **({"reason": raw_status} if service not in (order_hold, order_release_hold) else {}),
                            **kwargs)
        if not _channel_reached(order, target) and not (target == "paid" and order.status == OrderStatus.HELD):
            events.event_order_channel_mismatch(order=order, target=target, raw_status=raw_status)
    return order, True


# The transitions a person may trigger from the UI or the API, with the permission each needs.
# Holds and releases have their own services because they carry a reason code.
# With parcels, these steps happen when the parcels move (fulfillment.services), not by hand.
SHIPMENT_DRIVEN = {"start_fulfilment", "ship_partially", "ship", "deliver"}


def order_has_shipments(*, order_id: int) -> bool:
    from fulfillment.models import Shipment, ShipmentStatus

    return Shipment.objects.filter(lines__order_id=order_id).exclude(status=ShipmentStatus.CANCELLED).exists()


def _move_shipments_of(*, order_id: int, name: str, user) -> Order:
    """An order with parcels moves through them: starting fulfilment starts picking every waiting
    parcel, delivering delivers every parcel in transit; shipping needs the scan and a tracking number."""
    from fulfillment import services as parcels
    from fulfillment.models import Shipment, ShipmentStatus

    steps = {"start_fulfilment": (ShipmentStatus.TO_PICK, parcels.shipment_start_picking),
             "deliver": (ShipmentStatus.SHIPPED, parcels.shipment_deliver)}
    if name not in steps:
        raise TransitionNotAllowed(_("This order ships in parcels: pack and ship them at the warehouse."),
                                   code="follows_shipments")
    if not user.has_perm("fulfillment.move_shipment"):
        raise DomainError(_("This order's parcels move at the warehouse: you are not allowed to move them."),
                          code="permission_denied", http_status=403)
    status, step = steps[name]
    ids = list(Shipment.objects.filter(lines__order_id=order_id, status=status).distinct().order_by("pk")
               .values_list("pk", flat=True))
    if not ids:
        order = Order.objects.get(pk=order_id)
        raise TransitionNotAllowed(_("Order %(number)s cannot be changed by “%(action)s” while it is %(status)s.") % {
            "number": order.number, "action": transition_label(name), "status": order.get_status_display()},
            data={"status": order.status, "transition": name})
    with transaction.atomic():
        for shipment_id in ids:
            step(shipment_id=shipment_id, actor=user)
    return Order.objects.get(pk=order_id)


# Each transition has its own permission; oms/roles.py gives each to the roles that own the step.
USER_TRANSITIONS = {
    "pay": (order_pay, "orders.pay_order"),
    "approve": (order_approve, "orders.approve_order"),
    "start_fulfilment": (order_start_fulfilment, "orders.start_fulfilment_order"),
    "ship_partially": (order_ship_partially, "orders.ship_partially_order"),
    "ship": (order_ship, "orders.ship_order"),
    "deliver": (order_deliver, "orders.deliver_order"),
    "complete": (order_complete, "orders.complete_order"),
    "cancel": (order_cancel, "orders.cancel_order"),
    "close": (order_close, "orders.close_order"),
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


def order_apply_user_transition(*, order_id: int, name: str, user, reason: str = "", reason_code: str = "") -> Order:
    """Run one of USER_TRANSITIONS for a person, checking their permission and the store's rule first."""
    if name not in USER_TRANSITIONS:
        raise OrderInvalid(_("Unknown action %(name)s.") % {"name": name}, code="unknown_transition")
    service, permission = USER_TRANSITIONS[name]
    if not user.has_perm(permission):
        raise DomainError(_("You are not allowed to do this."), code="permission_denied", http_status=403)
    order = Order.objects.select_related("store").filter(pk=order_id).first()
    if order is None:
        raise OrderNotFound(_("Order %(id)s does not exist.") % {"id": order_id})
    # The platform never changes on a store with orders, so checking outside the row lock is safe.
    refusal = order_user_transition_refusal(order=order, name=name)
    if refusal is not None:
        raise refusal
    if name in SHIPMENT_DRIVEN and order_has_shipments(order_id=order_id):
        return _move_shipments_of(order_id=order_id, name=name, user=user)
    if name == "cancel":
        return service(order_id=order_id, actor=user, reason=reason, reason_code=reason_code)
    return service(order_id=order_id, actor=user, reason=reason)
