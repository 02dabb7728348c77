"""Refunds on an order: a payout within what was paid, its split over the lines, its confirmation or failure."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import ROUND_DOWN, Decimal

from django.db import transaction
from django.db.models import Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from aftersales.models import (
    Refund,
    RefundLine,
    RefundMethod,
    RefundStatus,
    Ticket,
    TicketEventType,
    TicketStatus,
)
from aftersales.services import CENT, line_paid_amount, money_or_none, ticket_event_record, ticket_transition
from oms.exceptions import ConflictError, NotFoundError, ValidationFailed
from oms.locks import lock_one
from orders.models import Order

ZERO = Decimal("0")
# A refund that is not failed holds its money: pending ones too, or two quick refunds could both pass the check.
HOLDING = [RefundStatus.PENDING, RefundStatus.CONFIRMED]


def refund_split(order: Order, amount: Decimal, line_weights: Mapping[int, Decimal]) -> dict[int, Decimal]:
    """``amount`` spread over the order lines ``line_weights`` names, pro rata to their weights (what was paid
    for the refunded units), so the order-level discount and shipping inside ``amount`` fall on every line alike.

    Each share is cut down to the cent and the remainder goes to the last line (in line order), so the shares
    add up to ``amount`` exactly. Weights that are all zero share equally. ``order`` gives the line order.
    """
    if not line_weights:
        raise ValidationFailed(_("A refund needs at least one order line."), code="refund_lines_missing",
                               data={"lines": [_("Choose at least one line.")]})
    line_order = dict(order.lines.filter(pk__in=list(line_weights)).values_list("pk", "line_no"))
    unknown = sorted(set(line_weights) - set(line_order))
    if unknown:
        raise ValidationFailed(_("Not a line of order %(number)s.") % {"number": order.number},
                               code="refund_line_unknown", data={"lines": [str(pk) for pk in unknown]})
    weights = {pk: Decimal(line_weights[pk]) for pk in sorted(line_weights, key=line_order.__getitem__)}
    if any(weight < 0 for weight in weights.values()):
        raise ValidationFailed(_("A line's share of a refund cannot be negative."), code="refund_line_negative")
    total = sum(weights.values(), ZERO)
    if total == 0:
        weights = dict.fromkeys(weights, Decimal("1"))
        total = Decimal(len(weights))
    shares: dict[int, Decimal] = {}
    *first, last = weights
    for pk in first:
        shares[pk] = (amount * weights[pk] / total).quantize(CENT, rounding=ROUND_DOWN)
    shares[last] = amount - sum(shares.values(), ZERO)
    return shares


def order_refundable(order: Order) -> Decimal:
    """What is left to refund on the order: paid less every refund that is not failed (read under the order lock)."""
    refunded = Refund.objects.filter(order=order, status__in=HOLDING).aggregate(total=Sum("amount"))["total"]
    return order.paid_amount - (refunded or ZERO)


def ticket_refundable(ticket: Ticket) -> Decimal:
    """The ticket's approved amount less its refunds that are not failed (read under the order lock)."""
    refunded = Refund.objects.filter(ticket=ticket, status__in=HOLDING).aggregate(total=Sum("amount"))["total"]
    return (ticket.approved_amount or ZERO) - (refunded or ZERO)


def _ticket_weights(ticket: Ticket) -> dict[int, Decimal]:
    """A ticket's lines weighted by what was approved (or asked) for them."""
    return {line.order_line_id: (line.approved_amount if line.approved_amount is not None else line.requested_amount)
            for line in ticket.lines.all()}


def _order_weights(order: Order) -> dict[int, Decimal]:
    """Every line of the order weighted by what was paid for it."""
    return {line.pk: line_paid_amount(line, line.quantity) for line in order.lines.all()}


def refund_record(*, order_id: int, amount, method: str, ticket_id: int | None = None, shipping_amount=ZERO,
                  lines: Mapping[int, Decimal] | None = None, actor=None, actor_label: str = "system") -> Refund:
    """Record one payout to the buyer (pending until paid out) with its split over the lines.

    Under the order's row lock (then the ticket's: orders → tickets) the amount must fit in what was paid less
    the order's earlier refunds, and, for a ticket, in its approved amount less the ticket's earlier refunds;
    otherwise nothing is written. ``lines`` maps order line ids to weights (default: the ticket's lines, or
    every line of the order).
    """
    value = money_or_none(amount)
    shipping = money_or_none(shipping_amount)
    if value is None or value <= 0:
        raise ValidationFailed(_("Enter an amount above zero."), code="refund_amount_invalid",
                               data={"amount": [_("Enter an amount above zero.")]})
    if shipping is None or shipping < 0 or shipping > value:
        raise ValidationFailed(_("The shipping part is between 0 and the refund's amount."),
                               code="refund_shipping_invalid", data={"shipping_amount": [str(value)]})
    if method not in RefundMethod.values:
        raise ValidationFailed(_("Choose one of: %(values)s") % {"values": ", ".join(RefundMethod.values)},
                               code="refund_method_invalid", data={"method": [method]})
    with transaction.atomic():
        try:
            order = lock_one(Order, order_id)
        except Order.DoesNotExist:
            raise NotFoundError(_("Order %(id)s does not exist.") % {"id": order_id}, code="order_not_found") from None
        left = order_refundable(order)
        if value > left:
            raise ValidationFailed(
                _("At most %(left)s can be refunded on order %(number)s: %(paid)s paid, %(refunded)s refunded.") % {
                    "left": max(left, ZERO), "number": order.number, "paid": order.paid_amount,
                    "refunded": order.paid_amount - left},
                code="refund_exceeds_paid", data={"amount": [str(max(left, ZERO))]})
        shipping_refunded = Refund.objects.filter(order=order, status__in=HOLDING).aggregate(
            total=Sum("shipping_amount"))["total"] or ZERO
        if shipping > order.shipping_amount - shipping_refunded:
            raise ValidationFailed(_("At most %(left)s of the shipping is left to refund.") % {
                "left": max(order.shipping_amount - shipping_refunded, ZERO)}, code="refund_shipping_invalid",
                data={"shipping_amount": [str(max(order.shipping_amount - shipping_refunded, ZERO))]})
        ticket = None
        if ticket_id is not None:
            try:
                ticket = lock_one(Ticket, ticket_id)
            except Ticket.DoesNotExist:
                raise NotFoundError(_("Ticket %(id)s does not exist.") % {"id": ticket_id},
                                    code="ticket_not_found") from None
            if ticket.order_id != order.pk:
                raise ValidationFailed(_("Ticket %(ticket)s is not on order %(number)s.") % {
                    "ticket": ticket.number, "number": order.number}, code="refund_ticket_mismatch")
            if ticket.approved_amount is None:
                raise ConflictError(_("Ticket %(ticket)s is not approved: nothing may be refunded on it yet.") % {
                    "ticket": ticket.number}, code="ticket_not_approved")
            ticket_left = ticket_refundable(ticket)
            if value > ticket_left:
                raise ValidationFailed(
                    _("At most %(left)s can be refunded on ticket %(ticket)s: %(approved)s approved.") % {
                        "left": max(ticket_left, ZERO), "ticket": ticket.number, "approved": ticket.approved_amount},
                    code="refund_exceeds_approved", data={"amount": [str(max(ticket_left, ZERO))]})
        weights = lines if lines is not None else (_ticket_weights(ticket) if ticket else _order_weights(order))
        shares = refund_split(order, value, weights)
        refund = Refund.objects.create(order=order, ticket=ticket, amount=value, shipping_amount=shipping,
                                       currency=order.currency, method=method, created_by=_user(actor))
        RefundLine.objects.bulk_create([RefundLine(refund=refund, order_line_id=pk, amount=share)
                                        for pk, share in shares.items()])
        if ticket is not None:
            ticket_event_record(ticket, type=TicketEventType.REFUND_RECORDED,
                                reason=_("Refund of %(amount)s %(currency)s (%(method)s).") % {
                                    "amount": value, "currency": refund.currency,
                                    "method": refund.get_method_display()},
                                data={"refund": refund.pk, "amount": str(value), "shipping": str(shipping),
                                      "method": method}, actor=actor, actor_label=actor_label)
    return refund


def _user(actor):
    return actor if actor is not None and getattr(actor, "is_authenticated", False) else None


def _refund_locked(refund_id: int) -> tuple[Refund, Ticket | None]:
    """The refund under its locks, taken in the project's order: its order, its ticket, then the refund."""
    found = Refund.objects.filter(pk=refund_id).values("order_id", "ticket_id").first()
    if found is None:
        raise NotFoundError(_("Refund %(id)s does not exist.") % {"id": refund_id}, code="refund_not_found")
    lock_one(Order, found["order_id"])
    ticket = lock_one(Ticket, found["ticket_id"]) if found["ticket_id"] else None
    return lock_one(Refund, refund_id), ticket


def refund_confirm(*, refund_id: int, platform_refund_id: str = "", actor=None,
                   actor_label: str = "system") -> Refund:
    """The refund was paid out (the platform confirmed it, or the seller paid it). Once a refunding ticket's
    confirmed refunds reach its approved amount, the ticket is refunded. Confirming twice changes nothing."""
    with transaction.atomic():
        refund, ticket = _refund_locked(refund_id)
        if refund.status == RefundStatus.CONFIRMED:
            return refund
        if refund.status == RefundStatus.FAILED:
            raise ConflictError(_("Refund %(id)s failed: record a new refund instead.") % {"id": refund.pk},
                                code="refund_failed")
        refund.status = RefundStatus.CONFIRMED
        refund.confirmed_at = timezone.now()
        refund.platform_refund_id = (platform_refund_id or "")[:64]
        refund.save(update_fields=["status", "confirmed_at", "platform_refund_id", "updated_at"])
        if ticket is not None:
            ticket_event_record(ticket, type=TicketEventType.REFUND_CONFIRMED,
                                reason=_("Refund of %(amount)s %(currency)s paid out.") % {
                                    "amount": refund.amount, "currency": refund.currency},
                                data={"refund": refund.pk, "amount": str(refund.amount),
                                      "platform_refund_id": refund.platform_refund_id},
                                actor=actor, actor_label=actor_label)
            confirmed = Refund.objects.filter(ticket=ticket, status=RefundStatus.CONFIRMED).aggregate(
                total=Sum("amount"))["total"] or ZERO
            if ticket.status == TicketStatus.REFUNDING and confirmed >= (ticket.approved_amount or ZERO):
                ticket_transition(ticket_id=ticket.pk, name="confirm_refund", actor=actor, actor_label=actor_label,
                                  reason=_("Every approved cent was paid out."))
    return refund


def refund_fail(*, refund_id: int, error: str, actor=None, actor_label: str = "system") -> Refund:
    """The refund could not be paid out (the platform refused it): it no longer holds money, and the ticket
    shows why so a person can act. Failing twice changes nothing; a paid-out refund cannot fail."""
    with transaction.atomic():
        refund, ticket = _refund_locked(refund_id)
        if refund.status == RefundStatus.FAILED:
            return refund
        if refund.status == RefundStatus.CONFIRMED:
            raise ConflictError(_("Refund %(id)s was already paid out.") % {"id": refund.pk},
                                code="refund_confirmed")
        refund.status = RefundStatus.FAILED
        refund.save(update_fields=["status", "updated_at"])
        if ticket is not None:
            ticket_event_record(ticket, type=TicketEventType.REFUND_FAILED,
                                reason=_("Refund of %(amount)s %(currency)s failed: %(error)s") % {
                                    "amount": refund.amount, "currency": refund.currency, "error": error[:300]},
                                data={"refund": refund.pk, "error": error[:2000]}, actor=actor,
                                actor_label=actor_label)
    return refund
