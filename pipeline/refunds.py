"""Refunds as a flow across apps: a ticket's refund recorded, sent to the platform through the outbox, confirmed."""

from __future__ import annotations


def ticket_refund_start(*, ticket_id: int, actor=None):
    """Pay an approved refund-only or compensation ticket. (Stub: filled in by the refunds work.)"""
    return None


def ticket_refund_after_grading(*, ticket_id: int, actor=None):
    """A graded return: start its refund when the grades allow it. (Stub: filled in by the refunds work.)"""
    return None
