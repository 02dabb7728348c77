"""Receiving returns: the parcel scanned in, each unit graded once with its stock moved (restock, quarantine,
write-off), the ticket graded after its last unit; wrong, extra and repeated scans refused with nothing changed;
the receiving page and the expected returns with their banners in Chinese."""

import threading
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client

from aftersales import returns
from aftersales.models import Grade, ReturnUnit, Ticket, TicketEvent, TicketEventType, TicketStatus
from aftersales.services import TicketLineInput, ticket_return_tracking_set
from fulfillment.models import Carrier, CarrierKind
from inventory.models import MovementKind, StockLevel, StockMovement, Warehouse
from inventory.services import stock_reconcile
from oms.exceptions import ConflictError, NotFoundError, ValidationFailed
from orders.models import OrderStatus
from orders.services import LineInput
from pipeline import returns as flows
from pipeline import tickets
from tests.aftersales.helpers import ship_order
from tests.conftest import PASSWORD
from tests.fulfillment.helpers import parcel_of, ship_parcel

TEA, CUP = "6901234567892", "6901234567908"  # barcodes of TEA-LJ-250G and CUP-CER-350


@pytest.fixture
def quarantine(warehouse) -> Warehouse:
    """The SH site's quarantine warehouse, set as where its worn and broken returns go."""
    qc = Warehouse.objects.create(code="SH-QC", name="上海仓隔离区", priority=90, is_quarantine=True)
    warehouse.quarantine_warehouse = qc
    warehouse.save(update_fields=["quarantine_warehouse"])
    return qc


@pytest.fixture
def carrier(db) -> Carrier:
    return Carrier.objects.create(code="YTO", name="圆通", kind=CarrierKind.MANUAL, cost_first_kg=Decimal("6"),
                                  cost_extra_kg=Decimal("2"))


def awaiting_return(make_order, role_users, *, lines=None, tracking: str = "YT9000000001") -> Ticket:
    """A shipped order (2 × TEA-LJ-250G, 1 × CUP-CER-350) with an approved return of every unit on its way back."""
    order = make_order(**({"lines": lines} if lines else {}))
    ship_parcel(parcel_of(order), tracking=f"YT1{order.pk:09d}")
    order.refresh_from_db()
    assert order.status == OrderStatus.SHIPPED
    agent = role_users["customer_service"]
    ticket = tickets.ticket_open(order_id=order.pk, type="return_refund", reason="quality", actor=agent,
                                 lines=[TicketLineInput(line.pk, line.quantity) for line in order.lines.all()])
    ticket = tickets.ticket_apply_transition(ticket_id=ticket.pk, name="approve", actor=agent)
    assert ticket.status == TicketStatus.AWAITING_RETURN
    return ticket_return_tracking_set(ticket_id=ticket.pk, tracking_number=tracking, actor=agent)


@pytest.fixture
def ticket(make_order, role_users, carrier, quarantine) -> Ticket:
    return awaiting_return(make_order, role_users)


def on_hand(warehouse, sku) -> int:
    return StockLevel.objects.filter(warehouse=warehouse, sku=sku).values_list("on_hand", flat=True).first() or 0


def picture() -> tuple:
    """What a refused scan must leave unchanged."""
    return (ReturnUnit.objects.count(), StockMovement.objects.count(), TicketEvent.objects.count(),
            list(StockLevel.objects.order_by("pk").values_list("on_hand", "reserved")),
            list(Ticket.objects.order_by("pk").values_list("status", flat=True)))


pytestmark = pytest.mark.django_db


def test_a_return_is_received_graded_unit_by_unit_and_its_stock_follows_each_grade(
        ticket, warehouse, quarantine, skus, role_users):
    staff = role_users["warehouse"]
    tea, cup = skus["TEA-LJ-250G"], skus["CUP-CER-350"]
    assert (on_hand(warehouse, tea), on_hand(warehouse, cup)) == (998, 999)

    opened = flows.return_open(scan="YT9000000001", actor=staff)  # the return parcel's tracking number
    assert (opened.pk, opened.status) == (ticket.pk, TicketStatus.RECEIVED)
    assert flows.return_open(scan=ticket.number.lower(), actor=staff).status == TicketStatus.RECEIVED  # rescan

    first = flows.return_unit_receive(ticket_id=ticket.pk, scan=TEA, grade=Grade.RESALABLE,
                                      warehouse_id=warehouse.pk, actor=staff)
    assert (first.graded, first.quantity, first.complete, first.destination) == (1, 2, False, warehouse)
    second = flows.return_unit_receive(ticket_id=ticket.pk, scan="TEA-LJ-250G", grade=Grade.MINOR_WEAR,
                                       warehouse_id=warehouse.pk, actor=staff)
    assert (second.unit.unit_no, second.destination) == (2, quarantine)
    last = flows.return_unit_receive(ticket_id=ticket.pk, scan=CUP, grade=Grade.NOT_RESALABLE,
                                     warehouse_id=warehouse.pk, actor=staff)
    assert last.complete

    assert (on_hand(warehouse, tea), on_hand(warehouse, cup)) == (999, 999)
    assert (on_hand(quarantine, tea), on_hand(quarantine, cup)) == (1, 0)
    reference = f"return:{ticket.number}"
    assert sorted(StockMovement.objects.filter(reference=reference).values_list(
        "warehouse__code", "sku__code", "kind", "on_hand_delta", "reserved_delta", "actor")) == sorted([
            ("SH", "TEA-LJ-250G", MovementKind.RETURN_RESTOCK, 1, 0, staff.pk),
            ("SH-QC", "TEA-LJ-250G", MovementKind.RETURN_IN, 1, 0, staff.pk),
            ("SH-QC", "CUP-CER-350", MovementKind.RETURN_IN, 1, 0, staff.pk),
            ("SH-QC", "CUP-CER-350", MovementKind.WRITE_OFF, -1, 0, staff.pk)])
    assert list(ReturnUnit.objects.order_by("pk").values_list("sku__code", "unit_no", "grade", "warehouse__code",
                                                              "graded_by")) == [
        ("TEA-LJ-250G", 1, "resalable", "SH", staff.pk), ("TEA-LJ-250G", 2, "minor_wear", "SH-QC", staff.pk),
        ("CUP-CER-350", 1, "not_resalable", "SH-QC", staff.pk)]
    assert stock_reconcile() == []

    ticket.refresh_from_db()
    # Graded; what follows (the refund) is pipeline.refunds' and may already have moved it on.
    assert ticket.status in (TicketStatus.GRADED, TicketStatus.REFUNDING, TicketStatus.REFUNDED)
    events = list(TicketEvent.objects.filter(ticket=ticket).order_by("id").values_list("type", "data__transition",
                                                                                          "data__grade"))
    assert events[:3] == [(TicketEventType.CREATED, None, None), (TicketEventType.STATUS_CHANGED, "approve", None),
                          (TicketEventType.STATUS_CHANGED, "await_return", None)]
    received = events.index((TicketEventType.STATUS_CHANGED, "receive", None))
    assert events[received + 1:received + 5] == [
        (TicketEventType.UNIT_GRADED, None, "resalable"), (TicketEventType.UNIT_GRADED, None, "minor_wear"),
        (TicketEventType.UNIT_GRADED, None, "not_resalable"), (TicketEventType.STATUS_CHANGED, "grade", None)]
    assert [e for e in events if e[1] == "receive"] == [(TicketEventType.STATUS_CHANGED, "receive", None)]


def test_grading_a_unit_of_a_return_still_awaiting_receives_it_first(ticket, warehouse, role_users):
    flows.return_unit_receive(ticket_id=ticket.pk, scan=TEA, grade=Grade.RESALABLE, warehouse_id=warehouse.pk,
                              actor=role_users["warehouse"])
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.RECEIVED
    assert TicketEvent.objects.filter(ticket=ticket, data__transition="receive").count() == 1


@pytest.mark.parametrize(("scan", "grade", "unit_no", "line", "code"), [
    ("6901234567915", Grade.RESALABLE, None, None, "wrong_item"),  # GIFT-BAG: not on the ticket
    ("NO-SUCH-CODE", Grade.RESALABLE, None, None, "wrong_item"),
    (TEA, "like_new", None, None, "grade_invalid"),
    ("", Grade.RESALABLE, None, None, "scan_invalid"),
    (TEA, Grade.RESALABLE, 1, None, "unit_out_of_step"),  # a unit number without its line
])
def test_a_wrong_scan_or_a_bad_grade_is_refused_with_its_code_and_changes_nothing(
        ticket, warehouse, role_users, scan, grade, unit_no, line, code):
    flows.return_open(scan=ticket.number, actor=role_users["warehouse"])
    before = picture()
    with pytest.raises(ValidationFailed) as refused:
        flows.return_unit_receive(ticket_id=ticket.pk, scan=scan, grade=grade, warehouse_id=warehouse.pk,
                                  unit_no=unit_no, ticket_line_id=line, actor=role_users["warehouse"])
    assert refused.value.code == code
    assert picture() == before


def test_an_extra_item_and_a_second_submission_of_the_same_unit_are_refused_and_change_nothing(
        ticket, warehouse, role_users):
    staff = role_users["warehouse"]
    cup_line = ticket.lines.get(order_line__sku_code="CUP-CER-350")
    flows.return_unit_receive(ticket_id=ticket.pk, scan=CUP, grade=Grade.RESALABLE, warehouse_id=warehouse.pk,
                              unit_no=1, ticket_line_id=cup_line.pk, actor=staff)
    before = picture()
    with pytest.raises(ConflictError) as refused:  # the same unit sent again (a double tap, a second station)
        flows.return_unit_receive(ticket_id=ticket.pk, scan=CUP, grade=Grade.NOT_RESALABLE,
                                  warehouse_id=warehouse.pk, unit_no=1, ticket_line_id=cup_line.pk, actor=staff)
    assert refused.value.code == "unit_already_graded"
    with pytest.raises(ConflictError) as refused:  # a second cup in the parcel: the ticket has one
        flows.return_unit_receive(ticket_id=ticket.pk, scan=CUP, grade=Grade.RESALABLE, warehouse_id=warehouse.pk,
                                  actor=staff)
    assert refused.value.code == "extra_item"
    with pytest.raises(ConflictError) as refused:
        flows.return_unit_receive(ticket_id=ticket.pk, scan=CUP, grade=Grade.RESALABLE, warehouse_id=warehouse.pk,
                                  unit_no=2, ticket_line_id=cup_line.pk, actor=staff)
    assert refused.value.code == "extra_item"
    with pytest.raises(ConflictError) as refused:
        returns.return_item_match(ticket_id=ticket.pk, scan=CUP)
    assert refused.value.code == "extra_item"
    assert picture() == before
    assert ReturnUnit.objects.filter(ticket_line=cup_line).count() == 1


def test_an_unknown_rma_and_a_ticket_expecting_no_parcel_are_refused(ticket, make_order, role_users, warehouse):
    staff = role_users["warehouse"]
    before = picture()
    with pytest.raises(NotFoundError) as refused:
        flows.return_open(scan="RMA9912999999", actor=staff)
    assert refused.value.code == "return_not_found"
    order = ship_order(make_order())
    requested = tickets.ticket_open(order_id=order.pk, type="return_refund", reason="size",
                                    lines=[TicketLineInput(order.lines.first().pk, 1)])
    before = picture()
    with pytest.raises(ConflictError) as refused:
        flows.return_open(scan=requested.number, actor=staff)
    assert refused.value.code == "return_not_expected"
    with pytest.raises(ConflictError) as refused:
        flows.return_unit_receive(ticket_id=requested.pk, scan=TEA, grade=Grade.RESALABLE, warehouse_id=warehouse.pk,
                                  actor=staff)
    assert refused.value.code == "return_not_expected"
    assert picture() == before


def test_a_site_without_a_quarantine_warehouse_refuses_worn_units_but_restocks_resalable_ones(
        make_order, role_users, carrier, warehouse, skus):
    ticket = awaiting_return(make_order, role_users)
    staff = role_users["warehouse"]
    before = picture()
    with pytest.raises(ConflictError) as refused:
        flows.return_unit_receive(ticket_id=ticket.pk, scan=TEA, grade=Grade.MINOR_WEAR, warehouse_id=warehouse.pk,
                                  actor=staff)
    assert refused.value.code == "quarantine_missing"
    assert "SH" in refused.value.message
    assert picture() == before
    flows.return_unit_receive(ticket_id=ticket.pk, scan=TEA, grade=Grade.RESALABLE, warehouse_id=warehouse.pk,
                              actor=staff)
    assert on_hand(warehouse, skus["TEA-LJ-250G"]) == 999
    qc = Warehouse.objects.create(code="QC", name="隔离区", is_quarantine=True)
    with pytest.raises(ValidationFailed) as refused:  # a quarantine warehouse is not a receiving site
        flows.return_unit_receive(ticket_id=ticket.pk, scan=TEA, grade=Grade.RESALABLE, warehouse_id=qc.pk,
                                  actor=staff)
    assert refused.value.code == "warehouse_invalid"


def test_a_resalable_return_moves_an_order_awaiting_that_stock_on(
        make_order, role_users, carrier, quarantine, warehouse, skus, celery_eager,
        django_capture_on_commit_callbacks):
    cup = skus["CUP-CER-350"]
    worn = awaiting_return(make_order, role_users)  # each shipped order took 1 cup: 998 left
    resalable = awaiting_return(make_order, role_users, tracking="YT9000000002")
    waiting = make_order(lines=[LineInput(sku_code="CUP-CER-350", quantity=999, unit_price=Decimal("1"))])
    assert waiting.status == OrderStatus.AWAITING_STOCK
    with django_capture_on_commit_callbacks(execute=True):
        flows.return_unit_receive(ticket_id=worn.pk, scan=CUP, grade=Grade.MINOR_WEAR, warehouse_id=warehouse.pk,
                                  actor=role_users["warehouse"])
    waiting.refresh_from_db()
    assert waiting.status == OrderStatus.AWAITING_STOCK  # quarantine stock serves nobody
    assert waiting.stock_shortages == [{"sku": "CUP-CER-350", "needed": 999, "available": 998, "short": 1}]
    with django_capture_on_commit_callbacks(execute=True):
        flows.return_unit_receive(ticket_id=resalable.pk, scan=CUP, grade=Grade.RESALABLE,
                                  warehouse_id=warehouse.pk, actor=role_users["warehouse"])
    waiting.refresh_from_db()
    assert waiting.status == OrderStatus.READY and waiting.stock_shortages == []
    assert on_hand(warehouse, cup) == 999 and on_hand(quarantine, cup) == 1
    assert StockLevel.objects.get(warehouse=warehouse, sku=cup).reserved == 999
    assert stock_reconcile() == []


# --- Concurrency: one unit, two stations ---------------------------------------------------------------------

def _race(target, count: int = 2) -> list:
    barrier, outcomes = threading.Barrier(count), []

    def run():
        try:
            barrier.wait()
            outcomes.append(target())
        except (ConflictError, ValidationFailed) as exc:
            outcomes.append(exc.code)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return outcomes


@pytest.mark.django_db(transaction=True)
def test_a_unit_sent_by_two_stations_at_once_is_graded_once(make_order, role_users, carrier, quarantine, warehouse,
                                                            skus):
    ticket = awaiting_return(make_order, role_users)
    staff = role_users["warehouse"]
    flows.return_open(scan=ticket.number, actor=staff)
    cup_line = ticket.lines.get(order_line__sku_code="CUP-CER-350")

    def same_unit():
        return flows.return_unit_receive(ticket_id=ticket.pk, scan=CUP, grade=Grade.RESALABLE,
                                         warehouse_id=warehouse.pk, unit_no=1, ticket_line_id=cup_line.pk, actor=staff)

    outcomes = _race(same_unit, 4)
    assert sorted(o if isinstance(o, str) else "graded" for o in outcomes) == ["graded", "unit_already_graded",
                                                                               "unit_already_graded",
                                                                               "unit_already_graded"]
    tea_scans = _race(lambda: flows.return_unit_receive(ticket_id=ticket.pk, scan=TEA, grade=Grade.RESALABLE,
                                                        warehouse_id=warehouse.pk, actor=staff), 3)
    # The second tea completes the return: the third scan finds it graded, expecting nothing more.
    assert sorted(o if isinstance(o, str) else "graded" for o in tea_scans) == ["graded", "graded",
                                                                                "return_not_expected"]
    assert ReturnUnit.objects.filter(ticket=ticket).count() == 3
    assert on_hand(warehouse, skus["CUP-CER-350"]) == 1000 and on_hand(warehouse, skus["TEA-LJ-250G"]) == 1000
    assert StockMovement.objects.filter(reference=f"return:{ticket.number}").count() == 3
    assert TicketEvent.objects.filter(ticket=ticket, type=TicketEventType.UNIT_GRADED).count() == 3
    assert TicketEvent.objects.filter(ticket=ticket, data__transition="grade").count() == 1
    assert stock_reconcile() == []


# --- Pages ---------------------------------------------------------------------------------------------------

def login(role_users, role: str) -> Client:
    client = Client()
    assert client.login(username=role_users[role].username, password=PASSWORD)
    return client


def test_the_receiving_page_scans_a_return_grades_its_units_and_shows_red_banners_in_chinese(
        ticket, warehouse, quarantine, role_users, skus):
    client = login(role_users, "warehouse")
    page = client.get("/aftersales/receiving/")
    assert page.status_code == 200
    body = page.content.decode()
    assert "退货签收" in body and 'name="code"' in body and f'value="{warehouse.pk}" selected' in body

    unknown = client.post("/aftersales/receiving/scan/", {"code": "RMA0000000000"}, HTTP_HX_REQUEST="true")
    assert unknown.status_code == 404
    assert "fb-bad" in unknown.content.decode() and "没有退货单的售后单号或运单号为 RMA0000000000" in unknown.content.decode()

    opened = client.post("/aftersales/receiving/scan/", {"code": "YT9000000001"})  # no JS: redirect
    assert opened.status_code == 302 and opened["Location"] == f"/aftersales/receiving/{ticket.pk}/"
    body = client.get(opened["Location"]).content.decode()
    assert ticket.number in body and "逐件扫描" in body
    assert Ticket.objects.get(pk=ticket.pk).status == TicketStatus.RECEIVED

    wrong = client.post(f"/aftersales/receiving/{ticket.pk}/scan/", {"code": "6901234567915"}, HTTP_HX_REQUEST="true")
    assert wrong.status_code == 400 and "fb-bad" in wrong.content.decode()
    assert "错货" in wrong.content.decode()

    scanned = client.post(f"/aftersales/receiving/{ticket.pk}/scan/", {"code": CUP}, HTTP_HX_REQUEST="true")
    body = scanned.content.decode()
    assert scanned.status_code == 200 and 'data-grade="resalable"' in body
    assert "完好" in body and "轻微磨损" in body and "不可二次销售" in body
    cup_line = ticket.lines.get(order_line__sku_code="CUP-CER-350")
    grade = {"scan": CUP, "line": cup_line.pk, "unit": 1, "grade": "not_resalable", "warehouse": warehouse.pk}
    graded = client.post(f"/aftersales/receiving/{ticket.pk}/grade/", grade, HTTP_HX_REQUEST="true")
    assert graded.status_code == 200 and "fb-ok" in graded.content.decode()
    again = client.post(f"/aftersales/receiving/{ticket.pk}/grade/", grade, HTTP_HX_REQUEST="true")
    assert again.status_code == 409 and "fb-bad" in again.content.decode() and "已质检" in again.content.decode()
    extra = client.post(f"/aftersales/receiving/{ticket.pk}/scan/", {"code": CUP})
    assert extra.status_code == 302
    assert "多出的商品" in client.get(extra["Location"]).content.decode()
    assert list(ReturnUnit.objects.values_list("grade", "warehouse__code")) == [("not_resalable", "SH-QC")]

    not_mine = dict(grade, warehouse=quarantine.pk, unit=1, scan=TEA,
                    line=ticket.lines.get(order_line__sku_code="TEA-LJ-250G").pk)
    refused = client.post(f"/aftersales/receiving/{ticket.pk}/grade/", not_mine, HTTP_HX_REQUEST="true")
    assert refused.status_code == 400 and ReturnUnit.objects.count() == 1


def test_the_receiving_pages_need_the_receive_permission(ticket, role_users):
    client = login(role_users, "customer_service")
    assert client.get("/aftersales/receiving/").status_code == 403
    assert client.get("/aftersales/returns/expected/").status_code == 403
    assert client.post("/aftersales/receiving/scan/", {"code": ticket.number}).status_code == 403
    assert Ticket.objects.get(pk=ticket.pk).status == TicketStatus.AWAITING_RETURN
    assert Client().get("/aftersales/receiving/").status_code == 302  # to the login page


def test_expected_returns_list_the_parcels_on_their_way_with_the_buyer_masked(ticket, role_users):
    client = login(role_users, "warehouse")
    page = client.get("/aftersales/returns/expected/")
    body = page.content.decode()
    assert page.status_code == 200
    assert ticket.number in body and ticket.order.number in body and "YT9000000001" in body
    assert "TEA-LJ-250G</span> × 2" in body and "王**" in body and "王小贝" not in body
    assert ticket.number in client.get("/aftersales/returns/expected/", {"q": "YT9000000001"}).content.decode()
    assert ticket.number not in client.get("/aftersales/returns/expected/", {"q": "nothing"}).content.decode()
    flows.return_open(scan=ticket.number, actor=role_users["warehouse"])
    assert ticket.number not in client.get("/aftersales/returns/expected/").content.decode()
    manager = login(role_users, "manager").get("/aftersales/returns/expected/").content.decode()
    assert "没有待收的退货" in manager
