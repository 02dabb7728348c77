"""Replacement orders of exchanges and resends: made once, reserved, routed, on the kanban, shipped, and kept
away from the platform's shipment confirmation, the completeness check and the payment figures."""

import re
import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from aftersales import services as ticket_services
from aftersales.models import Ticket, TicketEvent, TicketEventType, TicketStatus
from aftersales.services import TicketLineInput
from connectors import services as connector_services
from connectors.completeness import sync_check_window
from connectors.models import ChannelSyncState, ShipmentPush
from connectors.sandbox.shopify import ShopifySandbox
from finance.models import PaymentSnapshot
from finance.selectors import payment_daily_totals
from fulfillment.models import Carrier, CarrierKind, ShipmentStatus
from inventory.models import SKU, Reservation, StockLevel
from oms.exceptions import ConflictError, ValidationFailed
from orders.models import Order, OrderEvent, OrderEventType, OrderStatus, Platform, Priority
from pipeline import channel, returns, tickets
from pipeline.replacements import ReplacementLineInput, ticket_replacement_create
from tests.aftersales.helpers import ship_order
from tests.conftest import PASSWORD, channel_store
from tests.fulfillment.helpers import parcel_of, ship_parcel

SS = ShipmentStatus


@pytest.fixture
def carrier(db) -> Carrier:
    return Carrier.objects.create(code="YTO", name="圆通", kind=CarrierKind.MANUAL, cost_first_kg=Decimal("6"),
                                  cost_extra_kg=Decimal("2"))


@pytest.fixture
def shipped(make_order, carrier):
    """A Taobao order (2 × TEA-LJ-250G, 1 × CUP-CER-350) shipped in one parcel and confirmed to the platform."""
    order = make_order()
    ship_parcel(parcel_of(order), tracking="YT1000000001")
    order.refresh_from_db()
    assert order.status == OrderStatus.SHIPPED
    return order


def tea_line(order):
    return order.lines.get(sku_code="TEA-LJ-250G")


def login(role_users, role: str) -> Client:
    client = Client()
    assert client.login(username=role_users[role].username, password=PASSWORD)
    client.cookies["django_language"] = "en"
    return client


def open_ticket(order, type_: str, reason: str, quantity: int = 1, actor=None) -> Ticket:
    return tickets.ticket_open(order_id=order.pk, type=type_, reason=reason,
                               lines=[TicketLineInput(tea_line(order).pk, quantity)], actor=actor)


def graded_exchange(order, sku_code: str = "TEA-LJ-250G") -> Ticket:
    """An exchange of one unit moved to graded through the services alone (no follow-up): no replacement yet."""
    ticket = ticket_services.ticket_create(order_id=order.pk, type="exchange", reason="size",
                                           lines=[TicketLineInput(order.lines.get(sku_code=sku_code).pk, 1)])
    for name in ("approve", "await_return", "receive", "grade"):
        ticket = ticket_services.ticket_transition(ticket_id=ticket.pk, name=name)
    return ticket


def on_hand(sku_code: str) -> tuple[int, int]:
    level = StockLevel.objects.get(sku__code=sku_code, warehouse__code="SH")
    return level.on_hand, level.reserved


def cards_in(html: str, status: str) -> list[str]:
    column = re.search(rf'<section class="kanban-column[^"]*" data-status="{status}".*?</section>', html, re.S)
    assert column, status
    return re.findall(r'<div class="kc-orders">([^<]+)</div>', column.group(0))


@pytest.mark.django_db
def test_an_exchange_gets_its_replacement_once_graded_which_is_on_the_kanban_and_ships(
        shipped, role_users, warehouse):
    cs = role_users["customer_service"]
    assert ShipmentPush.objects.filter(order=shipped).count() == 1  # the original was confirmed to Taobao
    tea_before = on_hand("TEA-LJ-250G")

    ticket = open_ticket(shipped, "exchange", "size", actor=cs)
    ticket = tickets.ticket_apply_transition(ticket_id=ticket.pk, name="approve", actor=cs)
    assert ticket.status == TicketStatus.AWAITING_RETURN and ticket.replacement_order_id is None
    # The warehouse receives the parcel and grades the unit at the receiving station.
    ticket = returns.return_open(scan=ticket.number, actor=role_users["warehouse"])
    assert ticket.status == TicketStatus.RECEIVED and ticket.replacement_order_id is None  # nothing before grading
    assert not Order.objects.filter(replaces=shipped).exists()
    returns.return_unit_receive(ticket_id=ticket.pk, scan="TEA-LJ-250G", grade="resalable",
                                warehouse_id=warehouse.pk, actor=role_users["warehouse"])
    ticket = Ticket.objects.get(pk=ticket.pk)

    assert ticket.status == TicketStatus.GRADED
    replacement = ticket.replacement_order
    assert replacement.replaces_id == shipped.pk
    assert replacement.number == f"{shipped.number}-R1"
    assert replacement.platform_order_id == f"REPL-{ticket.number}"
    assert (replacement.store_id, replacement.status, replacement.priority) == (
        shipped.store_id, OrderStatus.READY, Priority.HIGH)
    assert (replacement.goods_amount, replacement.total_amount, replacement.paid_amount) == (
        Decimal("0.00"), Decimal("0.00"), Decimal("0.00"))
    assert [(line.sku_code, line.quantity, line.unit_price, line.platform_line_id)
            for line in replacement.lines.all()] == [("TEA-LJ-250G", 1, Decimal("0.00"), "")]
    fields = ("buyer_id", "buyer_name", "receiver_name", "receiver_phone", "receiver_province", "receiver_city",
              "receiver_district", "receiver_address", "receiver_ciphertext", "currency")
    assert [getattr(replacement, f) for f in fields] == [getattr(shipped, f) for f in fields]
    reservation = Reservation.objects.get(order=replacement)
    assert (reservation.warehouse_id, reservation.quantity, reservation.status) == (warehouse.pk, 1, "active")
    assert on_hand("TEA-LJ-250G") == (tea_before[0] + 1, tea_before[1] + 1)  # the returned unit back, one held
    parcel = parcel_of(replacement)
    assert (parcel.warehouse_id, parcel.status, parcel.order_numbers) == (warehouse.pk, SS.TO_PICK,
                                                                          replacement.number)
    # Nothing was paid: no payment snapshot, so the payment figures count only the original.
    assert not PaymentSnapshot.objects.filter(order=replacement).exists()
    assert [(row["orders"], row["amount"]) for row in payment_daily_totals()] == [(1, shipped.paid_amount)]

    created = TicketEvent.objects.get(ticket=ticket, type=TicketEventType.REPLACEMENT_CREATED)
    assert (created.data["order"], created.data["order_id"], created.data["lines"]) == (
        replacement.number, replacement.pk, [{"sku": "TEA-LJ-250G", "quantity": 1}])
    linked = {event.order_id: event.data for event in OrderEvent.objects.filter(
        type=OrderEventType.UPDATED, data__has_key="replacement")}
    assert {order_id: data["replacement"] for order_id, data in linked.items()} == {
        shipped.pk: "original", replacement.pk: "replacement"}
    assert all(data["ticket"] == ticket.number and data["replacement_order"] == replacement.number
               for data in linked.values())

    # The warehouse sees it on its kanban, to be picked.
    html = login(role_users, "warehouse").get(f"/fulfillment/kanban/{warehouse.code}/").content.decode()
    assert cards_in(html, SS.TO_PICK) == [replacement.number]

    shipped_parcel = ship_parcel(parcel, tracking="YT1000000002")
    assert shipped_parcel.status == SS.SHIPPED
    replacement.refresh_from_db()
    ticket.refresh_from_db()
    assert replacement.status == OrderStatus.SHIPPED
    assert ticket.status == TicketStatus.REPLACEMENT_SHIPPED and ticket.closed_at is not None
    moved = TicketEvent.objects.filter(ticket=ticket, type=TicketEventType.STATUS_CHANGED).last()
    assert (moved.from_status, moved.to_status, moved.data["transition"]) == (
        "graded", "replacement_shipped", "ship_replacement")
    assert "YT1000000002" in moved.reason
    assert on_hand("TEA-LJ-250G") == (tea_before[0], tea_before[1])  # one back in, one out
    # Never confirmed to the platform as a shipment of the original: the only push is the original's own.
    assert list(ShipmentPush.objects.values_list("order_id", "tracking_number")) == [(shipped.pk, "YT1000000001")]
    assert not OrderEvent.objects.filter(order=replacement, type=OrderEventType.SHIPMENT_PUSH).exists()


@pytest.mark.django_db
def test_a_resend_gets_its_replacement_at_approval_once_and_a_manual_approval_store_does_not_hold_it(
        shipped, role_users, taobao_store):
    taobao_store.auto_approve = False  # a person approves this store's orders; the ticket's approval counts
    taobao_store.save(update_fields=["auto_approve"])
    cs = role_users["customer_service"]
    ticket = open_ticket(shipped, "resend", "lost_in_transit", quantity=2, actor=cs)
    assert ticket.status == TicketStatus.REQUESTED and ticket.replacement_order_id is None
    ticket = tickets.ticket_apply_transition(ticket_id=ticket.pk, name="approve", actor=cs)

    assert ticket.status == TicketStatus.APPROVED
    replacement = ticket.replacement_order
    assert replacement.status == OrderStatus.READY and parcel_of(replacement).status == SS.TO_PICK
    assert [(line.sku_code, line.quantity) for line in replacement.lines.all()] == [("TEA-LJ-250G", 2)]

    again = ticket_replacement_create(ticket_id=ticket.pk, actor=cs)
    assert again.pk == replacement.pk
    assert Order.objects.filter(replaces=shipped).count() == 1
    assert TicketEvent.objects.filter(type=TicketEventType.REPLACEMENT_CREATED).count() == 1
    assert Reservation.objects.filter(order=replacement).count() == 1

    # A second ticket on the same order gets the next number.
    second = graded_exchange(shipped, "CUP-CER-350")
    assert ticket_replacement_create(ticket_id=second.pk).number == f"{shipped.number}-R2"

    # The order pages say which order replaces which.
    client = login(role_users, "customer_service")
    page = client.get(f"/orders/{replacement.pk}/").content.decode()
    assert f"Replacement order (resend or exchange), replacing {shipped.number}" in page
    original_page = client.get(f"/orders/{shipped.pk}/").content.decode()
    listed = re.search(r'data-field="replacements">(.*?)</p>', original_page, re.S).group(1)
    assert re.findall(r'class="mono">([^<]+)</a>', listed) == [replacement.number, f"{shipped.number}-R2"]
    client.cookies["django_language"] = "zh-hans"
    assert f"补发/换货订单，替代 {shipped.number}" in client.get(f"/orders/{replacement.pk}/").content.decode()


@pytest.mark.django_db
def test_an_exchange_for_another_sku_sends_that_sku(shipped, skus):
    ticket = graded_exchange(shipped)
    replacement = ticket_replacement_create(ticket_id=ticket.pk, lines=[ReplacementLineInput("CUP-CER-350", 1)])
    assert [(line.sku_code, line.title, line.quantity) for line in replacement.lines.all()] == [
        ("CUP-CER-350", "陶瓷马克杯 350ml", 1)]
    assert Reservation.objects.get(order=replacement).sku == skus["CUP-CER-350"]


@pytest.mark.django_db
@pytest.mark.parametrize(("lines", "field"), [
    ([ReplacementLineInput("NO-SUCH-SKU", 1)], "lines[0].sku_code"),
    ([ReplacementLineInput("OLD-SKU", 1)], "lines[0].sku_code"),
    ([ReplacementLineInput("CUP-CER-350", 2)], "lines"),  # the ticket covers one unit
    ([ReplacementLineInput("CUP-CER-350", 0)], "lines[0].quantity"),
    ([], "lines"),
])
def test_a_bad_replacement_is_refused_with_a_code_and_writes_nothing(shipped, lines, field):
    SKU.objects.create(code="OLD-SKU", name="停售款", active=False)
    ticket = graded_exchange(shipped)
    orders_before, events_before = Order.objects.count(), TicketEvent.objects.count()
    with pytest.raises(ValidationFailed) as refused:
        ticket_replacement_create(ticket_id=ticket.pk, lines=lines)
    assert refused.value.code == "replacement_invalid" and field in refused.value.data
    assert (Order.objects.count(), TicketEvent.objects.count()) == (orders_before, events_before)
    assert Ticket.objects.get(pk=ticket.pk).replacement_order_id is None


@pytest.mark.django_db
def test_only_an_approved_resend_or_a_graded_exchange_gets_a_replacement(shipped):
    refund = ticket_services.ticket_create(order_id=shipped.pk, type="refund_only", reason="quality",
                                           lines=[TicketLineInput(tea_line(shipped).pk, 1, Decimal("10.00"))])
    waiting = ticket_services.ticket_create(order_id=shipped.pk, type="exchange", reason="size",
                                            lines=[TicketLineInput(tea_line(shipped).pk, 1)])
    for ticket in (refund, waiting):
        with pytest.raises(ConflictError) as refused:
            ticket_replacement_create(ticket_id=ticket.pk)
        assert refused.value.code == "replacement_not_allowed"
    assert not Order.objects.filter(replaces=shipped).exists()
    assert not TicketEvent.objects.filter(type=TicketEventType.REPLACEMENT_CREATED).exists()


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_calls_make_one_replacement(shipped):
    ticket = graded_exchange(shipped)
    barrier = threading.Barrier(2)
    results, errors = [], []

    def create():
        try:
            barrier.wait(timeout=10)
            results.append(ticket_replacement_create(ticket_id=ticket.pk).pk)
        except Exception as exc:  # noqa: BLE001 - the test reports whatever a thread hit
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=create) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    assert len(results) == 2 and results[0] == results[1]
    assert Order.objects.filter(replaces=shipped).count() == 1
    assert Reservation.objects.filter(order_id=results[0]).count() == 1
    assert TicketEvent.objects.filter(ticket=ticket, type=TicketEventType.REPLACEMENT_CREATED).count() == 1


@pytest.mark.django_db
def test_the_completeness_check_does_not_count_a_replacement_as_a_platform_order(skus, role_users):
    sandbox = ShopifySandbox(port=0, skus=[("TEA-LJ-250G", "37.99")], seed=16)
    sandbox.start()
    try:
        store = channel_store(platform=Platform.SHOPIFY, code="shop-repl", name="Shop", default_currency="USD",
                              credentials=sandbox.connector_credentials())
        ChannelSyncState.objects.get_or_create(store=store)
        now = timezone.now()
        window = (now - timedelta(minutes=90), now - timedelta(minutes=30))
        sandbox.set_clock(now - timedelta(minutes=60))
        sandbox.generate(2, push=False)
        sandbox.set_clock(None)
        connector_services.store_poll(store_id=store.pk)
        channel.inbox_process_store(store_id=store.pk)
        original = ship_order(Order.objects.filter(store=store).order_by("pk").first())
        ticket = tickets.ticket_open(order_id=original.pk, type="resend", reason="lost_in_transit",
                                     lines=[TicketLineInput(original.lines.first().pk, 1)])
        ticket = tickets.ticket_apply_transition(ticket_id=ticket.pk, name="approve",
                                                 actor=role_users["customer_service"])
        assert ticket.replacement_order.store_id == store.pk
        assert Order.objects.filter(store=store).count() == 3

        check = sync_check_window(store_id=store.pk, window_start=window[0], window_end=window[1])
        assert (check.platform_count, check.hub_count, check.missing) == (2, 2, [])
    finally:
        sandbox.stop()
