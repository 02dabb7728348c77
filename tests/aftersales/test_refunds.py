"""Refunds: never more than was paid (under concurrency too), the pro-rata split over lines, the ticket's refund
after approval or grading, and refusals that change nothing."""

import threading
from decimal import Decimal

import pytest
from django.db import connection

from aftersales import refunds, services
from aftersales.models import (
    Grade,
    Refund,
    RefundLine,
    RefundStatus,
    ReturnUnit,
    Ticket,
    TicketEvent,
    TicketEventType,
    TicketStatus,
)
from aftersales.services import TicketLineInput
from inventory.models import SKU
from oms.exceptions import ConflictError, ValidationFailed
from pipeline import refunds as refund_flow
from pipeline import tickets as ticket_flow
from tests.aftersales.helpers import ship_order


@pytest.fixture
def order(make_order, manual_store):
    """Manual store, paid and shipped: 2 × TEA-LJ-250G at 188.00, 1 × CUP-CER-350 at 39.90 less 5.00, shipping 10.00 → 420.90."""
    return ship_order(make_order(store=manual_store))


def lines_of(order):
    tea, cup = order.lines.order_by("line_no")
    return tea, cup


def approved_ticket(order, *, type="refund_only", reason="quality", lines=None, shipping=Decimal("0")):
    tea, cup = lines_of(order)
    ticket = services.ticket_create(order_id=order.pk, type=type, reason=reason,
                                    lines=lines or [TicketLineInput(tea.pk, 1)], shipping_amount=shipping)
    return services.ticket_transition(ticket_id=ticket.pk, name="approve")


@pytest.mark.django_db
def test_split_spreads_discount_and_shipping_pro_rata_with_the_cent_remainder_on_the_last_line(make_order,
                                                                                                manual_store):
    # 376.00 + 34.90 of goods, 20.00 order discount, 10.00 shipping: 400.90 paid.
    order = make_order(store=manual_store, discount_amount=Decimal("20.00"))
    assert order.paid_amount == Decimal("400.90")
    tea, cup = lines_of(order)
    refund = refunds.refund_record(order_id=order.pk, amount=Decimal("400.90"), method="bank_transfer",
                                   shipping_amount=Decimal("10.00"))
    shares = dict(RefundLine.objects.filter(refund=refund).values_list("order_line_id", "amount"))
    # 400.90 × 376.00 / 410.90 = 366.8493… → 366.84 (cut to the cent); the cup line takes the rest, 34.06.
    assert shares == {tea.pk: Decimal("366.84"), cup.pk: Decimal("34.06")}
    assert sum(shares.values()) == refund.amount
    # Equal weights split evenly; a cent that cannot be split goes to the last line.
    assert refunds.refund_split(order, Decimal("100.00"), {cup.pk: Decimal("1"), tea.pk: Decimal("1")}) == {
        tea.pk: Decimal("50.00"), cup.pk: Decimal("50.00")}
    assert list(refunds.refund_split(order, Decimal("0.01"), {cup.pk: Decimal("5"), tea.pk: Decimal("5")})
                .values()) == [Decimal("0.00"), Decimal("0.01")]


@pytest.mark.django_db
def test_an_amount_above_what_was_paid_is_refused_and_nothing_changes(order):
    refunds.refund_record(order_id=order.pk, amount=Decimal("400.00"), method="cash")
    with pytest.raises(ValidationFailed) as refused:
        refunds.refund_record(order_id=order.pk, amount=Decimal("20.91"), method="cash")
    assert refused.value.code == "refund_exceeds_paid"
    assert refused.value.data == {"amount": ["20.90"]}
    assert Refund.objects.count() == 1 and RefundLine.objects.filter(refund__amount=Decimal("20.91")).count() == 0
    # A failed refund holds no money: its amount can be refunded again.
    first = Refund.objects.get()
    refunds.refund_fail(refund_id=first.pk, error="bank refused")
    again = refunds.refund_record(order_id=order.pk, amount=Decimal("420.90"), method="cash")
    assert again.amount == Decimal("420.90")
    for bad, code in [(Decimal("0"), "refund_amount_invalid"), ("abc", "refund_amount_invalid"),
                      (Decimal("-1"), "refund_amount_invalid")]:
        with pytest.raises(ValidationFailed) as refused:
            refunds.refund_record(order_id=order.pk, amount=bad, method="cash")
        assert refused.value.code == code
    with pytest.raises(ValidationFailed) as refused:
        refunds.refund_record(order_id=order.pk, amount=Decimal("1"), method="gift_card")
    assert refused.value.code == "refund_method_invalid"
    assert Refund.objects.count() == 2


@pytest.mark.django_db
def test_a_ticket_refund_stays_within_its_approved_amount(order):
    ticket = approved_ticket(order)  # 1 × tea: 188.00 approved
    with pytest.raises(ValidationFailed) as refused:
        refunds.refund_record(order_id=order.pk, ticket_id=ticket.pk, amount=Decimal("188.01"), method="cash")
    assert refused.value.code == "refund_exceeds_approved"
    assert not Refund.objects.exists()
    assert not TicketEvent.objects.filter(ticket=ticket, type=TicketEventType.REFUND_RECORDED).exists()
    unapproved = services.ticket_create(order_id=order.pk, type="refund_only", reason="quality",
                                        lines=[TicketLineInput(lines_of(order)[1].pk, 1)])
    with pytest.raises(ConflictError) as refused:
        refunds.refund_record(order_id=order.pk, ticket_id=unapproved.pk, amount=Decimal("1"), method="cash")
    assert refused.value.code == "ticket_not_approved"


@pytest.mark.django_db
def test_an_approved_refund_only_ticket_of_a_manual_store_is_refunded_at_once(order, role_users):
    tea, _cup = lines_of(order)
    ticket = services.ticket_create(order_id=order.pk, type="refund_only", reason="quality",
                                    lines=[TicketLineInput(tea.pk, 1, Decimal("50.00"))])
    ticket = ticket_flow.ticket_apply_transition(ticket_id=ticket.pk, name="approve",
                                                 actor=role_users["customer_service"])
    assert ticket.status == TicketStatus.REFUNDED
    refund = Refund.objects.get(ticket=ticket)
    assert (refund.amount, refund.method, refund.status) == (Decimal("50.00"), "original", RefundStatus.CONFIRMED)
    assert list(RefundLine.objects.filter(refund=refund).values_list("order_line_id", "amount")) == [
        (tea.pk, Decimal("50.00"))]
    types = list(TicketEvent.objects.filter(ticket=ticket).order_by("id").values_list("type", "to_status"))
    assert types == [("created", "requested"), ("status_changed", "approved"), ("status_changed", "refunding"),
                     ("refund_recorded", ""), ("refund_confirmed", ""), ("status_changed", "refunded")]


def graded_return(order, *, reason, grades, warehouse):
    tea, _cup = lines_of(order)
    ticket = approved_ticket(order, type="return_refund", reason=reason,
                             lines=[TicketLineInput(tea.pk, len(grades))])
    for name in ("await_return", "receive", "grade"):
        ticket = services.ticket_transition(ticket_id=ticket.pk, name=name)
    line = ticket.lines.get()
    sku = SKU.objects.get(code="TEA-LJ-250G")
    for unit_no, grade in enumerate(grades, start=1):
        ReturnUnit.objects.create(ticket=ticket, ticket_line=line, unit_no=unit_no, sku=sku, grade=grade,
                                  warehouse=warehouse)
    return ticket


@pytest.mark.django_db
def test_a_not_resalable_unit_on_the_buyers_reason_waits_for_a_person(order, warehouse):
    ticket = graded_return(order, reason="changed_mind", grades=[Grade.RESALABLE, Grade.NOT_RESALABLE],
                           warehouse=warehouse)
    assert refund_flow.ticket_refund_after_grading(ticket_id=ticket.pk) is None
    assert refund_flow.ticket_refund_after_grading(ticket_id=ticket.pk) is None  # the note is written once
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.GRADED
    assert not Refund.objects.exists()
    notes = TicketEvent.objects.filter(ticket=ticket, type=TicketEventType.NOTE_ADDED)
    assert notes.count() == 1 and notes.get().data["refund_held"] == "not_resalable"


@pytest.mark.django_db
@pytest.mark.parametrize(("reason", "grades"), [("damaged", [Grade.NOT_RESALABLE, Grade.NOT_RESALABLE]),
                                                ("size", [Grade.RESALABLE, Grade.MINOR_WEAR])])
def test_a_graded_return_is_refunded_when_the_grades_or_the_reason_allow(order, warehouse, reason, grades):
    ticket = graded_return(order, reason=reason, grades=grades, warehouse=warehouse)
    refund = refund_flow.ticket_refund_after_grading(ticket_id=ticket.pk)
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.REFUNDED
    assert (refund.amount, refund.status) == (Decimal("376.00"), RefundStatus.CONFIRMED)


@pytest.mark.django_db
def test_confirm_and_fail_are_idempotent_and_exclusive(order):
    refund = refunds.refund_record(order_id=order.pk, amount=Decimal("10.00"), method="cash")
    refunds.refund_confirm(refund_id=refund.pk, platform_refund_id="R1")
    again = refunds.refund_confirm(refund_id=refund.pk, platform_refund_id="R2")
    assert (again.status, again.platform_refund_id) == (RefundStatus.CONFIRMED, "R1")
    with pytest.raises(ConflictError) as refused:
        refunds.refund_fail(refund_id=refund.pk, error="late")
    assert refused.value.code == "refund_confirmed"


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_refunds_on_one_order_never_exceed_what_was_paid(make_order, manual_store):
    order = make_order(store=manual_store)  # 420.90 paid
    start = threading.Barrier(2)
    outcomes: list[object] = []

    def refund() -> None:
        try:
            start.wait()
            outcomes.append(refunds.refund_record(order_id=order.pk, amount=Decimal("300.00"), method="cash"))
        except ValidationFailed as exc:
            outcomes.append(exc.code)
        finally:
            connection.close()

    threads = [threading.Thread(target=refund) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcome if isinstance(outcome, str) else "recorded" for outcome in outcomes) == [
        "recorded", "refund_exceeds_paid"]
    assert list(Refund.objects.values_list("amount", flat=True)) == [Decimal("300.00")]
    assert RefundLine.objects.count() == 2
    assert sum(RefundLine.objects.values_list("amount", flat=True)) == Decimal("300.00")
    assert not Ticket.objects.exists()
