"""Refunds as a flow across apps: a ticket's refund recorded, sent to the platform through the outbox, confirmed.

aftersales.refunds records a refund within what was paid; connectors.refunds keeps the outbox row and makes the
platform call. This module joins them: which refund a ticket gets and when, the outbox row written in the same
transaction as the refund, and the platform's answer turned into a confirmed (ticket refunded) or failed refund.

A manual store (no platform) refunds outside the hub: the seller pays the buyer back by the original payment,
so the refund is recorded and confirmed at once, and the ticket is refunded. Recording it is the seller's
statement that the money goes back; nothing in the hub could check a payment made elsewhere anyway.
"""

from __future__ import annotations

import logging
from decimal import Decimal

from django.db import transaction
from django.db.models import Sum
from django.utils.translation import gettext as _

from aftersales.models import (
    Grade,
    Refund,
    RefundLine,
    RefundMethod,
    RefundStatus,
    ReturnUnit,
    Ticket,
    TicketEvent,
    TicketEventType,
    TicketReason,
    TicketStatus,
    TicketType,
)
from aftersales.refunds import HOLDING, refund_confirm, refund_fail, refund_record, ticket_refundable
from aftersales.services import ticket_event_record, ticket_transition
from connectors.base import AuthError, ConnectorError, PermanentError, TransientError
from connectors.models import RefundPush, RefundPushStatus
from connectors.refunds import (
    refund_push_call,
    refund_push_claim,
    refund_push_enqueue,
    refund_push_mark_failed,
    refund_push_mark_sent,
    refund_push_retry_later,
)
from connectors.registry import CONNECTORS
from oms.effects import task_after_commit
from oms.exceptions import ConflictError, DomainError, NotFoundError
from oms.locks import lock_one
from orders.models import Order, OrderLine

logger = logging.getLogger(__name__)

REFUND_TASK = "connectors.tasks.push_refund_task"
ACTOR_LABEL = "refunds"
# Reasons that are the seller's fault: the buyer gets the money back whatever state the goods came back in.
SELLER_FAULT = {TicketReason.WRONG_ITEM, TicketReason.DAMAGED, TicketReason.QUALITY, TicketReason.NOT_AS_DESCRIBED,
                TicketReason.LOST_IN_TRANSIT}
# Grades that let a return be refunded whatever the reason.
REFUNDABLE_GRADES = {Grade.RESALABLE, Grade.MINOR_WEAR}
# What a person's "refund" button may pay: a request without a return once approved, a return once graded.
PERSON_REFUNDABLE = {(TicketStatus.APPROVED, TicketType.REFUND_ONLY), (TicketStatus.APPROVED, TicketType.COMPENSATION),
                     (TicketStatus.GRADED, TicketType.RETURN_REFUND), (TicketStatus.GRADED, TicketType.EXCHANGE)}


def _ticket(ticket_id: int) -> Ticket:
    try:
        return Ticket.objects.get(pk=ticket_id)
    except Ticket.DoesNotExist:
        raise NotFoundError(_("Ticket %(id)s does not exist.") % {"id": ticket_id}, code="ticket_not_found") from None


def _held(ticket: Ticket, *, reason: str, data: dict) -> None:
    """Leave the ticket where it is for a person, with why on its timeline (once per cause)."""
    with transaction.atomic():
        lock_one(Ticket, ticket.pk)
        if TicketEvent.objects.filter(ticket=ticket, type=TicketEventType.NOTE_ADDED, data__refund_held=data.get(
                "refund_held")).exists():
            return
        ticket_event_record(ticket, type=TicketEventType.NOTE_ADDED, reason=reason, data=data,
                            actor_label=ACTOR_LABEL)


def _refund_send(*, order: Order, ticket: Ticket, amount, actor=None) -> Refund:
    """Record ``amount`` on the ticket (inside the caller's transaction, order and ticket locked) and send it: a
    platform order's refund is queued to the platform, a manual store's is confirmed at once. The shipping part
    is what the ticket asks for shipping less what its refunds that hold money already pay back."""
    held_shipping = Refund.objects.filter(ticket=ticket, status__in=HOLDING).aggregate(
        total=Sum("shipping_amount"))["total"] or Decimal("0")
    platform = order.store.platform in CONNECTORS
    refund = refund_record(order_id=order.pk, amount=amount, ticket_id=ticket.pk,
                           method=RefundMethod.PLATFORM if platform else RefundMethod.ORIGINAL,
                           shipping_amount=min(max(ticket.requested_shipping - held_shipping, Decimal("0")), amount),
                           actor=actor, actor_label=ACTOR_LABEL)
    if platform:
        line_ids = [platform_id for platform_id in OrderLine.objects.filter(
            pk__in=RefundLine.objects.filter(refund=refund).values("order_line_id")).order_by("line_no")
            .values_list("platform_line_id", flat=True) if platform_id]
        push = refund_push_enqueue(order=order, refund_ref=refund.pk, amount=refund.amount,
                                   platform_after_sale_id=ticket.platform_after_sale_id, line_ids=line_ids)
        task_after_commit(REFUND_TASK, push_id=push.pk)
        return refund
    return refund_confirm(refund_id=refund.pk, actor=actor, actor_label=ACTOR_LABEL)


def ticket_refundable_by_person(ticket: Ticket) -> bool:
    """A person may start the refund of: an approved refund only or compensation, or a graded return (or an
    exchange that is refunded instead, e.g. no replacement can be sent) that waits for their decision."""
    return ((ticket.status, ticket.type) in PERSON_REFUNDABLE
            and not (ticket.type == TicketType.EXCHANGE and ticket.replacement_order_id))


def ticket_refund_start(*, ticket_id: int, actor=None, by_person: bool = False, actor_label: str = ACTOR_LABEL,
                        reason: str = "") -> Refund | None:
    """Pay an approved ticket (refund only, compensation) or a graded return its approved amount: the ticket
    goes to refunding and a refund is recorded in one transaction; a platform order's refund is queued to the
    platform, a manual store's is confirmed at once. None when nothing was recorded (approved at zero: the
    ticket is refunded at once).

    Set off by the flow (``by_person`` False), a refusal (more than was paid is left…) leaves the ticket as it
    was, with the reason on its timeline. A person's "refund" (``by_person``) must name a ticket
    ticket_refundable_by_person allows, is the ticket's answer, and a refusal is raised to them, nothing written.
    """
    ticket = _ticket(ticket_id)
    if by_person and not ticket_refundable_by_person(ticket):
        raise ConflictError(_("Ticket %(number)s cannot be refunded by hand while it is %(status)s: only an approved "
                              "refund or compensation, or a graded return, is.") % {
            "number": ticket.number, "status": ticket.get_status_display()},
            code="refund_not_allowed", data={"status": ticket.status, "type": ticket.type})
    try:
        with transaction.atomic():
            order = lock_one(Order, ticket.order_id)  # orders → tickets, as refund_record locks them
            ticket = ticket_transition(
                ticket_id=ticket.pk, name="start_refund", actor=actor if by_person else None,
                actor_label=actor_label, reason=reason or _("Paying the approved amount back."))
            amount = ticket_refundable(ticket)
            if amount <= 0:  # approved at zero: nothing goes out, the ticket is done
                ticket_transition(ticket_id=ticket.pk, name="confirm_refund", actor=None, actor_label=ACTOR_LABEL,
                                  reason=_("Nothing to pay out: the approved amount is zero."))
                return None
            return _refund_send(order=order, ticket=ticket, amount=amount, actor=actor)
    except DomainError as exc:
        if by_person:
            raise
        _held(ticket, reason=_("The refund was not started: %(why)s") % {"why": exc.message},
              data={"refund_held": "refused", "code": exc.code})
        return None


def ticket_refund_failure(ticket: Ticket) -> dict | None:
    """The ticket's latest failed refund and why the platform refused it ({"refund": Refund, "error": text}),
    when a person may try again: the ticket is still refunding and no other refund of it waits for the
    platform. None otherwise."""
    if ticket.status != TicketStatus.REFUNDING:
        return None
    refunds = list(Refund.objects.filter(ticket=ticket).order_by("-id"))
    failed = next((refund for refund in refunds if refund.status == RefundStatus.FAILED), None)
    if failed is None or any(refund.status == RefundStatus.PENDING for refund in refunds):
        return None
    event = TicketEvent.objects.filter(ticket=ticket, type=TicketEventType.REFUND_FAILED,
                                       data__refund=failed.pk).order_by("-id").first()
    return {"refund": failed, "error": (event.data or {}).get("error", "") if event else ""}


def ticket_refund_retry(*, ticket_id: int, actor=None, actor_label: str = ACTOR_LABEL, reason: str = "") -> Refund:
    """Try a failed refund again: a new refund of what the ticket has left to pay, sent like the first (a new
    idempotency key, so the platform sees a new request, not the refused one). Only for a refunding ticket
    whose latest refund failed and none waits for the platform; the failed row stays as the record of the
    refusal. Refused with a reason otherwise, nothing written."""
    ticket = _ticket(ticket_id)
    with transaction.atomic():
        order = lock_one(Order, ticket.order_id)  # orders → tickets; a second retry waits here, then sees ours
        ticket = lock_one(Ticket, ticket.pk)
        failure = ticket_refund_failure(ticket)
        if failure is None:
            raise ConflictError(_("Ticket %(number)s has no failed refund to try again (it is %(status)s, or a "
                                  "refund still waits for the platform).") % {
                "number": ticket.number, "status": ticket.get_status_display()},
                code="refund_retry_not_allowed", data={"status": ticket.status})
        amount = ticket_refundable(ticket)
        if amount <= 0:
            raise ConflictError(_("Nothing is left to refund on ticket %(number)s.") % {"number": ticket.number},
                                code="refund_retry_not_allowed", data={"status": ticket.status})
        ticket_event_record(ticket, type=TicketEventType.NOTE_ADDED, actor=actor, actor_label=actor_label,
                            reason=reason or _("Refund tried again after: %(error)s") % {
                                "error": failure["error"][:300] or failure["refund"].get_status_display()},
                            data={"refund_retry_of": failure["refund"].pk})
        return _refund_send(order=order, ticket=ticket, amount=amount, actor=actor)


def ticket_refund_after_grading(*, ticket_id: int, actor=None) -> Refund | None:
    """A graded return: refund it when the grades allow (every unit resalable or with minor wear, or the
    reason is the seller's fault); a unit that cannot be sold again on a return for the buyer's own reason
    (changed mind, size, other) leaves the ticket graded for a person to decide, with a note saying so."""
    ticket = _ticket(ticket_id)
    if ticket.status != TicketStatus.GRADED:
        return None
    grades = list(ReturnUnit.objects.filter(ticket=ticket).values_list("grade", flat=True))
    if not grades:
        _held(ticket, reason=_("No unit was graded: decide the refund by hand."),
              data={"refund_held": "no_units"})
        return None
    if ticket.reason not in SELLER_FAULT and not set(grades) <= REFUNDABLE_GRADES:
        _held(ticket, reason=_("A returned unit cannot be sold again and the reason (%(reason)s) is the buyer's: "
                               "decide the refund by hand.") % {"reason": ticket.get_reason_display()},
              data={"refund_held": "not_resalable", "grades": sorted(grades)})
        return None
    return ticket_refund_start(ticket_id=ticket.pk, actor=actor)


def refund_push_deliver(*, push_id: int) -> str:
    """Send one queued refund decision to its platform; returns the outbox row's status afterwards.

    Claimed through the lease (two workers never send one row at once); the HTTP call runs outside any
    transaction; the platform's confirmation and the refund's confirmation (the ticket refunded) are one
    transaction. The connector's call carries the refund's own key, so a retry after a lost answer is answered
    with the refund already made instead of a second one.
    """
    push = refund_push_claim(push_id=push_id)
    if push is None:
        return RefundPush.objects.filter(pk=push_id).values_list("status", flat=True).first() or ""
    try:
        result = refund_push_call(push)
    except (TransientError, AuthError) as exc:
        return RefundPushStatus.PENDING if refund_push_retry_later(push, exc) else _push_failed(push, exc)
    except PermanentError as exc:
        return _push_failed(push, exc)
    try:
        with transaction.atomic():
            refund_confirm(refund_id=push.refund_ref,
                           platform_refund_id=str(result.get("platform_refund_id") or ""),
                           actor_label=push.store.platform)
            refund_push_mark_sent(push, result)
    except DomainError as exc:
        # The platform paid out but the refund can no longer be confirmed here (a person failed it meanwhile):
        # the row is done all the same, so the sweeper never sends it again, and the log says what to reconcile.
        logger.error("refund push %s: the platform refunded but refund %s could not be confirmed: %s", push.pk,
                     push.refund_ref, exc.message)
        refund_push_mark_sent(push, {**result, "unconfirmed": exc.message})
    return RefundPushStatus.SENT


def _push_failed(push: RefundPush, exc: ConnectorError) -> str:
    with transaction.atomic():
        refund_fail(refund_id=push.refund_ref, error=exc.message, actor_label=push.store.platform)
        refund_push_mark_failed(push, exc)
    return RefundPushStatus.FAILED
