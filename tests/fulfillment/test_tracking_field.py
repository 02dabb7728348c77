"""One tracking-number field on the kanban card and on the parcel page (one view, the existing service), and a
label that prints for any carrier once the number is there (ZTO, YTO: no carrier API, a typed number)."""

import re

import pytest
from django.test import Client

from fulfillment.models import (
    Carrier,
    CarrierKind,
    Shipment,
    ShipmentEvent,
    ShipmentEventType,
    ShipmentStatus,
)
from fulfillment.services import shipment_override_carrier
from orders.models import OrderStatus
from pipeline.shipping import shipment_pack, shipment_start_picking
from printing.models import JobKind, Printer, PrintJob, Transport
from tests.conftest import PASSWORD
from tests.fulfillment.helpers import scan_all

pytestmark = pytest.mark.django_db
SS = ShipmentStatus
HTMX = {"HTTP_HX_REQUEST": "true"}


def login(role_users, role: str = "warehouse") -> Client:
    client = Client()
    assert client.login(username=role_users[role].username, password=PASSWORD)
    client.cookies["django_language"] = "en"
    return client


@pytest.fixture
def zto_parcel(make_order, warehouse) -> Shipment:
    zto = Carrier.objects.create(code="ZTO", name="中通快递", kind=CarrierKind.MANUAL)
    order = make_order()
    order.refresh_from_db()
    assert order.status == OrderStatus.READY
    parcel = Shipment.objects.filter(lines__order=order).distinct().get()
    shipment_override_carrier(shipment_id=parcel.pk, carrier_id=zto.pk, reason="no SF here")
    return Shipment.objects.get(pk=parcel.pk)


@pytest.fixture
def printer(warehouse) -> Printer:
    # Port 9 (discard): nothing is sent inside a test transaction, the job only queues.
    return Printer.objects.create(code="sh-1", name="打包台 1", warehouse=warehouse, transport=Transport.NETWORK,
                                  host="127.0.0.1", port=9)


def card_of(html: str, shipment: Shipment) -> str:
    card = re.search(rf'<li class="kanban-card[^"]*"\s+id="shipment-{shipment.pk}".*?</li>', html, re.S)
    assert card, shipment.number
    return card.group(0)


def test_the_card_takes_a_scanned_tracking_number_and_then_offers_the_label(role_users, zto_parcel, warehouse,
                                                                           printer):
    client = login(role_users)
    board = f"/fulfillment/kanban/{warehouse.code}/"
    card = card_of(client.get(board).content.decode(), zto_parcel)
    assert card.count('name="tracking_number"') == 1 and 'enterkeyhint="done"' in card
    assert f'action="/fulfillment/shipments/{zto_parcel.pk}/tracking/"' in card
    assert 'data-action="print-label"' not in card  # nothing to print yet

    response = client.post(f"/fulfillment/shipments/{zto_parcel.pk}/tracking/",
                           {"tracking_number": " zt7300012345 ", "next": board}, **HTMX)

    assert response.status_code == 200 and response["HX-Trigger"] == "kanban-changed"
    fresh = response.content.decode()
    assert 'value="ZT7300012345"' in fresh and 'data-action="print-label"' in fresh
    zto_parcel.refresh_from_db()
    assert zto_parcel.tracking_number == "ZT7300012345"
    event = ShipmentEvent.objects.get(shipment=zto_parcel, type=ShipmentEventType.WAYBILL)
    assert event.data == {"tracking_number": "ZT7300012345", "source": "manual"}

    # The label of a carrier without an API prints from the typed number.
    printed = client.post(f"/printing/shipments/{zto_parcel.pk}/label/", {"next": board})
    assert printed.status_code == 302 and printed["Location"] == board
    job = PrintJob.objects.get(shipment=zto_parcel)
    assert job.kind == JobKind.LABEL and b"ZT7300012345" in bytes(job.payload)


def test_a_bad_tracking_number_from_the_card_is_refused_and_nothing_is_stored(role_users, zto_parcel):
    client = login(role_users)
    for bad, code in (("", "tracking_invalid"), ("ZT-12", "tracking_invalid"), ("中通1234567", "tracking_invalid")):
        response = client.post(f"/fulfillment/shipments/{zto_parcel.pk}/tracking/", {"tracking_number": bad},
                               **HTMX)
        assert response.status_code == 400, bad
        assert response["X-Refusal-Code"] == code and 'class="kanban-refusal"' in response.content.decode()
    zto_parcel.refresh_from_db()
    assert zto_parcel.tracking_number == ""
    assert not ShipmentEvent.objects.filter(shipment=zto_parcel, type=ShipmentEventType.WAYBILL).exists()


def test_without_javascript_the_card_form_goes_back_to_the_board(role_users, zto_parcel, warehouse):
    board = f"/fulfillment/kanban/{warehouse.code}/"
    response = login(role_users).post(f"/fulfillment/shipments/{zto_parcel.pk}/tracking/",
                                      {"tracking_number": "ZT7300012399", "next": board})
    assert response.status_code == 302 and response["Location"] == board
    assert Shipment.objects.get(pk=zto_parcel.pk).tracking_number == "ZT7300012399"


def test_the_parcel_page_has_one_tracking_field_and_prints_once_it_is_set(role_users, zto_parcel, printer):
    shipment_start_picking(shipment_id=zto_parcel.pk)
    scan_all(zto_parcel)
    shipment_pack(shipment_id=zto_parcel.pk)
    client = login(role_users)
    page = client.get(f"/fulfillment/shipments/{zto_parcel.pk}/").content.decode()
    # Packed, no number yet: one field (with the cursor in it), no second one in the ship form.
    assert page.count('name="tracking_number"') == 1 and "autofocus" in page
    assert 'data-action="print-label"' not in page and 'data-hint="print-needs-tracking"' in page

    saved = client.post(f"/fulfillment/shipments/{zto_parcel.pk}/tracking/", {"tracking_number": "ZT7300054321"})
    assert saved.status_code == 302 and saved["Location"] == f"/fulfillment/shipments/{zto_parcel.pk}/"
    page = client.get(f"/fulfillment/shipments/{zto_parcel.pk}/").content.decode()
    assert page.count('name="tracking_number"') == 1 and 'data-action="print-label"' in page
    assert 'data-hint="print-needs-tracking"' not in page
    shipped = client.post(f"/fulfillment/shipments/{zto_parcel.pk}/ship/")
    assert shipped.status_code == 302
    assert Shipment.objects.get(pk=zto_parcel.pk).status == SS.SHIPPED
