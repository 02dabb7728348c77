"""Reads on after-sales tickets: a store's SLA policy and the due time it gives, the desk's queue, overdue and
escalated tickets, first-response and cycle times.

- ``policy_for_store(store_id)``: the store's AftersalesPolicy, or the defaults (30 working minutes, 09:00–18:00,
  48 h to escalation) as an unsaved row.
- ``first_response_due(policy=, opened_at=)``: when the first answer is due, counted in working hours.
- ``ticket_overdue_q(now)`` / ``ticket_is_overdue(ticket, now)``: open, nobody answered, due before ``now``.
- ``ticket_escalated_q()``: open and escalated since its last activity (a manager should look at it).
- ``tickets_for_queue(status=, type=, store_id=, overdue=, owner_id=, escalated=)``: the queue with its filters.
- ``tickets_escalated_count()``: one COUNT for the managers' notice.
- ``ticket_claimed_on_lines(order_line_ids, excluding=)``: units and amounts already asked for on order lines by
  open or refunded tickets (what a new ticket may still claim).
- ``ticket_first_response_seconds(ticket)`` / ``ticket_cycle_seconds(ticket)``: from opening to a person's first
  answer, and to the final state (None until then).

They live here rather than in aftersales.policies because aftersales.services needs the due time when it opens a
ticket, and policies (auto-approval, escalation) call services: reads below both keep the imports one-way.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from django.db.models import F, Q, QuerySet, Sum
from django.utils import timezone

from aftersales.models import OPEN_STATUSES, AftersalesPolicy, Ticket, TicketLine, TicketStatus
from fulfillment.models import ShipmentLine, ShipmentStatus
from orders.models import Order, OrderStatus

DEFAULT_FIRST_RESPONSE_MINUTES = 30
DEFAULT_WORK_STARTS = time(9, 0)
DEFAULT_WORK_ENDS = time(18, 0)
DEFAULT_ESCALATE_AFTER_HOURS = 48
_DAY = timedelta(days=1)


def policy_for_store(store_id: int) -> AftersalesPolicy:
    """The store's after-sales policy; a store without one gets the defaults (an unsaved row, never written)."""
    policy = AftersalesPolicy.objects.filter(store_id=store_id).first()
    if policy is None:
        policy = AftersalesPolicy(store_id=store_id, first_response_minutes=DEFAULT_FIRST_RESPONSE_MINUTES,
                                  work_starts=DEFAULT_WORK_STARTS, work_ends=DEFAULT_WORK_ENDS,
                                  escalate_after_hours=DEFAULT_ESCALATE_AFTER_HOURS)
    return policy


def _as_time(value) -> time:
    # A row built with the model's string defaults ("09:00") and not read back holds text, not a time.
    return time.fromisoformat(value) if isinstance(value, str) else value


def _working_interval(day: date, starts: time, ends: time, zone) -> tuple[datetime, datetime]:
    """The working stretch that begins on ``day``; one that ends at or before it starts runs past midnight."""
    begin = datetime.combine(day, starts, tzinfo=zone)
    end = datetime.combine(day + _DAY if ends <= starts else day, ends, tzinfo=zone)
    return begin, end


def first_response_due(*, policy: AftersalesPolicy, opened_at: datetime) -> datetime:
    """When the first answer to a ticket opened at ``opened_at`` is due, as an aware UTC time.

    The minutes count only inside the working hours, in the site's time zone (settings.TIME_ZONE,
    Asia/Shanghai), every day of the week: Chinese e-commerce customer service works weekends and holidays.
    With 09:00–18:00 and 30 minutes, 17:50 is due 09:20 the next day and 22:00 is due 09:30 the next day.
    Equal start and end mean round the clock; an end before the start is a shift past midnight.
    """
    zone = timezone.get_default_timezone()
    starts, ends = _as_time(policy.work_starts), _as_time(policy.work_ends)
    remaining = timedelta(minutes=policy.first_response_minutes)
    if starts == ends:
        return (opened_at + remaining).astimezone(UTC)
    moment = opened_at.astimezone(zone)
    # A stretch past midnight may have begun the day before.
    day = moment.date() - _DAY
    begin, end = _working_interval(day, starts, ends, zone)
    stretch = end - begin
    while True:
        if moment < end:
            moment = max(moment, begin)
            if moment + remaining <= end:
                return (moment + remaining).astimezone(UTC)
            remaining -= end - moment
            # Whole working days in between at once, so a long target does not walk day by day.
            whole_days = remaining // stretch
            if remaining % stretch == timedelta(0):
                whole_days -= 1  # due exactly at the end of a stretch: stop on that day, not the next one's start
            day += _DAY * whole_days
            remaining -= stretch * whole_days
        day += _DAY
        begin, end = _working_interval(day, starts, ends, zone)
        moment = max(moment, begin)


def ticket_overdue_q(now: datetime) -> Q:
    """Still open, no person has answered yet, and the first answer was due before ``now``."""
    return Q(status__in=OPEN_STATUSES, first_response_at__isnull=True, due_at__lt=now)


def ticket_is_overdue(ticket: Ticket, now: datetime | None = None) -> bool:
    """The same test as ticket_overdue_q, on a ticket in hand."""
    now = now or timezone.now()
    return (ticket.status in OPEN_STATUSES and ticket.first_response_at is None and ticket.due_at is not None
            and ticket.due_at < now)


def ticket_escalated_q() -> Q:
    """Open and escalated since its last activity. The escalation event itself moves the last activity to the
    escalation time (escalated_at equals it), so any later event, a person's or a platform's, ends it."""
    return Q(status__in=OPEN_STATUSES, escalated_at__isnull=False, escalated_at__gte=F("last_activity_at"))


def tickets_for_queue(*, status: str | list[str] | None = None, type: str | None = None, store_id: int | None = None,
                      overdue: bool | None = None, owner_id: int | None = None, escalated: bool | None = None,
                      now: datetime | None = None) -> QuerySet[Ticket]:
    """The desk's queue: each filter given narrows it (None leaves it out), newest first.

    ``status`` is one state or a list; ``overdue``/``escalated`` True keeps only those, False leaves them out.
    """
    tickets = Ticket.objects.select_related("store", "order", "owner")
    if status is not None:
        tickets = tickets.filter(status__in=[status] if isinstance(status, str) else list(status))
    if type is not None:
        tickets = tickets.filter(type=type)
    if store_id is not None:
        tickets = tickets.filter(store_id=store_id)
    if owner_id is not None:
        tickets = tickets.filter(owner_id=owner_id)
    if overdue is not None:
        condition = ticket_overdue_q(now or timezone.now())
        tickets = tickets.filter(condition) if overdue else tickets.exclude(condition)
    if escalated is not None:
        tickets = tickets.filter(ticket_escalated_q()) if escalated else tickets.exclude(ticket_escalated_q())
    return tickets


def tickets_escalated_count() -> int:
    """How many open tickets wait for a manager: one COUNT (the status index narrows it to open tickets)."""
    return Ticket.objects.filter(ticket_escalated_q()).count()


def ticket_first_response_seconds(ticket: Ticket) -> int | None:
    """Wall-clock seconds from opening to a person's first answer; None while nobody has answered.
    (An auto-approval is not an answer.)"""
    if ticket.first_response_at is None:
        return None
    return int((ticket.first_response_at - ticket.created_at).total_seconds())


def ticket_cycle_seconds(ticket: Ticket) -> int | None:
    """Wall-clock seconds from opening to the final state (rejected, refunded, replacement shipped, closed)."""
    if ticket.closed_at is None:
        return None
    return int((ticket.closed_at - ticket.created_at).total_seconds())


def ticket_claimed_on_lines(order_line_ids, *, excluding: int | None = None) -> tuple[dict[int, int],
                                                                                      dict[int, Decimal]]:
    """Units and amounts already asked for on these order lines by open or refunded tickets (a rejected or
    closed ticket gives them back), less the ticket ``excluding``. Lines nobody claimed read as 0."""
    units: dict[int, int] = defaultdict(int)
    amounts: dict[int, Decimal] = defaultdict(Decimal)
    query = TicketLine.objects.filter(order_line_id__in=list(order_line_ids),
                                      ticket__status__in=[*OPEN_STATUSES, TicketStatus.REFUNDED])
    if excluding is not None:
        query = query.exclude(ticket_id=excluding)
    for line_id, quantity, amount in query.values_list("order_line_id", "quantity", "requested_amount"):
        units[line_id] += quantity
        amounts[line_id] += amount
    return units, amounts


# An order in one of these went out; when it has no parcels in the hub it was shipped elsewhere (by hand on the
# platform, before the hub), and all its units count as shipped.
_SHIPPED_ORDER_STATES = {OrderStatus.SHIPPED, OrderStatus.DELIVERED, OrderStatus.COMPLETED}


def order_units_shipped(order: Order) -> dict[int, int]:
    """Units of each of the order's lines that left a warehouse (in parcels shipped, delivered or lost after
    shipping); the whole line for an order marked shipped without parcels in the hub."""
    rows = (ShipmentLine.objects.filter(order=order).exclude(shipment__status=ShipmentStatus.CANCELLED)
            .values("order_line_id", "shipment__shipped_at").annotate(units=Sum("quantity")))
    if not rows and order.status in _SHIPPED_ORDER_STATES:
        return {line_id: quantity for line_id, quantity in order.lines.values_list("pk", "quantity")}
    shipped: dict[int, int] = defaultdict(int)
    for row in rows:
        if row["shipment__shipped_at"] is not None:
            shipped[row["order_line_id"]] += row["units"]
    return shipped
