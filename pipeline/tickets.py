"""After-sales tickets as a flow across apps: what opening, approving and grading a ticket sets off next.

aftersales.services opens and moves a ticket; this module decides the next step, which lives in other apps:
a return waits for its parcel, a refund only (or compensation) is paid, a resend gets its replacement order at
once and an exchange once its return is graded. The desk, the API and the receiving station call these.
"""

from __future__ import annotations

from decimal import Decimal

from aftersales import policies
from aftersales.models import Ticket, TicketStatus, TicketType
from aftersales.services import SENT_BACK, TicketLineInput, ticket_create, ticket_transition
from pipeline import refunds, replacements

PAID_WITHOUT_RETURN = {TicketType.REFUND_ONLY, TicketType.COMPENSATION}


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


def ticket_apply_transition(*, ticket_id: int, name: str, actor=None, actor_label: str = "system", reason: str = "",
                            approved_amount: Decimal | None = None) -> Ticket:
    """A person's action on a ticket (the desk's buttons, the API), then what it sets off."""
    ticket = ticket_transition(ticket_id=ticket_id, name=name, actor=actor, actor_label=actor_label, reason=reason,
                               approved_amount=approved_amount)
    return ticket_follow_up(ticket=ticket, actor=actor)


def ticket_follow_up(*, ticket: Ticket, actor=None) -> Ticket:
    """The next step of an approved or graded ticket; nothing for any other state."""
    if ticket.status == TicketStatus.APPROVED:
        if ticket.type in SENT_BACK:
            return ticket_transition(ticket_id=ticket.pk, name="await_return", actor=None, actor_label="system",
                                     reason="")
        if ticket.type in PAID_WITHOUT_RETURN:
            refunds.ticket_refund_start(ticket_id=ticket.pk, actor=actor)
        elif ticket.type == TicketType.RESEND:
            replacements.ticket_replacement_create(ticket_id=ticket.pk, actor=actor)
    elif ticket.status == TicketStatus.GRADED:
        if ticket.type == TicketType.RETURN_REFUND:
            refunds.ticket_refund_after_grading(ticket_id=ticket.pk, actor=actor)
        elif ticket.type == TicketType.EXCHANGE:
            replacements.ticket_replacement_create(ticket_id=ticket.pk, actor=actor)
    return Ticket.objects.get(pk=ticket.pk)
