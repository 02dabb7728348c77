"""Platform after-sales as tickets: one ticket per platform after-sale id whatever the deliveries and their order,
following the platform's newest state; a request our checks refuse is opened flagged, never lost."""

import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection

from aftersales.models import (
    Refund,
    RefundMethod,
    RefundStatus,
    Ticket,
    TicketEvent,
    TicketEventType,
    TicketStatus,
)
from aftersales.platform import PlatformAfterSale, PlatformAfterSaleLine, ticket_upsert_from_platform
from oms.exceptions import ValidationFailed

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def after_sale(order, status, minutes, *, type="refund_only", quantity=1, amount=None, raw=None, id="AS-1"):
    tea = order.lines.get(line_no=1)
    return PlatformAfterSale(platform_after_sale_id=id, type=type, status=status, raw_status=raw or status.upper(),
                             updated_at=T0 + timedelta(minutes=minutes),
                             lines=[PlatformAfterSaleLine(order_line_id=tea.pk, quantity=quantity)],
                             reason_text="茶叶受潮", refund_amount=amount)


def deliver(order, item):
    return ticket_upsert_from_platform(store_id=order.store_id, order_id=order.pk, after_sale=item)


def event_types(ticket):
    return list(TicketEvent.objects.filter(ticket=ticket).order_by("id").values_list("type", flat=True))


@pytest.mark.django_db
def test_three_deliveries_newest_first_open_one_ticket_that_ends_in_the_latest_state(make_order):
    order = make_order()
    ticket, outcome = deliver(order, after_sale(order, "refunded", 30, amount=Decimal("188.00"), raw="SUCCESS"))
    assert outcome == "created"
    after_first = event_types(ticket)
    for older in (after_sale(order, "open", 0, raw="WAIT_SELLER_AGREE"),
                  after_sale(order, "agreed", 10, raw="WAIT_BUYER_RETURN_GOODS")):
        again, outcome = deliver(order, older)
        assert (again.pk, outcome) == (ticket.pk, "stale")

    ticket = Ticket.objects.get(pk=ticket.pk)
    assert Ticket.objects.filter(order=order).count() == 1
    assert (ticket.status, ticket.platform_status, ticket.platform_updated_at) == (
        TicketStatus.REFUNDED, "SUCCESS", T0 + timedelta(minutes=30))
    assert (ticket.source, ticket.platform_after_sale_id, ticket.requested_amount) == ("platform", "AS-1",
                                                                                     Decimal("188.00"))
    # The platform paid: one confirmed refund through the platform, so nothing is refunded twice later.
    refund = Refund.objects.get(order=order)
    assert (refund.amount, refund.method, refund.status, refund.platform_refund_id, refund.ticket_id) == (
        Decimal("188.00"), RefundMethod.PLATFORM, RefundStatus.CONFIRMED, "as:AS-1", ticket.pk)
    assert event_types(ticket) == after_first == [
        TicketEventType.CREATED, TicketEventType.STATUS_CHANGED, TicketEventType.STATUS_CHANGED,
        TicketEventType.REFUND_RECORDED, TicketEventType.REFUND_CONFIRMED, TicketEventType.STATUS_CHANGED,
        TicketEventType.PLATFORM_UPDATED]
    platform_event = TicketEvent.objects.get(ticket=ticket, type=TicketEventType.PLATFORM_UPDATED)
    assert (platform_event.from_status, platform_event.to_status) == ("requested", "refunded")
    assert platform_event.data["transitions"] == ["approve", "start_refund"]


@pytest.mark.django_db
def test_deliveries_in_order_walk_a_return_and_a_platform_cancellation_closes_it(make_order):
    order = make_order()
    ticket, _outcome = deliver(order, after_sale(order, "open", 0, type="return_refund"))
    assert ticket.status == TicketStatus.REQUESTED
    ticket, outcome = deliver(order, after_sale(order, "returning", 5, type="return_refund"))
    assert (ticket.status, outcome) == (TicketStatus.AWAITING_RETURN, "updated")
    ticket, outcome = deliver(order, after_sale(order, "cancelled", 9, type="return_refund", raw="CLOSED"))
    assert (ticket.status, outcome, ticket.platform_status) == (TicketStatus.CLOSED, "updated", "CLOSED")
    assert ticket.closed_at is not None
    assert event_types(ticket).count(TicketEventType.PLATFORM_UPDATED) == 3
    assert not Refund.objects.filter(order=order).exists()
    # The same delivery again changes nothing.
    _same, outcome = deliver(order, after_sale(order, "cancelled", 9, type="return_refund", raw="CLOSED"))
    assert outcome == "stale" and event_types(ticket).count(TicketEventType.PLATFORM_UPDATED) == 3


@pytest.mark.django_db
def test_a_request_our_checks_refuse_is_opened_flagged_with_the_failed_check(make_order):
    order = make_order()  # the tea line has 2 units
    ticket, outcome = deliver(order, after_sale(order, "open", 0, quantity=3, id="AS-BIG"))
    assert (outcome, ticket.status, ticket.source) == ("created", TicketStatus.REQUESTED, "platform")
    assert [(check["check"], check["ok"]) for check in ticket.checks] == [("platform", False)]
    assert "lines[0].quantity" in ticket.checks[0]["message"]
    line = ticket.lines.get()
    assert (line.quantity, line.requested_amount) == (2, Decimal("376.00"))  # at most what the line has
    created = TicketEvent.objects.get(ticket=ticket, type=TicketEventType.CREATED)
    assert created.data["checks_failed"] == [ticket.checks[0]["message"]]


@pytest.mark.django_db
def test_bad_platform_values_are_refused_with_a_code_and_nothing_is_written(make_order):
    order = make_order()
    bad = after_sale(order, "teleported", 0)
    with pytest.raises(ValidationFailed) as refused:
        deliver(order, bad)
    assert refused.value.code == "platform_after_sale_invalid" and "status" in refused.value.data
    naive = after_sale(order, "open", 0)
    naive.updated_at = naive.updated_at.replace(tzinfo=None)
    with pytest.raises(ValidationFailed):
        deliver(order, naive)
    assert not Ticket.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_two_deliveries_at_once_open_one_ticket(make_order):
    order = make_order()
    barrier, outcomes, errors = threading.Barrier(2), [], []

    def run(item):
        try:
            barrier.wait()
            outcomes.append(deliver(order, item)[1])
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(after_sale(order, status, minutes),))
               for status, minutes in (("open", 0), ("agreed", 5))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(outcomes) in (["created", "updated"], ["created", "stale"])
    ticket = Ticket.objects.get(order=order)
    assert (ticket.status, ticket.platform_updated_at) == (TicketStatus.APPROVED, T0 + timedelta(minutes=5))
    assert TicketEvent.objects.filter(ticket=ticket, type=TicketEventType.CREATED).count() == 1
