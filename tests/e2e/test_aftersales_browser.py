"""After-sales in a real browser: customer service opens a return from the order page and approves it, the
warehouse scans it in and grades one unit resalable and one not (green banners, a red one for an extra item),
and the refund, the ticket and the stock ledger show the outcome; the receiving station fits a phone."""

from decimal import Decimal

import pytest

from aftersales.models import (
    Grade,
    RefundMethod,
    RefundStatus,
    ReturnUnit,
    Ticket,
    TicketEvent,
    TicketEventType,
    TicketStatus,
)
from aftersales.services import TicketLineInput
from fulfillment.models import Carrier, CarrierKind
from inventory.models import MovementKind, StockLevel, StockMovement, Warehouse
from inventory.services import stock_reconcile
from orders.models import OrderStatus
from pipeline import shipping, tickets
from tests.conftest import PASSWORD
from tests.e2e.browser import BROWSER_MARKS, sync_api
from tests.e2e.test_order_page_phone import OVERFLOWING
from tests.fulfillment.helpers import parcel_of, ship_parcel

pytestmark = BROWSER_MARKS

TEA, CUP = "6901234567892", "6901234567908"  # barcodes of TEA-LJ-250G and CUP-CER-350 (tests/conftest.py)


@pytest.fixture
def quarantine(warehouse) -> Warehouse:
    qc = Warehouse.objects.create(code="SH-QC", name="上海退货隔离仓", priority=90, is_quarantine=True)
    warehouse.quarantine_warehouse = qc
    warehouse.save(update_fields=["quarantine_warehouse"])
    return qc


@pytest.fixture
def delivered_order(make_order, manual_store, quarantine):
    """A WeChat (manual store) order, 2 × TEA-LJ-250G at 188.00 and 1 × CUP-CER-350, shipped from SH and
    delivered: a refund on it is paid outside the hub and confirmed at once."""
    Carrier.objects.create(code="YTO", name="圆通", kind=CarrierKind.MANUAL, cost_first_kg=Decimal("6"),
                           cost_extra_kg=Decimal("2"))
    order = make_order(store=manual_store, platform_order_id="WX-RETURN-1")
    parcel = ship_parcel(parcel_of(order), tracking="YT1000000077")
    shipping.shipment_deliver(shipment_id=parcel.pk)
    order.refresh_from_db()
    assert order.status == OrderStatus.DELIVERED
    return order


def log_in(page, live_server, user, next_url: str) -> None:
    """Log in as ``user`` in a fresh session (the previous user's cookies dropped, English kept)."""
    page.context.clear_cookies()
    page.context.add_cookies([{"name": "django_language", "value": "en", "url": live_server.url}])
    page.goto(f"{live_server.url}/accounts/login/?next={next_url}")
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"**{next_url}")


def scan(page, code: str) -> None:
    """A scanner types the code and presses Enter."""
    field = page.locator("#scan-code")
    field.fill(code)
    field.press("Enter")


def on_hand(warehouse, sku) -> int:
    return StockLevel.objects.filter(warehouse=warehouse, sku=sku).values_list("on_hand", flat=True).first() or 0


def test_a_return_opened_on_the_order_page_is_received_graded_and_refunded(
        live_server, browser_page, role_users, delivered_order, warehouse, quarantine, skus):
    page, expect = browser_page, sync_api.expect
    order, tea = delivered_order, skus["TEA-LJ-250G"]
    tea_line, cup_line = order.lines.order_by("line_no")
    movements_before = StockMovement.objects.count()

    # Customer service: 新建售后 on the order page, the order's lines pre-filled; the buyer keeps the mug.
    log_in(page, live_server, role_users["customer_service"], f"/orders/{order.pk}/")
    page.locator("[data-action=new-ticket]").click()
    page.wait_for_url(f"**/aftersales/new/{order.pk}/")
    expect(page.locator(f"#id_line_{tea_line.pk}_quantity")).to_have_value("2")
    expect(page.locator("tr[data-line='1'] td[data-col=shipped]")).to_have_text("2")  # both delivered
    expect(page.locator("tr[data-line='1'] td[data-col=left]")).to_have_text("2")  # and none under a ticket
    expect(page.locator("tr[data-line='1'] td:nth-child(7)")).to_have_text("376.00")  # paid for the 2 units
    page.select_option("#id_type", "return_refund")
    page.select_option("#id_reason", "quality")
    page.fill("#id_reason_text", "茶叶受潮结块")
    page.fill(f"#id_line_{cup_line.pk}_quantity", "0")
    page.locator("[data-action=open-ticket]").click()

    ticket = Ticket.objects.get(order=order)
    page.wait_for_url(f"**/aftersales/{ticket.pk}/")
    expect(page.locator(".messages")).to_contain_text(f"After-sales ticket {ticket.number} opened.")
    expect(page.locator("h1 [data-status]")).to_have_attribute("data-status", "requested")
    assert (ticket.type, ticket.reason, ticket.requested_amount) == ("return_refund", "quality", Decimal("376.00"))
    assert list(ticket.lines.values_list("order_line_id", "quantity", "requested_amount")) == [
        (tea_line.pk, 2, Decimal("376.00"))]

    # Approve on the ticket page: the return is now expected at the warehouse.
    expect(page.locator("input[name=approved_amount]")).to_have_value("376.00")
    page.locator("[data-transition=approve]").click()
    expect(page.locator("h1 [data-status]")).to_have_attribute("data-status", "awaiting_return")
    expect(page.locator("[data-field=approved]")).to_have_text("376.00 CNY")
    ticket.refresh_from_db()
    assert (ticket.status, ticket.approved_amount) == (TicketStatus.AWAITING_RETURN, Decimal("376.00"))
    assert ticket.first_response_at is not None
    assert StockMovement.objects.count() == movements_before  # nothing moves before the parcel is here

    # The warehouse: scan the RMA number, then each unit and its grade.
    staff = role_users["warehouse"]
    log_in(page, live_server, staff, "/aftersales/receiving/")
    feedback = page.locator("#scan-feedback")
    scan(page, ticket.number.lower())  # a scanner in lower case finds it too
    expect(page.locator(".parcel h2")).to_contain_text(ticket.number)
    expect(feedback).to_contain_text(f"Return {ticket.number} (order {order.number}): scan each item, then "
                                     "choose its grade.")
    expect(page.locator(".progress-line strong")).to_have_text("0 of 2 units graded")
    expect(page.locator("#scan-code")).to_be_focused()

    scan(page, CUP)  # on the order, but the buyer kept it: not in this return
    expect(feedback).to_have_attribute("data-level", "bad")
    expect(feedback).to_contain_text(f"Wrong item: {CUP} is not on return {ticket.number}.")
    expect(page.locator("[data-grade]")).to_have_count(0)

    scan(page, TEA)
    expect(feedback).to_contain_text("TEA-LJ-250G, unit 1 of 2: choose its grade.")
    page.locator("[data-grade=resalable]").click()
    expect(feedback).to_have_attribute("data-level", "ok")
    expect(feedback).to_contain_text("TEA-LJ-250G unit 1: Resalable → 上海仓. 1 of 2 graded.")
    expect(page.locator(".progress-line strong")).to_have_attribute("data-graded", "1")

    scan(page, TEA)
    expect(feedback).to_contain_text("TEA-LJ-250G, unit 2 of 2: choose its grade.")
    page.locator("[data-grade=not_resalable]").click()
    expect(feedback).to_have_attribute("data-level", "ok")
    expect(feedback).to_contain_text(f"TEA-LJ-250G unit 2: Not resalable → 上海退货隔离仓. 2 of 2 graded. Every "
                                     f"unit is graded: return {ticket.number} is now Refunded.")
    expect(page.locator(".progress-line strong")).to_have_attribute("data-graded", "2")

    scan(page, TEA)  # a third tea in the parcel: both units are graded already
    expect(feedback).to_have_attribute("data-level", "bad")
    expect(feedback).to_contain_text(f"Extra item: all 2 of TEA-LJ-250G on return {ticket.number} are already "
                                     "graded.")
    expect(page.locator("[data-grade]")).to_have_count(0)

    assert list(ReturnUnit.objects.filter(ticket=ticket).order_by("unit_no").values_list(
        "sku__code", "unit_no", "grade", "warehouse__code", "graded_by")) == [
        ("TEA-LJ-250G", 1, Grade.RESALABLE, "SH", staff.pk),
        ("TEA-LJ-250G", 2, Grade.NOT_RESALABLE, "SH-QC", staff.pk)]
    reference = f"return:{ticket.number}"
    assert list(StockMovement.objects.filter(reference=reference).order_by("pk").values_list(
        "warehouse__code", "kind", "sku__code", "on_hand_delta", "reserved_delta")) == [
        ("SH", MovementKind.RETURN_RESTOCK, "TEA-LJ-250G", 1, 0),
        ("SH-QC", MovementKind.RETURN_IN, "TEA-LJ-250G", 1, 0),
        ("SH-QC", MovementKind.WRITE_OFF, "TEA-LJ-250G", -1, 0)]
    assert StockMovement.objects.count() == movements_before + 3  # the refused scans moved nothing
    assert (on_hand(warehouse, tea), on_hand(quarantine, tea)) == (1000 - 2 + 1, 0)
    assert stock_reconcile() == []

    # The SKU's stock ledger shows the three rows.
    page.goto(f"{live_server.url}/inventory/sku/{tea.pk}/")
    for kind, code, delta, label in [(MovementKind.RETURN_RESTOCK, "SH", "+1", "Return restocked"),
                                     (MovementKind.RETURN_IN, "SH-QC", "+1", "Return into quarantine"),
                                     (MovementKind.WRITE_OFF, "SH-QC", "-1", "Write-off")]:
        row = page.locator(f"table.ledger tr[data-kind={kind}]")
        expect(row).to_have_count(1)
        expect(row.locator("td").nth(1)).to_have_text(code)
        expect(row.locator("td").nth(2)).to_have_text(label)
        expect(row.locator("td").nth(3)).to_have_text(delta)
        expect(row.locator("td").nth(5)).to_have_text(reference)
        expect(row.locator("td").nth(8)).to_have_text(staff.username)

    # Customer service sees the refund recorded and paid out (a manual store refunds at once) and the grades.
    log_in(page, live_server, role_users["customer_service"], f"/aftersales/{ticket.pk}/")
    expect(page.locator("h1 [data-status]")).to_have_attribute("data-status", "refunded")
    expect(page.locator("[data-field=refunded]")).to_have_text("376.00 CNY")
    refund_row = page.locator("[data-section=refunds] tbody tr")
    expect(refund_row).to_have_count(1)
    expect(refund_row.locator("td").nth(1)).to_have_text("376.00 CNY")
    expect(refund_row.locator("td").nth(3)).to_have_text("To the original payment")
    expect(refund_row.locator("td").nth(4)).to_have_text("Paid out")
    units = page.locator("[data-section=units] tbody tr")
    expect(units).to_have_count(2)
    expect(units.nth(0).locator("td").nth(3)).to_have_text("Resalable")
    expect(units.nth(1).locator("td").nth(3)).to_have_text("Not resalable")
    expect(units.nth(1).locator("td").nth(4)).to_have_text("上海退货隔离仓")

    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.REFUNDED and ticket.closed_at is not None
    assert [(r.amount, r.shipping_amount, r.method, r.status) for r in ticket.refunds.all()] == [
        (Decimal("376.00"), Decimal("0.00"), RefundMethod.ORIGINAL, RefundStatus.CONFIRMED)]
    assert list(ticket.refunds.get().lines.values_list("order_line_id", "amount")) == [
        (tea_line.pk, Decimal("376.00"))]
    assert TicketEvent.objects.filter(ticket=ticket, type=TicketEventType.UNIT_GRADED).count() == 2
    assert list(TicketEvent.objects.filter(ticket=ticket, type=TicketEventType.STATUS_CHANGED).order_by("pk")
                .values_list("to_status", flat=True)) == [
        "approved", "awaiting_return", "received", "graded", "refunding", "refunded"]


def test_the_receiving_station_fits_a_390px_phone(live_server, browser_page, role_users, delivered_order,
                                                  quarantine):
    agent = role_users["customer_service"]
    tea_line = delivered_order.lines.order_by("line_no").first()
    ticket = tickets.ticket_open(order_id=delivered_order.pk, type="return_refund", reason="damaged", actor=agent,
                                 lines=[TicketLineInput(tea_line.pk, 2)], return_tracking_number="SF1234567890")
    ticket = tickets.ticket_apply_transition(ticket_id=ticket.pk, name="approve", actor=agent)
    assert ticket.status == TicketStatus.AWAITING_RETURN
    page, expect = browser_page, sync_api.expect
    page.set_viewport_size({"width": 390, "height": 844})
    log_in(page, live_server, role_users["warehouse"], "/aftersales/receiving/")

    scan(page, "SF1234567890")  # the return parcel's tracking number finds it
    expect(page.locator(".parcel h2")).to_contain_text(ticket.number)
    scan(page, TEA)
    buttons = page.locator("[data-grade]")
    expect(buttons).to_have_count(3)
    width = page.evaluate("() => window.innerWidth")
    assert width == 390
    for index in range(3):
        expect(buttons.nth(index)).to_be_visible()
        box = buttons.nth(index).bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width, (index, box)
        assert box["height"] >= 40, (index, box)  # big enough for a thumb with gloves
    scan_box = page.locator("#scan-code").bounding_box()
    assert scan_box["x"] >= 0 and scan_box["x"] + scan_box["width"] <= width, scan_box
    sizes = page.evaluate("() => [document.scrollingElement.scrollWidth, window.innerWidth]")
    assert sizes[0] <= sizes[1], "\n".join(page.evaluate(OVERFLOWING))

    buttons.nth(0).click()  # the station still grades on the phone
    expect(page.locator("#scan-feedback")).to_have_attribute("data-level", "ok")
    expect(page.locator(".progress-line strong")).to_have_attribute("data-graded", "1")
    sizes = page.evaluate("() => [document.scrollingElement.scrollWidth, window.innerWidth]")
    assert sizes[0] <= sizes[1], "\n".join(page.evaluate(OVERFLOWING))
    assert ReturnUnit.objects.filter(ticket=ticket).count() == 1
