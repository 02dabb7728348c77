"""Platform after-sales as tickets: open one per platform after-sale id, then follow the platform's newest state."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_DOWN, Decimal

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django_fsm import can_proceed

from aftersales.models import (
    Refund,
    RefundMethod,
    Ticket,
    TicketEventType,
    TicketLine,
    TicketReason,
    TicketSource,
    TicketStatus,
    TicketType,
)
from aftersales.refunds import order_refundable, refund_confirm, refund_record, ticket_refundable
from aftersales.selectors import first_response_due, policy_for_store
from aftersales.services import (
    SENT_BACK,
    TicketLineInput,
    line_paid_amount,
    rma_number_next,
    ticket_create,
    ticket_event_record,
    ticket_transition,
)
from oms.exceptions import DomainError, NotFoundError, ValidationFailed
from oms.locks import lock_one
from orders.models import Order

CENT = Decimal("0.01")
PLATFORM_STATUSES = ("open", "agreed", "returning", "refunded", "rejected", "cancelled")
# What each state means, said to a person; the platform's own status code stays in the event's data.
PLATFORM_STATUS_WORDS = {
    "open": gettext_lazy("the buyer asked, waiting for the seller"),
    "agreed": gettext_lazy("the seller agreed"),
    "returning": gettext_lazy("the buyer is sending the goods back"),
    "refunded": gettext_lazy("refunded"),
    "rejected": gettext_lazy("the seller refused"),
    "cancelled": gettext_lazy("the buyer withdrew the request"),
}
S = TicketStatus


def _path(status: str, type: str) -> list[str]:
    """The transitions that take a ticket toward a platform state, tried in turn: a ticket already past a step
    skips it (can_proceed), so a delivery that jumped ahead walks several steps and a repeat walks none."""
    sent_back = type in SENT_BACK
    return {
        "open": [],
        "agreed": ["approve", "await_return"] if sent_back else ["approve"],
        "returning": ["approve", "await_return"] if sent_back else ["approve"],
        # Refunded on the platform: the platform paid. Goods on their way back still go through the warehouse's
        # receiving and grading (stock), so a return waits for them; the platform state is on the ticket.
        # Refund only: refunding, and the platform's payout recorded and confirmed makes it refunded.
        "refunded": ["approve", "await_return"] if sent_back else ["approve", "start_refund"],
        "rejected": ["reject"],
        "cancelled": ["close"],
    }[status]


@dataclass
class PlatformAfterSaleLine:
    order_line_id: int
    quantity: int


@dataclass
class PlatformAfterSale:
    """A platform after-sale in plain values (aftersales never sees a connector's dataclasses)."""

    platform_after_sale_id: str
    type: str  # a TicketType value
    status: str  # one of PLATFORM_STATUSES
    raw_status: str
    updated_at: datetime
    lines: list[PlatformAfterSaleLine] = field(default_factory=list)
    reason_text: str = ""
    refund_amount: Decimal | None = None
    return_tracking_number: str = ""


def ticket_upsert_from_platform(*, store_id: int, order_id: int, after_sale: PlatformAfterSale,
                                actor_label: str = "platform") -> tuple[Ticket, str]:
    """Open the ticket of a platform after-sale the first time, follow the platform after that.

    Once per (store, platform after-sale id), whatever the number of deliveries and their order: a delivery
    older than (or as old as) the one applied is skipped. Returns (ticket, "created" / "updated" / "stale").
    A concurrent delivery that opened the ticket first wins the unique constraint; this one then updates it.
    """
    after_sale = _checked(after_sale)
    with transaction.atomic():
        if not Ticket.objects.filter(store_id=store_id, platform_after_sale_id=after_sale.platform_after_sale_id
                                     ).exists():
            try:
                with transaction.atomic():  # a savepoint: losing the race leaves this transaction usable
                    ticket = _open(store_id=store_id, order_id=order_id, after_sale=after_sale,
                                   actor_label=actor_label)
                    _follow(ticket_id=ticket.pk, order_id=order_id, after_sale=after_sale, actor_label=actor_label,
                            opened=True)
                return Ticket.objects.get(pk=ticket.pk), "created"
            except IntegrityError:
                pass  # another delivery of the same after-sale opened it a moment ago: follow it below
        ticket_id = Ticket.objects.filter(store_id=store_id, platform_after_sale_id=after_sale.platform_after_sale_id
                                          ).values_list("pk", flat=True).get()
        outcome = _follow(ticket_id=ticket_id, order_id=order_id, after_sale=after_sale, actor_label=actor_label,
                          opened=False)
    return Ticket.objects.get(pk=ticket_id), outcome


def _checked(after_sale: PlatformAfterSale) -> PlatformAfterSale:
    errors = {}
    if not after_sale.platform_after_sale_id or len(after_sale.platform_after_sale_id) > 64:
        errors["platform_after_sale_id"] = [_("Between 1 and 64 characters.")]
    if after_sale.type not in TicketType.values:
        errors["type"] = [_("Choose one of: %(values)s") % {"values": ", ".join(TicketType.values)}]
    if after_sale.status not in PLATFORM_STATUSES:
        errors["status"] = [_("Choose one of: %(values)s") % {"values": ", ".join(PLATFORM_STATUSES)}]
    if after_sale.updated_at is None or timezone.is_naive(after_sale.updated_at):
        errors["updated_at"] = [_("A time with its time zone is needed.")]
    if errors:
        raise ValidationFailed(_("The platform after-sale is not valid."), code="platform_after_sale_invalid",
                               data=errors)
    return after_sale


def _line_inputs(order: Order, after_sale: PlatformAfterSale) -> tuple[list[TicketLineInput], Decimal]:
    """The ticket's lines with the platform's refund amount split over them by what was paid (the cent rest on
    the last line), and the part of the amount above the lines' paid total, asked as shipping."""
    lines = {line.pk: line for line in order.lines.all()}
    wanted = after_sale.lines or [PlatformAfterSaleLine(pk, line.quantity) for pk, line in lines.items()]
    if after_sale.refund_amount is None:
        return [TicketLineInput(item.order_line_id, item.quantity) for item in wanted], Decimal("0")
    paid = [line_paid_amount(lines[item.order_line_id], item.quantity)
            if item.order_line_id in lines and 0 < item.quantity <= lines[item.order_line_id].quantity else Decimal("0")
            for item in wanted]
    total_paid, amount = sum(paid, Decimal("0")), after_sale.refund_amount.quantize(CENT)
    on_lines = min(amount, total_paid)
    inputs, left = [], on_lines
    for index, (item, line_paid) in enumerate(zip(wanted, paid, strict=True)):
        last = index == len(wanted) - 1
        share = left if last else (on_lines * line_paid / total_paid).quantize(CENT, rounding=ROUND_DOWN) \
            if total_paid else Decimal("0")
        inputs.append(TicketLineInput(item.order_line_id, item.quantity, share))
        left -= share
    return inputs, amount - on_lines


def _reason_text(after_sale: PlatformAfterSale) -> str:
    return (after_sale.reason_text or "").strip()[:500] or _("Platform after-sale %(id)s") % {
        "id": after_sale.platform_after_sale_id}


def _open(*, store_id: int, order_id: int, after_sale: PlatformAfterSale, actor_label: str) -> Ticket:
    """Open the ticket through ticket_create and its checks. A request the checks refuse is opened anyway, with
    the failed checks stored and shown: the buyer already asked the platform, so the seller must see it (and
    answer it there); dropping it would lose it, and a dead letter would hide it from customer service."""
    try:
        order = Order.objects.get(pk=order_id, store_id=store_id)
    except Order.DoesNotExist:
        raise NotFoundError(_("Order %(id)s does not exist.") % {"id": order_id}, code="order_not_found") from None
    lines, shipping = _line_inputs(order, after_sale)
    try:
        return ticket_create(order_id=order_id, type=after_sale.type, reason=TicketReason.OTHER,
                             reason_text=_reason_text(after_sale), lines=lines, shipping_amount=shipping,
                             source=TicketSource.PLATFORM, platform_after_sale_id=after_sale.platform_after_sale_id,
                             return_tracking_number=after_sale.return_tracking_number, actor_label=actor_label)
    except ValidationFailed as refused:
        return _open_flagged(order=order, after_sale=after_sale, lines=lines, shipping=shipping, refused=refused,
                             actor_label=actor_label)


def _open_flagged(*, order: Order, after_sale: PlatformAfterSale, lines: list[TicketLineInput], shipping: Decimal,
                  refused: ValidationFailed, actor_label: str) -> Ticket:
    """The ticket of a platform request our checks refuse: its lines as far as they are lines of the order (at
    most their quantity), the amounts asked as the platform says, and each failed check with its message."""
    order = lock_one(Order, order.pk)
    order_lines = {line.pk: line for line in order.lines.all()}
    problems = [f"{name}: {message}" for name, messages in (refused.data or {}).items() for message in messages]
    checks = [{"check": "platform", "ok": False, "message": problem} for problem in problems]
    rows = []
    for item in lines:
        line = order_lines.get(item.order_line_id)
        if line is None or item.quantity <= 0:
            continue
        amount = item.amount if item.amount is not None else line_paid_amount(line, min(item.quantity, line.quantity))
        rows.append((line, min(item.quantity, line.quantity), max(amount, Decimal("0"))))
    now = timezone.now()
    ticket = Ticket.objects.create(
        number=rma_number_next(), order=order, store_id=order.store_id, type=after_sale.type,
        reason=TicketReason.OTHER, reason_text=_reason_text(after_sale), source=TicketSource.PLATFORM,
        platform_after_sale_id=after_sale.platform_after_sale_id,
        return_tracking_number=after_sale.return_tracking_number.strip()[:64], last_activity_at=now,
        requested_amount=sum((amount for _l, _q, amount in rows), Decimal("0")), requested_shipping=max(shipping, 0),
        currency=order.currency, due_at=first_response_due(policy=policy_for_store(order.store_id), opened_at=now),
        checks=checks)
    TicketLine.objects.bulk_create([TicketLine(ticket=ticket, order_line=line, quantity=quantity,
                                               requested_amount=amount) for line, quantity, amount in rows])
    ticket_event_record(ticket, type=TicketEventType.CREATED, to_status=ticket.status,
                        reason=_("Opened from the platform although its checks failed: %(problems)s") % {
                            "problems": "; ".join(problems)},
                        data={"type": after_sale.type, "source": TicketSource.PLATFORM, "checks_failed": problems},
                        actor_label=actor_label)
    return ticket


def _follow(*, ticket_id: int, order_id: int, after_sale: PlatformAfterSale, actor_label: str, opened: bool) -> str:
    """Move the ticket toward the platform's state, unless the delivery is older than the one applied."""
    lock_one(Order, order_id)  # the lock order is orders → tickets (refunds lock the order too)
    ticket = lock_one(Ticket, ticket_id)
    if ticket.order_id != order_id:
        raise ValidationFailed(_("Platform after-sale %(id)s belongs to another order.") % {
            "id": after_sale.platform_after_sale_id}, code="platform_after_sale_order_mismatch")
    if ticket.platform_updated_at is not None and after_sale.updated_at <= ticket.platform_updated_at:
        return "stale"
    from_status = ticket.status
    said = PLATFORM_STATUS_WORDS.get(after_sale.status, after_sale.raw_status)
    moved = []
    for name in _path(after_sale.status, after_sale.type):
        if can_proceed(getattr(ticket, name)):
            ticket = ticket_transition(ticket_id=ticket.pk, name=name, actor_label=actor_label,
                                       reason=_("On the platform: %(status)s") % {"status": said})
            moved.append(name)
    refund_note = _platform_refund_record(ticket=ticket, after_sale=after_sale, actor_label=actor_label) \
        if after_sale.status == "refunded" else ""
    ticket = Ticket.objects.get(pk=ticket.pk)
    fields = ["platform_status", "platform_updated_at", "updated_at"]
    ticket.platform_status = after_sale.raw_status[:40]
    ticket.platform_updated_at = after_sale.updated_at
    tracking = after_sale.return_tracking_number.strip()[:64]
    if tracking and tracking != ticket.return_tracking_number:
        ticket.return_tracking_number = tracking
        fields.append("return_tracking_number")
    ticket.save(update_fields=fields)
    reached = ticket.status in _reached(after_sale.status, after_sale.type)
    ticket_event_record(ticket, type=TicketEventType.PLATFORM_UPDATED, from_status=from_status,
                        to_status=ticket.status,
                        reason=(_("On the platform: %(status)s") % {"status": said}) if reached else
                        _("On the platform: %(status)s; the ticket stays %(ticket)s (a person decides).") % {
                            "status": said, "ticket": ticket.get_status_display()},
                        data={"platform_status": after_sale.status, "raw_status": after_sale.raw_status,
                              "refund": refund_note,
                              "platform_updated_at": after_sale.updated_at.isoformat(), "transitions": moved,
                              "opened": opened},
                        actor_label=actor_label)
    return "updated"


def _platform_refund_record(*, ticket: Ticket, after_sale: PlatformAfterSale, actor_label: str) -> str:
    """The platform paid the buyer: one confirmed Refund (method platform, keyed by the after-sale id), so what is
    left to refund on the order and the ticket counts it and nothing is paid twice. Returns a note for the event."""
    key = f"as:{after_sale.platform_after_sale_id}"[:64]
    if Refund.objects.filter(ticket=ticket, platform_refund_id=key).exists():
        return "already recorded"
    if ticket.approved_amount is None:
        return "not approved"
    wanted = after_sale.refund_amount if after_sale.refund_amount is not None else ticket.approved_amount
    amount = min(wanted, ticket_refundable(ticket), order_refundable(ticket.order))
    if amount <= 0:
        return "nothing left to refund"
    try:
        with transaction.atomic():
            refund = refund_record(order_id=ticket.order_id, amount=amount, method=RefundMethod.PLATFORM,
                                   ticket_id=ticket.pk, actor_label=actor_label)
            refund_confirm(refund_id=refund.pk, platform_refund_id=key, actor_label=actor_label)
    except DomainError as refused:
        return f"{refused.code}: {refused.message}"
    return f"recorded {amount}"


def _reached(status: str, type: str) -> set[str]:
    """The ticket states that agree with the platform's state."""
    return {
        "open": {S.REQUESTED},
        "agreed": {S.APPROVED, S.AWAITING_RETURN},
        "returning": {S.AWAITING_RETURN, S.RECEIVED, S.GRADED} if type in SENT_BACK else {S.APPROVED},
        "refunded": {S.REFUNDED, S.AWAITING_RETURN, S.RECEIVED, S.GRADED} if type in SENT_BACK else {S.REFUNDED},
        "rejected": {S.REJECTED},
        "cancelled": {S.CLOSED},
    }[status]
