"""After-sales tickets: opening one on an order's lines with its checks, the RMA number, the state machine and
its history; bad input is refused with a code and changes nothing."""

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from aftersales import services
from aftersales.models import Ticket, TicketEvent, TicketEventType, TicketStatus
from aftersales.services import TicketLineInput
from fulfillment.models import Shipment
from oms.exceptions import ConflictError, NotFoundError, ValidationFailed
from tests.aftersales.helpers import ship_order

pytestmark = pytest.mark.django_db


@pytest.fixture
def order(make_order):
    """Shipped order: 2 × TEA-LJ-250G at 188.00 and 1 × CUP-CER-350 at 39.90 less 5.00, shipping 10.00."""
    return ship_order(make_order())


def lines_of(order):
    tea, cup = order.lines.order_by("line_no")
    return tea, cup


def test_a_return_on_some_lines_gets_an_rma_number_its_amounts_and_a_created_event(order, role_users):
    tea, cup = lines_of(order)
    ticket = services.ticket_create(
        order_id=order.pk, type="return_refund", reason="damaged",
        lines=[TicketLineInput(tea.pk, 1), TicketLineInput(cup.pk, 1)], shipping_amount=Decimal("10.00"),
        actor=role_users["customer_service"])

    assert re.fullmatch(r"RMA\d{4}\d{6}", ticket.number)
    assert ticket.status == TicketStatus.REQUESTED
    assert ticket.requested_amount == Decimal("222.90")  # 188.00 + (39.90 - 5.00)
    assert ticket.requested_shipping == Decimal("10.00")
    assert ticket.due_at is not None and ticket.first_response_at is None
    assert [(check["check"], check["ok"]) for check in ticket.checks] == [("window", True), ("line", True),
                                                                          ("line", True)]
    event = TicketEvent.objects.get(ticket=ticket)
    assert (event.type, event.to_status, event.actor) == (TicketEventType.CREATED, "requested",
                                                          role_users["customer_service"])
    second = services.ticket_create(order_id=order.pk, type="refund_only", reason="quality",
                                    lines=[TicketLineInput(tea.pk, 1, Decimal("20.00"))])
    assert second.number != ticket.number


@pytest.mark.parametrize(("lines", "extra", "field"), [
    (lambda tea, cup: [TicketLineInput(tea.pk, 3)], {}, "lines[0].quantity"),
    (lambda tea, cup: [TicketLineInput(tea.pk, 0)], {}, "lines[0].quantity"),
    (lambda tea, cup: [TicketLineInput(cup.pk, 1, Decimal("34.91"))], {}, "lines[0].amount"),
    (lambda tea, cup: [TicketLineInput(cup.pk, 1, Decimal("-1"))], {}, "lines[0].amount"),
    (lambda tea, cup: [TicketLineInput(tea.pk, 1)], {"shipping_amount": Decimal("10.01")}, "shipping_amount"),
    (lambda tea, cup: [], {}, "lines"),
    (lambda tea, cup: [TicketLineInput(tea.pk, 1), TicketLineInput(tea.pk, 1)], {}, "lines"),
    (lambda tea, cup: [TicketLineInput(tea.pk, 1)], {"reason": "other"}, "reason_text"),
    (lambda tea, cup: [TicketLineInput(tea.pk, 1)], {"type": "steal"}, "type"),
])
def test_bad_requests_are_refused_per_field_and_write_nothing(order, lines, extra, field):
    tea, cup = lines_of(order)
    arguments = {"order_id": order.pk, "type": "return_refund", "reason": "damaged", "lines": lines(tea, cup),
                 **extra}
    with pytest.raises(ValidationFailed) as refused:
        services.ticket_create(**arguments)
    assert refused.value.code == "ticket_invalid"
    assert field in refused.value.data
    assert not Ticket.objects.exists() and not TicketEvent.objects.exists()


def test_units_and_amounts_under_another_ticket_are_not_asked_for_twice(order, make_order):
    tea, cup = lines_of(order)
    services.ticket_create(order_id=order.pk, type="return_refund", reason="size", lines=[TicketLineInput(tea.pk, 2)])
    with pytest.raises(ValidationFailed) as refused:
        services.ticket_create(order_id=order.pk, type="refund_only", reason="size",
                               lines=[TicketLineInput(tea.pk, 1)])
    assert "lines[0].quantity" in refused.value.data
    other = make_order()
    with pytest.raises(ValidationFailed) as refused:
        services.ticket_create(order_id=order.pk, type="refund_only", reason="size",
                               lines=[TicketLineInput(other.lines.first().pk, 1)])
    assert "lines[0].order_line_id" in refused.value.data
    with pytest.raises(NotFoundError):
        services.ticket_create(order_id=999999, type="refund_only", reason="size", lines=[TicketLineInput(1, 1)])


def test_a_return_moves_through_its_states_with_one_event_each_and_refuses_a_skipped_step(order, role_users):
    tea, _cup = lines_of(order)
    ticket = services.ticket_create(order_id=order.pk, type="return_refund", reason="damaged",
                                    lines=[TicketLineInput(tea.pk, 1)])
    agent = role_users["customer_service"]
    with pytest.raises(ConflictError) as refused:
        services.ticket_transition(ticket_id=ticket.pk, name="confirm_refund", actor=agent)
    assert refused.value.code == "transition_not_allowed"
    with pytest.raises(ValidationFailed) as refused:
        services.ticket_transition(ticket_id=ticket.pk, name="approve", actor=agent, approved_amount=Decimal("188.01"))
    assert refused.value.code == "amount_out_of_range"

    steps = ["approve", "await_return", "receive", "grade", "start_refund", "confirm_refund"]
    for step in steps:
        ticket = services.ticket_transition(ticket_id=ticket.pk, name=step, actor=agent, reason=f"{step} ok")
    assert ticket.status == TicketStatus.REFUNDED
    assert ticket.approved_amount == Decimal("188.00")
    assert ticket.first_response_at is not None and ticket.closed_at is not None
    history = list(TicketEvent.objects.filter(ticket=ticket).order_by("id").values_list("type", "data__transition"))
    assert history == [(TicketEventType.CREATED, None)] + [(TicketEventType.STATUS_CHANGED, s) for s in steps]
    with pytest.raises(ValidationFailed) as refused:
        services.ticket_transition(ticket_id=ticket.pk, name="delete_everything", actor=agent)
    assert refused.value.code == "unknown_transition"


def delivered(order, days_ago: int) -> None:
    Shipment.objects.filter(lines__order=order).update(delivered_at=timezone.now() - timedelta(days=days_ago))


def test_a_return_after_the_stores_window_is_refused_and_a_refund_only_is_not(order):
    tea, _cup = lines_of(order)
    delivered(order, days_ago=8)
    with pytest.raises(ValidationFailed) as refused:
        services.ticket_create(order_id=order.pk, type="return_refund", reason="size",
                               lines=[TicketLineInput(tea.pk, 1)])
    assert "order" in refused.value.data and not Ticket.objects.exists()
    refund = services.ticket_create(order_id=order.pk, type="refund_only", reason="quality",
                                    lines=[TicketLineInput(tea.pk, 1, Decimal("30.00"))])
    assert refund.checks[0] == {"check": "window", "ok": True, "message": "不受退货期限限制。"}

    order.store.return_window_days = 15
    order.store.save(update_fields=["return_window_days"])
    inside = services.ticket_create(order_id=order.pk, type="exchange", reason="size",
                                    lines=[TicketLineInput(tea.pk, 1)])
    assert inside.checks[0]["check"] == "window" and inside.checks[0]["ok"]


def test_an_item_that_cannot_be_sent_back_may_be_refunded_but_not_returned(order):
    tea, _cup = lines_of(order)
    tea.sku.returnable = False
    tea.sku.save(update_fields=["returnable"])
    with pytest.raises(ValidationFailed) as refused:
        services.ticket_create(order_id=order.pk, type="return_refund", reason="quality",
                               lines=[TicketLineInput(tea.pk, 1)])
    assert "lines[0].order_line_id" in refused.value.data
    assert services.ticket_create(order_id=order.pk, type="refund_only", reason="quality",
                                  lines=[TicketLineInput(tea.pk, 1)]).status == TicketStatus.REQUESTED


@pytest.mark.parametrize("amount", ["NaN", "Infinity", "1e999999", "abc", "-0.01"])
def test_an_amount_that_is_not_a_finite_number_is_a_field_error_not_a_crash(order, amount):
    tea, _cup = lines_of(order)
    with pytest.raises(ValidationFailed) as refused:
        services.ticket_create(order_id=order.pk, type="refund_only", reason="quality",
                               lines=[TicketLineInput(tea.pk, 1, amount)])
    assert "lines[0].amount" in refused.value.data
    with pytest.raises(ValidationFailed) as refused:
        services.ticket_create(order_id=order.pk, type="refund_only", reason="quality",
                               lines=[TicketLineInput(tea.pk, 1)], shipping_amount=amount)
    assert "shipping_amount" in refused.value.data
    assert not Ticket.objects.exists()


def test_a_partial_approval_is_spread_over_the_lines_in_proportion_with_shipping_taking_its_share(order):
    tea, cup = lines_of(order)
    ticket = services.ticket_create(order_id=order.pk, type="refund_only", reason="quality",
                                    lines=[TicketLineInput(tea.pk, 1), TicketLineInput(cup.pk, 1)],
                                    shipping_amount=Decimal("10.00"))
    services.ticket_transition(ticket_id=ticket.pk, name="approve", approved_amount=Decimal("116.45"))  # half
    approved = list(ticket.lines.order_by("pk").values_list("requested_amount", "approved_amount"))
    # Goods 111.45 of the 116.45 (222.90 of 232.90 asked), split 188.00 : 34.90; the other 5.00 is shipping.
    assert approved == [(Decimal("188.00"), Decimal("94.00")), (Decimal("34.90"), Decimal("17.45"))]
