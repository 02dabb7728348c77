"""Returns, exchanges and resends claim only shipped units (less what other tickets hold), refunds only and
compensations the units bought: in the service, the API and the new-ticket page, with nothing written when
refused."""

import re
from decimal import Decimal

import pytest
from django.conf import settings
from django.test import Client

from aftersales import services
from aftersales.models import Ticket, TicketEvent, TicketLine, TicketStatus
from aftersales.services import TicketLineInput
from fulfillment import services as fulfillment_services
from fulfillment.models import Shipment
from oms.exceptions import ValidationFailed
from orders.models import Order, OrderStatus
from tests.aftersales.helpers import ship_order
from tests.conftest import PASSWORD
from tests.fulfillment.helpers import parcel_of, ship_parcel, stock_picture

pytestmark = pytest.mark.django_db


@pytest.fixture
def partly_shipped(make_order) -> Order:
    """2 × TEA-LJ-250G and 1 × CUP-CER-350: one tea split into a parcel of its own and shipped, the other tea and
    the cup still in the parcel to pick."""
    order = make_order()
    parcel = parcel_of(order)
    tea_in_parcel = parcel.lines.get(sku__code="TEA-LJ-250G")
    alone = fulfillment_services.shipment_split(shipment_id=parcel.pk, quantities={tea_in_parcel.pk: 1},
                                                reason="first box")
    ship_parcel(alone, tracking="YT4000000001")
    order.refresh_from_db()
    assert order.status == OrderStatus.PARTIALLY_SHIPPED
    return order


def lines_of(order):
    tea, cup = order.lines.order_by("line_no")
    return tea, cup


def written() -> tuple:
    """What a refused ticket must leave as it was: tickets, their lines and events, and the stock."""
    return (Ticket.objects.count(), TicketLine.objects.count(), TicketEvent.objects.count(), stock_picture())


def login(user) -> Client:
    client = Client()
    assert client.login(username=user.username, password=PASSWORD)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "zh-hans"
    return client


def cells(page: str, line_no: int) -> list[str]:
    row = re.search(rf'<tr data-line="{line_no}">(.*?)</tr>', page, re.S).group(1)
    return [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]


@pytest.mark.parametrize("type_", ["return_refund", "exchange", "resend"])
def test_more_units_than_shipped_are_refused_per_line_and_nothing_is_written(partly_shipped, type_):
    tea, cup = lines_of(partly_shipped)
    before = written()
    with pytest.raises(ValidationFailed) as refused:
        services.ticket_create(order_id=partly_shipped.pk, type=type_, reason="quality",
                               lines=[TicketLineInput(tea.pk, 2), TicketLineInput(cup.pk, 1)])
    assert refused.value.code == "ticket_invalid"
    assert refused.value.data == {
        "lines[0].quantity": ["最多 1 件：该商品共 2 件，已发货 1 件，其中 0 件已在其他售后单中。"],
        "lines[1].quantity": ["最多 0 件：该商品共 1 件，已发货 0 件，其中 0 件已在其他售后单中。"],
    }
    assert written() == before


def test_the_shipped_unit_can_come_back_once_and_the_unshipped_one_can_be_refunded(partly_shipped):
    tea, cup = lines_of(partly_shipped)
    back = services.ticket_create(order_id=partly_shipped.pk, type="return_refund", reason="quality",
                                  lines=[TicketLineInput(tea.pk, 1)])
    assert (back.status, back.requested_amount) == (TicketStatus.REQUESTED, Decimal("188.00"))
    before = written()
    with pytest.raises(ValidationFailed) as refused:
        services.ticket_create(order_id=partly_shipped.pk, type="exchange", reason="size",
                               lines=[TicketLineInput(tea.pk, 1)])
    assert refused.value.data == {
        "lines[0].quantity": ["最多 0 件：该商品共 2 件，已发货 1 件，其中 1 件已在其他售后单中。"]}
    assert written() == before
    # A refund only counts what was bought: the cup never left, and the buyer may still be refunded for it.
    refund = services.ticket_create(order_id=partly_shipped.pk, type="refund_only", reason="changed_mind",
                                    lines=[TicketLineInput(cup.pk, 1)])
    assert list(refund.lines.values_list("order_line_id", "quantity", "requested_amount")) == [
        (cup.pk, 1, Decimal("34.90"))]
    assert Ticket.objects.filter(order=partly_shipped).count() == 2


def test_a_return_on_an_order_not_shipped_at_all_is_refused(make_order):
    order = make_order()
    assert order.status == OrderStatus.READY and not Shipment.objects.filter(lines__order=order,
                                                                            shipped_at__isnull=False).exists()
    tea, _cup = lines_of(order)
    before = written()
    with pytest.raises(ValidationFailed) as refused:
        services.ticket_create(order_id=order.pk, type="return_refund", reason="damaged",
                               lines=[TicketLineInput(tea.pk, 1)])
    assert refused.value.code == "ticket_invalid"
    assert refused.value.data == {
        "lines[0].quantity": ["最多 0 件：该商品共 2 件，已发货 0 件，其中 0 件已在其他售后单中。"]}
    assert written() == before
    # Once its parcel has left, the same return is taken.
    ship_order(order)
    ticket = services.ticket_create(order_id=order.pk, type="return_refund", reason="damaged",
                                    lines=[TicketLineInput(tea.pk, 1)])
    assert list(ticket.lines.values_list("order_line_id", "quantity")) == [(tea.pk, 1)]


def test_the_api_answers_400_ticket_invalid_for_a_return_of_unshipped_units(make_order, api_client_for):
    order = make_order()
    tea, cup = lines_of(order)
    before = written()
    response = api_client_for("customer_service").post("/api/v1/tickets/", {
        "order": order.pk, "type": "return_refund", "reason": "damaged",
        "lines": [{"order_line_id": tea.pk, "quantity": 1}, {"order_line_id": cup.pk, "quantity": 1}]},
        format="json")
    assert response.status_code == 400
    answer = response.json()
    assert answer["code"] == "ticket_invalid"
    assert set(answer["errors"]) == {"lines[0].quantity", "lines[1].quantity"}
    assert "已发货 0 件" in answer["errors"]["lines[0].quantity"][0]
    assert written() == before


def test_the_new_ticket_page_shows_shipped_and_claimable_units_and_refuses_unshipped_ones(partly_shipped,
                                                                                         role_users):
    tea, cup = lines_of(partly_shipped)
    client = login(role_users["customer_service"])
    page = client.get(f"/aftersales/new/{partly_shipped.pk}/").content.decode()
    # Bought, shipped, claimable by a return (the default once something shipped), paid for those.
    assert cells(page, 1)[3:7] == ["2", "1", "1", "188.00"]
    assert cells(page, 2)[3:7] == ["1", "0", "0", "0.00"]
    assert f'name="line_{tea.pk}_quantity" value="1"' in page and f'name="line_{cup.pk}_quantity" value="0"' in page
    assert '<option value="return_refund" selected>' in page
    assert "退货退款、换货、补发按已发货数量申请" in page

    before = written()
    response = client.post(f"/aftersales/new/{partly_shipped.pk}/", {
        "type": "return_refund", "reason": "damaged", "reason_text": "", "shipping_amount": "0",
        "return_tracking_number": "", f"line_{tea.pk}_quantity": "2", f"line_{tea.pk}_amount": "",
        f"line_{cup.pk}_quantity": "0", f"line_{cup.pk}_amount": ""})
    page = response.content.decode()
    assert response.status_code == 400
    errors = re.findall(rf'<p class="error" data-error="line_{tea.pk}_quantity">(.*?)</p>', page, re.S)
    assert errors == ["最多 1 件：该商品共 2 件，已发货 1 件，其中 0 件已在其他售后单中。"]
    assert written() == before

    # A refund only is counted on what was bought: the column follows the type chosen.
    response = client.post(f"/aftersales/new/{partly_shipped.pk}/", {
        "type": "refund_only", "reason": "", "shipping_amount": "0", f"line_{tea.pk}_quantity": "0",
        f"line_{cup.pk}_quantity": "0"})
    assert response.status_code == 400
    assert [cells(response.content.decode(), no)[3:6] for no in (1, 2)] == [["2", "1", "2"], ["1", "0", "1"]]


def test_the_new_ticket_page_of_an_order_not_shipped_starts_as_a_refund_only(make_order, role_users):
    order = make_order()
    tea, cup = lines_of(order)
    page = login(role_users["customer_service"]).get(f"/aftersales/new/{order.pk}/").content.decode()
    assert '<option value="refund_only" selected>' in page
    assert cells(page, 1)[3:7] == ["2", "0", "2", "376.00"] and cells(page, 2)[3:7] == ["1", "0", "1", "34.90"]
    assert f'name="line_{tea.pk}_quantity" value="2"' in page and f'name="line_{cup.pk}_quantity" value="1"' in page
