"""After-sales tickets as a flow across apps: what opening, approving and grading a ticket sets off next.

aftersales.services opens and moves a ticket; this module decides the next step, which lives in other apps:
a return waits for its parcel, a refund only (or compensation) is paid, a resend gets its replacement order at
once and an exchange once its return is graded. The desk, the API and the receiving station call these.
"""

from __future__ import annotations

from decimal import Decimal

from django.utils.translation import gettext as _

from aftersales import policies
from aftersales.models import Ticket, TicketStatus, TicketType
from aftersales.services import SENT_BACK, TicketLineInput, ticket_create, ticket_transition
from oms.exceptions import NotFoundError, ValidationFailed
from pipeline import refunds, replacements

PAID_WITHOUT_RETURN = {TicketType.REFUND_ONLY, TicketType.COMPENSATION}
# What a person may ask for by name (the ticket page's buttons, the API). The refund's own transitions are not
# among them as such: "start_refund" pays through the refunds flow (a Refund row, the platform) and the ticket is
# refunded when the money is out, never by a click; "retry_refund" sends a refused refund again, and
# "create_replacement" makes the replacement order the flow could not make.
# Receiving and grading happen unit by unit at the receiving station (pipeline.returns), and a replacement is
# shipped when its parcel ships: none of the three is a click on the ticket.
TICKET_ACTIONS = ("approve", "reject", "await_return", "start_refund", "retry_refund", "create_replacement", "close")
# Plain ticket transitions among them, applied by aftersales.services.ticket_transition.
_PLAIN = ("approve", "reject", "await_return", "close")


def ticket_open(*, order_id: int, type: str, reason: str, lines: list[TicketLineInput], reason_text: str = "",
                shipping_amount: Decimal = Decimal("0"), source: str = "desk", platform_after_sale_id: str = "",
                return_tracking_number: str = "", actor=None, actor_label: str = "system") -> Ticket:
    """Open a ticket (aftersales.services.ticket_create checks it), let the store's auto-approval rules approve
    it, and set off what an approved ticket needs."""
    ticket = ticket_create(order_id=order_id, type=type, reason=reason, lines=lines, reason_text=reason_text,
                           shipping_amount=shipping_amount, source=source,
                           platform_after_sale_id=platform_after_sale_id,
                           return_tracking_number=return_tracking_number, actor=actor, actor_label=actor_label)
    ticket = policies.ticket_auto_approve(ticket_id=ticket.pk) or ticket
    return ticket_follow_up(ticket=ticket, actor=actor)


def ticket_actions_available(ticket: Ticket) -> list[str]:
    """The names of TICKET_ACTIONS the ticket's state allows now, in that order (the page's buttons)."""
    allowed = {t.name for t in ticket.get_available_status_transitions()} & set(_PLAIN)
    if refunds.ticket_refundable_by_person(ticket):
        allowed.add("start_refund")
    if refunds.ticket_refund_failure(ticket) is not None:
        allowed.add("retry_refund")
    if ticket.type in replacements.REPLACED and ticket.status in replacements.REPLACEABLE \
            and not ticket.replacement_order_id:
        allowed.add("create_replacement")
    return [name for name in TICKET_ACTIONS if name in allowed]


def ticket_apply_transition(*, ticket_id: int, name: str, actor=None, actor_label: str = "system", reason: str = "",
                            approved_amount: Decimal | None = None) -> Ticket:
    """A person's action on a ticket (the desk's buttons, the API), then what it sets off. A refusal raises
    (ConflictError, ValidationFailed) with the reason and leaves the ticket as it was."""
    if name not in TICKET_ACTIONS:
        raise ValidationFailed(_("Unknown action %(name)s.") % {"name": name}, code="unknown_transition",
                               data={"name": [_("Choose one of: %(values)s") % {"values": ", ".join(TICKET_ACTIONS)}]})
    if name == "start_refund":
        refunds.ticket_refund_start(ticket_id=ticket_id, actor=actor, by_person=True, actor_label=actor_label,
                                    reason=reason)
        return _reread(ticket_id)
    if name == "retry_refund":
        refunds.ticket_refund_retry(ticket_id=ticket_id, actor=actor, actor_label=actor_label, reason=reason)
        return _reread(ticket_id)
    if name == "create_replacement":
        replacements.ticket_replacement_create(ticket_id=ticket_id, actor=actor)
        return _reread(ticket_id)
    ticket = ticket_transition(ticket_id=ticket_id, name=name, actor=actor, actor_label=actor_label, reason=reason,
                               approved_amount=approved_amount)
    return ticket_follow_up(ticket=ticket, actor=actor)


def _reread(ticket_id: int) -> Ticket:
    ticket = Ticket.objects.filter(pk=ticket_id).first()
    if ticket is None:
        raise NotFoundError(_("Ticket %(id)s does not exist.") % {"id": ticket_id}, code="ticket_not_found")
    return ticket


def ticket_follow_up(*, ticket: Ticket, actor=None) -> Ticket:
    """The next step of an approved or graded ticket; nothing for any other state. A replacement that cannot be
    made is left to a person with the reason on the timeline (ticket_replacement_try), like a held refund."""
    if ticket.status == TicketStatus.APPROVED:
        if ticket.type in SENT_BACK:
            return ticket_transition(ticket_id=ticket.pk, name="await_return", actor=None, actor_label="system",
                                     reason="")
        if ticket.type in PAID_WITHOUT_RETURN:
            refunds.ticket_refund_start(ticket_id=ticket.pk, actor=actor)
        elif ticket.type == TicketType.RESEND:
            replacements.ticket_replacement_try(ticket_id=ticket.pk, actor=actor)
    elif ticket.status == TicketStatus.GRADED:
        if ticket.type == TicketType.RETURN_REFUND:
            refunds.ticket_refund_after_grading(ticket_id=ticket.pk, actor=actor)
        elif ticket.type == TicketType.EXCHANGE:
            replacements.ticket_replacement_try(ticket_id=ticket.pk, actor=actor)
    return Ticket.objects.get(pk=ticket.pk)
