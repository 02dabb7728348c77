"""Celery tasks of after-sales: the periodic sweep that escalates quiet tickets to a manager."""

from celery import shared_task

from aftersales.policies import tickets_escalate_stale


@shared_task(acks_late=True, ignore_result=True)
def escalate_stale_tickets_task() -> int:
    """Every few minutes (beat): idempotent, a ticket is escalated once per quiet spell."""
    return tickets_escalate_stale()
