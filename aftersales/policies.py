"""A store's after-sales policies at work: auto-approval rules on new tickets and the escalation of quiet ones.

The SLA clock itself (the store's policy, the first-response due time in working hours, overdue and escalated
tickets) is read in aftersales.selectors, which aftersales.services uses too; it is re-exported here.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from aftersales.models import (
    OPEN_STATUSES,
    AftersalesPolicy,
    AutoApprovalRule,
    Ticket,
    TicketEventType,
    TicketStatus,
)
from aftersales.selectors import DEFAULT_ESCALATE_AFTER_HOURS, first_response_due, policy_for_store
from aftersales.services import ticket_event_record, ticket_transition
from oms.locks import lock_one, lock_rows

__all__ = ["first_response_due", "policy_for_store", "ticket_auto_approve", "tickets_escalate_stale"]

AUTO_APPROVER = "auto-approval rule"
ESCALATOR = "SLA"
AUTO_APPROVAL_CHECK = "auto_approval"
ESCALATION_BATCH = 200


def _auto_approval_refusal(ticket: Ticket, rule: AutoApprovalRule | None) -> str:
    """Why the rule does not approve this ticket, or "" when it does."""
    kind = ticket.get_type_display()
    if rule is None:
        return _("No auto-approval rule for “%(type)s” on this store: a person decides.") % {"type": kind}
    if not rule.enabled:
        return _("The auto-approval rule for “%(type)s” is switched off: a person decides.") % {"type": kind}
    failed = [check for check in ticket.checks if not check.get("ok") and check.get("check") != AUTO_APPROVAL_CHECK]
    if failed:
        return _("An automatic check did not pass: a person decides.")
    asked = ticket.requested_amount + ticket.requested_shipping
    if asked > rule.max_amount:
        return _("Asks for %(amount)s, above the rule's %(limit)s limit: a person decides.") % {
            "amount": asked, "limit": rule.max_amount}
    return ""


def _checks_with(ticket: Ticket, *, ok: bool, message: str) -> list[dict]:
    # One auto-approval entry per ticket: a second look replaces the first instead of piling up.
    kept = [check for check in ticket.checks if check.get("check") != AUTO_APPROVAL_CHECK]
    return [*kept, {"check": AUTO_APPROVAL_CHECK, "ok": ok, "message": message}]


def ticket_auto_approve(*, ticket_id: int) -> Ticket | None:
    """Approve a new ticket at once when its store has an enabled rule for its type, every automatic check
    passed and it asks (lines and shipping) for no more than the rule's amount.

    Approved: the "approve" transition with no person as actor (so it is not a first response), then an
    AUTO_APPROVED event naming the rule; the approved ticket is returned. Otherwise None, and the reason the
    ticket waits for a person is stored among its checks for the ticket page. A ticket no longer requested is
    left alone.
    """
    with transaction.atomic():
        ticket = lock_one(Ticket, ticket_id)
        if ticket.status != TicketStatus.REQUESTED:
            return None
        rule = AutoApprovalRule.objects.filter(store_id=ticket.store_id, type=ticket.type).first()
        refusal = _auto_approval_refusal(ticket, rule)
        if refusal:
            ticket.checks = _checks_with(ticket, ok=False, message=refusal)
            ticket.save(update_fields=["checks", "updated_at"])
            return None
        rule_text = _("“%(type)s” up to %(limit)s") % {"type": ticket.get_type_display(), "limit": rule.max_amount}
        ticket.checks = _checks_with(ticket, ok=True, message=_("Approved at once by the rule %(rule)s.") % {
            "rule": rule_text})
        ticket.save(update_fields=["checks", "updated_at"])
        ticket = ticket_transition(ticket_id=ticket.pk, name="approve", actor=None, actor_label=AUTO_APPROVER,
                                   reason=rule_text)
        ticket_event_record(ticket, type=TicketEventType.AUTO_APPROVED, reason=rule_text, actor_label=AUTO_APPROVER,
                            data={"rule": rule.pk, "type": rule.type, "max_amount": str(rule.max_amount),
                                  "amount": str(ticket.approved_amount)})
    return ticket


def _stale_q(now: datetime, hours: int) -> Q:
    """Open, quiet for ``hours`` and not escalated since its last activity."""
    return (Q(status__in=OPEN_STATUSES, last_activity_at__lt=now - timedelta(hours=hours))
            & (Q(escalated_at__isnull=True) | Q(escalated_at__lt=F("last_activity_at"))))


def tickets_escalate_stale(*, now: datetime | None = None, batch_size: int = ESCALATION_BATCH) -> int:
    """Escalate to a manager every open ticket without an event for its store's escalate_after_hours (48 by
    default); returns how many.

    Once per quiet spell: the ESCALATED event goes through ticket_event_record like every event, so it moves
    last_activity_at, and escalated_at is set to that same moment. The ticket then counts as escalated
    (escalated_at >= last_activity_at) and is not escalated again by later sweeps; any later event moves
    last_activity_at past escalated_at, which ends the escalation and starts a new 48-hour clock.
    Batches of ``batch_size`` tickets, each in its own transaction with the rows locked in pk order and the
    condition checked again under the lock (a person may have acted since the candidates were read).
    """
    now = now or timezone.now()
    # One pass per distinct escalation time: stores without a policy use the default.
    custom = dict(AftersalesPolicy.objects.values_list("store_id", "escalate_after_hours"))
    groups: dict[int, Q] = {DEFAULT_ESCALATE_AFTER_HOURS: ~Q(store_id__in=list(custom))}
    for store_id, hours in custom.items():
        groups[hours] = groups.get(hours, Q(pk__in=[])) | Q(store_id=store_id)
    escalated = 0
    for hours, stores in sorted(groups.items()):
        after_id = 0
        while True:
            ids = list(Ticket.objects.filter(stores, _stale_q(now, hours), pk__gt=after_id)
                       .order_by("pk").values_list("pk", flat=True)[:batch_size])
            if not ids:
                break
            after_id = ids[-1]
            with transaction.atomic():
                for ticket in lock_rows(Ticket.objects.filter(_stale_q(now, hours), pk__in=ids)):
                    ticket_event_record(ticket, type=TicketEventType.ESCALATED, actor_label=ESCALATOR,
                                        reason=_("No update for %(hours)s hours.") % {"hours": hours},
                                        data={"hours": hours})
                    ticket.escalated_at = ticket.last_activity_at
                    ticket.save(update_fields=["escalated_at"])
                    escalated += 1
    return escalated
