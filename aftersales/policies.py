"""A store's after-sales policies: working-hours SLA due times, escalation, and auto-approval rules."""

from __future__ import annotations

from aftersales.models import Ticket


def ticket_auto_approve(*, ticket_id: int) -> Ticket | None:
    """Approve a new ticket when a rule of its store allows it. (Stub: filled in by the SLA work.)"""
    return None
