"""Replacement orders for exchanges and resends: a linked zero-amount order that ships like any other."""

from __future__ import annotations


def ticket_replacement_create(*, ticket_id: int, actor=None):
    """Create the ticket's replacement order. (Stub: filled in by the replacements work.)"""
    return None
