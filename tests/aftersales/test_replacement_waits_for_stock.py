"""A replacement order that first waits for stock moves on by itself when the stock comes, also on a store
whose orders a person approves: the ticket's approval stands for it."""

from decimal import Decimal

import pytest

from aftersales.models import TicketStatus
from aftersales.services import TicketLineInput
from fulfillment.models import Carrier, CarrierKind, ShipmentStatus
from inventory import services as stock
from inventory.models import StockLevel
from orders.models import OrderStatus
from pipeline import orders as order_flows
from pipeline import tickets
from tests.fulfillment.helpers import parcel_of, ship_parcel

pytestmark = pytest.mark.django_db


@pytest.fixture
def shipped(make_order, taobao_store):
    Carrier.objects.create(code="YTO", name="圆通", kind=CarrierKind.MANUAL, cost_first_kg=Decimal("6"),
                           cost_extra_kg=Decimal("2"))
    order = make_order()
    ship_parcel(parcel_of(order), tracking="YT2000000001")
    order.refresh_from_db()
    assert order.status == OrderStatus.SHIPPED
    return order


def test_a_replacement_waiting_for_stock_is_approved_when_the_stock_comes_on_a_manual_approval_store(
        shipped, taobao_store, role_users, warehouse):
    taobao_store.auto_approve = False
    taobao_store.save(update_fields=["auto_approve"])
    tea = shipped.lines.get(sku_code="TEA-LJ-250G")
    level = StockLevel.objects.get(warehouse=warehouse, sku_id=tea.sku_id)
    stock.stock_adjust(warehouse_id=warehouse.pk, sku_id=tea.sku_id, delta=-(level.on_hand - level.reserved),
                       reason="shelf count: none left")
    cs = role_users["customer_service"]

    ticket = tickets.ticket_open(order_id=shipped.pk, type="resend", reason="lost_in_transit",
                                 lines=[TicketLineInput(tea.pk, 2)], actor=cs)
    ticket = tickets.ticket_apply_transition(ticket_id=ticket.pk, name="approve", actor=cs)
    replacement = ticket.replacement_order
    assert (ticket.status, replacement.status) == (TicketStatus.APPROVED, OrderStatus.AWAITING_STOCK)

    stock.stock_receive(warehouse_id=warehouse.pk, sku_id=tea.sku_id, quantity=5, reference="PO-1")
    assert order_flows.orders_retry_awaiting_stock(sku_ids=[tea.sku_id]) == 1
    replacement.refresh_from_db()
    assert replacement.status == OrderStatus.READY  # not left at "paid" for a person to approve
    assert parcel_of(replacement).status == ShipmentStatus.TO_PICK
