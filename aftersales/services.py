"""Write operations on after-sales tickets: opening one on an order's lines, and every status transition.

Each change follows the orders' recipe: a transaction, the row lock, the transition checked against the
state in the database, only the changed fields saved, one TicketEvent. What a ticket means for stock,
refunds on the platform and replacement orders is the pipeline's (pipeline/), which calls these.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal, InvalidOperation

from django.db import transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.translation import gettext as _
from django_fsm import can_proceed

from aftersales.models import (
    Ticket,
    TicketEvent,
    TicketEventType,
    TicketLine,
    TicketReason,
    TicketSource,
    TicketStatus,
    TicketType,
)
from aftersales.selectors import (
    first_response_due,
    order_units_shipped,
    policy_for_store,
    ticket_claimed_on_lines,
)
from fulfillment.models import Shipment
from inventory.models import SKU
from oms.events import event_record
from oms.exceptions import ConflictError, NotFoundError, ValidationFailed
from oms.fsm import transition_label
from oms.locks import lock_one
from oms.sequences import next_sequence_value
from orders.models import Order, OrderLine

CENT = Decimal("0.01")
# Every transition of a ticket that ticket_transition applies. A person never names one directly: the desk and
# the API go through pipeline.tickets (TICKET_ACTIONS there), which keeps the refund's own transitions
# (start_refund with its Refund row, confirm_refund once the money is out) to the refunds flow.
TICKET_TRANSITIONS = ("approve", "reject", "await_return", "receive", "grade", "start_refund", "confirm_refund",
                      "ship_replacement", "close")
# Types for which the goods come back: the return window and the returnable flag apply.
SENT_BACK = {TicketType.RETURN_REFUND, TicketType.EXCHANGE}
# Types that need the goods to have left the warehouse: units are counted against what was shipped.
AFTER_SHIPPING = {TicketType.RETURN_REFUND, TicketType.EXCHANGE, TicketType.RESEND}
# A ticket ends in one of these: its closing time is stamped.
_FINAL = {TicketStatus.REJECTED, TicketStatus.REFUNDED, TicketStatus.REPLACEMENT_SHIPPED, TicketStatus.CLOSED}


@dataclass
class TicketLineInput:
    order_line_id: int
    quantity: int
    amount: Decimal | None = None  # None: the line's paid amount for that many units
    # Exchange only: the SKU code sent instead of the line's own (another size or colour); "" sends the same.
    replacement_sku: str = ""


def money_or_none(value) -> Decimal | None:
    """An amount in cents, or None for what is not a finite number (text, NaN, infinity, a huge exponent)."""
    try:
        amount = Decimal(str(value))
        return amount.quantize(CENT, rounding=ROUND_HALF_UP) if amount.is_finite() else None
    except (InvalidOperation, ValueError, TypeError):
        return None


def ticket_event_record(ticket: Ticket, *, type: str, actor=None, actor_label: str = "system", **fields) -> TicketEvent:
    """Write one line of the ticket's history and move its last activity (the 48-hour escalation clock).
    Every ticket event goes through here, whoever writes it (desk, warehouse, platform, refunds)."""
    now = timezone.now()
    Ticket.objects.filter(pk=ticket.pk).update(last_activity_at=now)
    ticket.last_activity_at = now
    return event_record(TicketEvent, ticket=ticket, type=type, actor=actor, actor_label=actor_label, **fields)


def rma_number_next(now=None) -> str:
    """RMA + year and month + a number from the database sequence, e.g. RMA2612100001."""
    return f"RMA{(now or timezone.localtime()):%y%m}{next_sequence_value('rma_number'):06d}"


def line_paid_amount(line: OrderLine, quantity: int) -> Decimal:
    """What the buyer paid for ``quantity`` units of the line: its price less its own discount, pro rata."""
    net = line.unit_price * line.quantity - line.discount_amount
    return (net * quantity / line.quantity).quantize(CENT, rounding=ROUND_HALF_UP)


def _window_check(order: Order, *, sends_back: bool, errors: dict) -> list[dict]:
    """The return window: a return or exchange up to the store's days after the last parcel was delivered.
    Not delivered yet (or no parcels): nothing to hold against the buyer."""
    delivered = Shipment.objects.filter(lines__order=order, delivered_at__isnull=False).aggregate(
        last=Max("delivered_at"))["last"]
    if not sends_back or delivered is None:
        return [{"check": "window", "ok": True, "message": _("No return window applies.")}]
    closes = delivered + timedelta(days=order.store.return_window_days)
    if timezone.now() > closes:
        errors.setdefault("order", []).append(
            _("The return window closed on %(date)s (%(days)s days after delivery).") % {
                "date": f"{timezone.localtime(closes):%Y-%m-%d %H:%M}", "days": order.store.return_window_days})
        return []
    return [{"check": "window", "ok": True, "message": _("Inside the return window until %(date)s.") % {
        "date": f"{timezone.localtime(closes):%Y-%m-%d %H:%M}"}}]


def _replacement_skus(type: str, lines: list[TicketLineInput], errors: dict) -> dict[int, SKU]:
    """The SKU each exchange line asks for instead of its own, by the line's index: only an exchange may name
    one, and it must be an active SKU (a discontinued one could never be sent)."""
    wanted = {index: (item.replacement_sku or "").strip() for index, item in enumerate(lines)
              if (item.replacement_sku or "").strip()}
    if not wanted:
        return {}
    if type != TicketType.EXCHANGE:
        for index in wanted:
            errors.setdefault(f"lines[{index}].replacement_sku", []).append(
                _("Only an exchange sends another SKU; leave it empty."))
        return {}
    # A code no column could hold (too long, a NUL byte) names no SKU; it never reaches the query.
    found = {sku.code: sku for sku in SKU.objects.filter(code__in={code for code in wanted.values()
                                                                   if len(code) <= 64 and "\x00" not in code})}
    chosen = {}
    for index, code in wanted.items():
        sku = found.get(code)
        if sku is None:
            errors.setdefault(f"lines[{index}].replacement_sku", []).append(
                _("No SKU %(code)s.") % {"code": code[:64].replace("\x00", "")})
        elif not sku.active:
            errors.setdefault(f"lines[{index}].replacement_sku", []).append(
                _("SKU %(code)s is no longer sold.") % {"code": code})
        else:
            chosen[index] = sku
    return chosen


def ticket_create(*, order_id: int, type: str, reason: str, lines: list[TicketLineInput], reason_text: str = "",
                  shipping_amount: Decimal = Decimal("0"), source: str = TicketSource.DESK,
                  platform_after_sale_id: str = "", return_tracking_number: str = "", actor=None,
                  actor_label: str = "system") -> Ticket:
    """Open a ticket on some of an order's lines. Every problem is reported per field at once, nothing written.

    Refused: an unknown type or reason, no lines, a line of another order, more units than the line has
    less those under the order's other tickets, a replacement SKU on a ticket that is not an exchange (or one
    that does not exist or is not sold any more), an amount above what was paid for them less what other
    tickets ask, a shipping refund above the order's shipping. The checks made are stored on the ticket.
    """
    errors: dict[str, list[str]] = {}
    if type not in TicketType.values:
        errors.setdefault("type", []).append(_("Choose one of: %(values)s") % {"values": ", ".join(TicketType.values)})
    if reason not in TicketReason.values:
        errors.setdefault("reason", []).append(
            _("Choose one of: %(values)s") % {"values": ", ".join(TicketReason.values)})
    if reason == TicketReason.OTHER and not reason_text.strip():
        errors.setdefault("reason_text", []).append(_("Say what the reason is."))
    if not lines:
        errors.setdefault("lines", []).append(_("A ticket needs at least one order line."))
    with transaction.atomic():
        try:
            order = lock_one(Order, order_id)
        except Order.DoesNotExist:
            raise NotFoundError(_("Order %(id)s does not exist.") % {"id": order_id}, code="order_not_found") from None
        order_lines = {line.pk: line for line in order.lines.select_related("sku")}
        sends_back = type in SENT_BACK
        checks = _window_check(order, sends_back=sends_back, errors=errors)
        wanted = [line.order_line_id for line in lines]
        if len(set(wanted)) != len(wanted):
            errors.setdefault("lines", []).append(_("Each order line may appear once."))
        taken_units, taken_amounts = ticket_claimed_on_lines(wanted)
        shipped = order_units_shipped(order) if type in AFTER_SHIPPING else {}
        replacement_skus = _replacement_skus(type, lines, errors)
        rows, total = [], Decimal("0")
        for index, item in enumerate(lines):
            line = order_lines.get(item.order_line_id)
            field = f"lines[{index}]"
            if line is None:
                errors.setdefault(f"{field}.order_line_id", []).append(_("Not a line of order %(number)s.") % {
                    "number": order.number})
                continue
            if sends_back and line.sku_id and not line.sku.returnable:
                errors.setdefault(f"{field}.order_line_id", []).append(
                    _("%(sku)s cannot be returned: ask for a refund only.") % {"sku": line.sku_code})
                continue
            units = shipped.get(line.pk, 0) if type in AFTER_SHIPPING else line.quantity
            left = units - taken_units[line.pk]
            if item.quantity is None or item.quantity <= 0:
                errors.setdefault(f"{field}.quantity", []).append(_("Quantity must be at least 1."))
                continue
            if type in AFTER_SHIPPING and item.quantity > left:
                errors.setdefault(f"{field}.quantity", []).append(
                    _("At most %(left)s: %(shipped)s of the line's %(quantity)s units were shipped, %(taken)s are "
                      "under other tickets.") % {"left": max(left, 0), "shipped": units, "quantity": line.quantity,
                                                 "taken": taken_units[line.pk]})
                continue
            if item.quantity > left:
                errors.setdefault(f"{field}.quantity", []).append(
                    _("At most %(left)s: the line has %(quantity)s, %(taken)s are under other tickets.") % {
                        "left": max(left, 0), "quantity": line.quantity, "taken": taken_units[line.pk]})
                continue
            paid = line_paid_amount(line, item.quantity)
            limit = line_paid_amount(line, line.quantity) - taken_amounts[line.pk]
            amount = paid if item.amount is None else money_or_none(item.amount)
            if amount is None or amount < 0 or amount > min(paid, limit):
                errors.setdefault(f"{field}.amount", []).append(
                    _("Between 0 and %(limit)s: what was paid for these units less what other tickets ask.") % {
                        "limit": max(min(paid, limit), Decimal("0"))})
                continue
            checks.append({"check": "line", "line_no": line.line_no, "ok": True,
                           "message": _("%(quantity)s of %(left)s units, %(amount)s of %(paid)s paid.") % {
                               "quantity": item.quantity, "left": left, "amount": amount, "paid": paid}})
            rows.append((line, item.quantity, amount, replacement_skus.get(index)))
            total += amount
        shipping = money_or_none(shipping_amount)
        if shipping is None or shipping < 0 or shipping > order.shipping_amount:
            errors.setdefault("shipping_amount", []).append(
                _("Between 0 and the order's shipping, %(shipping)s.") % {"shipping": order.shipping_amount})
        if errors:
            raise ValidationFailed(_("The after-sales request is not valid."), code="ticket_invalid", data=errors)
        now = timezone.now()
        ticket = Ticket.objects.create(
            number=rma_number_next(), order=order, store_id=order.store_id, type=type, reason=reason,
            reason_text=reason_text.strip()[:500], source=source, platform_after_sale_id=platform_after_sale_id[:64],
            return_tracking_number=return_tracking_number.strip()[:64], last_activity_at=now,
            requested_amount=total, requested_shipping=shipping, currency=order.currency,
            due_at=first_response_due(policy=policy_for_store(order.store_id), opened_at=now), checks=checks)
        TicketLine.objects.bulk_create([TicketLine(ticket=ticket, order_line=line, quantity=quantity,
                                                   requested_amount=amount, replacement_sku=sku)
                                        for line, quantity, amount, sku in rows])
        ticket_event_record(ticket, type=TicketEventType.CREATED, to_status=ticket.status,
                     data={"type": type, "reason": reason, "amount": str(total), "shipping": str(shipping),
                           "source": source}, actor=actor, actor_label=actor_label)
    return ticket


def _lines_approve(ticket: Ticket, amount: Decimal) -> None:
    """Spread an approved amount over the ticket's lines in proportion to what each asked, the shipping refund
    taking its own share; cents cut down on each line and the remainder on the last, so the lines add up."""
    lines = list(ticket.lines.order_by("pk"))
    limit = ticket.requested_amount + ticket.requested_shipping
    if not lines:
        return
    goods = (amount * ticket.requested_amount / limit).quantize(CENT, rounding=ROUND_DOWN) if limit else Decimal("0")
    left = goods
    for index, line in enumerate(lines):
        if index == len(lines) - 1:
            share = left
        elif ticket.requested_amount:
            share = (goods * line.requested_amount / ticket.requested_amount).quantize(CENT, rounding=ROUND_DOWN)
        else:
            share = Decimal("0")
        line.approved_amount = share
        left -= share
    TicketLine.objects.bulk_update(lines, ["approved_amount"])


def ticket_transition(*, ticket_id: int, name: str, actor=None, actor_label: str = "system", reason: str = "",
                      approved_amount: Decimal | None = None) -> Ticket:
    """Apply the ticket transition ``name`` under the row lock and write its event.

    A person's first action answers the ticket (first_response_at); a final state stamps closed_at.
    ``approved_amount`` (on approve) may not exceed what the ticket asks for.
    """
    if name not in TICKET_TRANSITIONS:
        raise ValidationFailed(_("Unknown action %(name)s.") % {"name": name}, code="unknown_transition")
    with transaction.atomic():
        try:
            ticket = lock_one(Ticket, ticket_id)
        except Ticket.DoesNotExist:
            raise NotFoundError(_("Ticket %(id)s does not exist.") % {"id": ticket_id},
                                code="ticket_not_found") from None
        method = getattr(ticket, name)
        if not can_proceed(method):
            raise ConflictError(_("Ticket %(number)s cannot be changed by “%(action)s” while it is %(status)s.") % {
                "number": ticket.number, "action": transition_label(Ticket, name),
                "status": ticket.get_status_display()}, code="transition_not_allowed",
                data={"status": ticket.status, "transition": name})
        fields = ["status", "updated_at"]
        if name == "approve":
            limit = ticket.requested_amount + ticket.requested_shipping
            amount = limit if approved_amount is None else money_or_none(approved_amount)
            if amount is None or amount < 0 or amount > limit:
                raise ValidationFailed(_("Between 0 and %(limit)s, what the ticket asks for.") % {"limit": limit},
                                       code="amount_out_of_range", data={"approved_amount": [str(limit)]})
            ticket.approved_amount = amount
            fields.append("approved_amount")
            _lines_approve(ticket, amount)
        from_status = ticket.status
        method()
        now = timezone.now()
        if ticket.first_response_at is None and actor is not None and getattr(actor, "is_authenticated", False):
            ticket.first_response_at = now
            fields.append("first_response_at")
        if ticket.status in _FINAL:
            ticket.closed_at = now
            fields.append("closed_at")
        ticket.save(update_fields=fields)
        ticket_event_record(ticket, type=TicketEventType.STATUS_CHANGED, from_status=from_status,
                     to_status=ticket.status, reason=reason, data={"transition": name}, actor=actor,
                     actor_label=actor_label)
    return ticket


def _ticket_locked(ticket_id: int) -> Ticket:
    try:
        return lock_one(Ticket, ticket_id)
    except Ticket.DoesNotExist:
        raise NotFoundError(_("Ticket %(id)s does not exist.") % {"id": ticket_id}, code="ticket_not_found") from None


def _answered(ticket: Ticket, actor, fields: list[str]) -> None:
    """A person's first action on the ticket is its first response."""
    if ticket.first_response_at is None and actor is not None and getattr(actor, "is_authenticated", False):
        ticket.first_response_at = timezone.now()
        fields.append("first_response_at")


def ticket_return_tracking_set(*, ticket_id: int, tracking_number: str, actor=None, actor_label: str = "system"
                               ) -> Ticket:
    """Record the tracking number of the buyer's return parcel, so the receiving station finds the ticket by it."""
    tracking_number = (tracking_number or "").strip()
    if not tracking_number or len(tracking_number) > 64 or not tracking_number.isprintable():
        raise ValidationFailed(_("Enter the return parcel's tracking number (up to 64 characters)."),
                               code="tracking_number_invalid", data={"tracking_number": [_("Not valid.")]})
    with transaction.atomic():
        ticket = _ticket_locked(ticket_id)
        if ticket.return_tracking_number == tracking_number:
            return ticket
        ticket.return_tracking_number = tracking_number
        fields = ["return_tracking_number", "updated_at"]
        _answered(ticket, actor, fields)
        ticket.save(update_fields=fields)
        ticket_event_record(ticket, type=TicketEventType.NOTE_ADDED, data={"return_tracking_number": tracking_number},
                            reason=_("Return parcel %(tracking)s") % {"tracking": tracking_number}, actor=actor,
                            actor_label=actor_label)
    return ticket


def ticket_assign(*, ticket_id: int, owner, actor=None, actor_label: str = "system") -> Ticket:
    """Give the ticket to ``owner`` (a user, or None to leave it unassigned)."""
    with transaction.atomic():
        ticket = _ticket_locked(ticket_id)
        owner_id = owner.pk if owner is not None else None
        if ticket.owner_id == owner_id:
            return ticket
        ticket.owner = owner
        fields = ["owner", "updated_at"]
        _answered(ticket, actor, fields)
        ticket.save(update_fields=fields)
        ticket_event_record(ticket, type=TicketEventType.ASSIGNED, data={"owner": owner_id},
                            reason=owner.get_username() if owner is not None else "", actor=actor,
                            actor_label=actor_label)
    return ticket


def ticket_note_add(*, ticket_id: int, text: str, actor=None, actor_label: str = "system") -> Ticket:
    """A note on the ticket's timeline (what the buyer said, what was agreed); it counts as a response."""
    text = (text or "").strip()
    if not text or len(text) > 500 or "\x00" in text:
        raise ValidationFailed(_("Write a note of up to 500 characters."), code="note_invalid",
                               data={"text": [_("Not valid.")]})
    with transaction.atomic():
        ticket = _ticket_locked(ticket_id)
        fields = ["updated_at"]
        _answered(ticket, actor, fields)
        ticket.save(update_fields=fields)
        ticket_event_record(ticket, type=TicketEventType.NOTE_ADDED, reason=text, actor=actor,
                            actor_label=actor_label)
    return ticket
