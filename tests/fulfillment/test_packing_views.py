"""The packing station: scan the parcel, then each item; wrong, extra and missing items are refused with a
red banner (and recorded), a full parcel packs, a wrong weight does not; with htmx and without JavaScript."""

import pytest
from django.test import Client

from fulfillment import services
from fulfillment.models import Shipment, ShipmentEvent, ShipmentEventType, ShipmentStatus
from inventory.models import SKU
from orders.models import OrderStatus
from pipeline import shipping
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

TEA, CUP, GIFT = "6901234567892", "6901234567908", "6901234567915"
HTMX = {"HTTP_HX_REQUEST": "true"}


def login(role_users, role: str) -> Client:
    client = Client()
    assert client.login(username=role_users[role].username, password=PASSWORD)
    client.cookies["django_language"] = "en"  # English msgids, whatever the state of the catalogue
    return client


@pytest.fixture
def parcel(make_order) -> Shipment:
    """A parcel being picked: 2 × TEA-LJ-250G (300 g each) and 1 × CUP-CER-350 (400 g), 1,000 g expected."""
    SKU.objects.filter(code="TEA-LJ-250G").update(weight_grams=300)
    SKU.objects.filter(code="CUP-CER-350").update(weight_grams=400)
    order = make_order()
    shipment = Shipment.objects.filter(lines__order=order).distinct().get()
    shipping.shipment_start_picking(shipment_id=shipment.pk)
    shipment.refresh_from_db()
    assert shipment.expected_weight_grams == 1000
    return shipment


def scanned(shipment: Shipment) -> dict[str, int]:
    return {line.sku.code: line.verified_quantity for line in shipment.lines.select_related("sku")}


def scan(client: Client, shipment: Shipment, code: str, **extra):
    return client.post(f"/fulfillment/pack/{shipment.pk}/scan/", {"code": code}, **extra)


def refusals(shipment: Shipment) -> list[tuple[str, str]]:
    return [
        (e.data["barcode"], e.data["problem"])
        for e in ShipmentEvent.objects.filter(shipment=shipment, type=ShipmentEventType.SCAN_REFUSED)
    ]


def test_htmx_scan_parcel_then_items_then_pack(role_users, parcel):
    client = login(role_users, "warehouse")
    page = client.get("/fulfillment/pack/")
    assert page.status_code == 200 and 'id="scan-code"' in page.content.decode()
    assert "autofocus" in page.content.decode()

    opened = client.post("/fulfillment/pack/scan/", {"code": parcel.number.lower()}, **HTMX)
    body = opened.content.decode()
    assert opened.status_code == 200 and opened["HX-Push-Url"] == f"/fulfillment/pack/{parcel.pk}/"
    assert 'id="station"' in body and "<html" not in body  # the partial only
    assert 'data-sku="TEA-LJ-250G" data-scanned="0" data-needed="2"' in body

    first = scan(client, parcel, TEA, **HTMX)
    body = first.content.decode()
    assert first.status_code == 200 and "fb-ok" in body and "TEA-LJ-250G: 1 of 2 scanned." in body
    assert 'data-sku="TEA-LJ-250G" data-scanned="1" data-needed="2"' in body
    assert 'data-action="pack"' not in body  # not complete: no pack button yet
    scan(client, parcel, TEA, **HTMX)
    last = scan(client, parcel, CUP, **HTMX)
    body = last.content.decode()
    assert "Every item is verified" in body and 'data-action="pack"' in body and "station-complete" in body
    assert scanned(parcel) == {"TEA-LJ-250G": 2, "CUP-CER-350": 1}

    packed = client.post(f"/fulfillment/pack/{parcel.pk}/pack/", {"weight_grams": "1030"}, **HTMX)
    body = packed.content.decode()
    assert packed.status_code == 200 and packed["HX-Push-Url"] == "/fulfillment/pack/"
    assert f"Parcel {parcel.number} packed (1030 g). Scan the next parcel." in body
    assert 'data-shipment=""' in body and "autofocus" in body  # the station is free for the next parcel
    parcel.refresh_from_db()
    assert parcel.status == ShipmentStatus.PACKED and parcel.measured_weight_grams == 1030
    assert ShipmentEvent.objects.filter(
        shipment=parcel, to_status="packed", actor=role_users["warehouse"]
    ).exists()


def test_wrong_and_extra_items_are_refused_with_a_red_banner_and_recorded(role_users, parcel):
    client = login(role_users, "warehouse")
    wrong = scan(client, parcel, GIFT, **HTMX)
    body = wrong.content.decode()
    assert wrong.status_code == 400
    assert f"Wrong item: {GIFT} is not in parcel {parcel.number}." in body
    assert "fb-bad" in body and "station-bad" in body and 'role="alert"' in body
    assert refusals(parcel) == [(GIFT, "wrong_item")]

    scan(client, parcel, CUP, **HTMX)
    extra = scan(client, parcel, CUP, **HTMX)
    body = extra.content.decode()
    assert extra.status_code == 400 and "Extra item: all 1 of CUP-CER-350 are already scanned." in body
    assert "fb-bad" in body
    assert refusals(parcel) == [(GIFT, "wrong_item"), (CUP, "extra")]
    assert scanned(parcel) == {"TEA-LJ-250G": 0, "CUP-CER-350": 1}  # the refused scans counted nothing
    parcel.refresh_from_db()
    assert parcel.status == ShipmentStatus.PICKING


def test_without_javascript_every_post_redirects_to_the_station_with_its_outcome(role_users, parcel):
    client = login(role_users, "warehouse")
    opened = client.post("/fulfillment/pack/scan/", {"code": parcel.number})
    assert opened.status_code == 302 and opened["Location"] == f"/fulfillment/pack/{parcel.pk}/"
    page = client.get(opened["Location"]).content.decode()
    assert f"Parcel {parcel.number}: scan each item." in page and "TEA-LJ-250G" in page

    wrong = client.post(f"/fulfillment/pack/{parcel.pk}/scan/", {"code": GIFT}, follow=True)
    page = wrong.content.decode()
    assert wrong.redirect_chain == [(f"/fulfillment/pack/{parcel.pk}/", 302)]
    assert "fb-bad" in page and f"Wrong item: {GIFT} is not in parcel {parcel.number}." in page
    assert refusals(parcel) == [(GIFT, "wrong_item")]
    # The outcome is shown once: reloading the station shows the parcel without the old banner.
    assert "Wrong item" not in client.get(f"/fulfillment/pack/{parcel.pk}/").content.decode()

    for code in (TEA, TEA, CUP):
        ok = client.post(f"/fulfillment/pack/{parcel.pk}/scan/", {"code": code}, follow=True)
        assert "fb-ok" in ok.content.decode()
    packed = client.post(f"/fulfillment/pack/{parcel.pk}/pack/", {"weight_grams": ""}, follow=True)
    assert packed.redirect_chain == [("/fulfillment/pack/", 302)]
    assert f"Parcel {parcel.number} packed. Scan the next parcel." in packed.content.decode()
    parcel.refresh_from_db()
    assert parcel.status == ShipmentStatus.PACKED and parcel.measured_weight_grams is None


def test_packing_with_a_missing_item_is_refused(role_users, parcel):
    client = login(role_users, "warehouse")
    scan(client, parcel, TEA, **HTMX)
    scan(client, parcel, CUP, **HTMX)
    refused = client.post(f"/fulfillment/pack/{parcel.pk}/pack/", {"weight_grams": ""}, **HTMX)
    body = refused.content.decode()
    assert refused.status_code == 409
    assert "Not every item is scanned: TEA-LJ-250G × 1 missing." in body and "fb-bad" in body
    parcel.refresh_from_db()
    assert parcel.status == ShipmentStatus.PICKING and parcel.packed_at is None


def test_weight_mismatch_and_a_bad_weight_are_refused(role_users, parcel):
    client = login(role_users, "warehouse")
    for code in (TEA, TEA, CUP):
        scan(client, parcel, code, **HTMX)
    heavy = client.post(f"/fulfillment/pack/{parcel.pk}/pack/", {"weight_grams": "2000"}, **HTMX)
    body = heavy.content.decode()
    assert heavy.status_code == 409
    assert "The parcel weighs 2000 g but should weigh about 1000 g: check its contents." in body
    assert 'value="2000"' in body  # the weighed value stays in the field
    for bad in ("abc", "-5", "1.5", "99999999"):
        response = client.post(f"/fulfillment/pack/{parcel.pk}/pack/", {"weight_grams": bad}, **HTMX)
        assert response.status_code == 400 and "fb-bad" in response.content.decode(), bad
    no_js = client.post(f"/fulfillment/pack/{parcel.pk}/pack/", {"weight_grams": "abc"}, follow=True)
    assert "Enter the weight in whole grams." in no_js.content.decode()
    parcel.refresh_from_db()
    assert parcel.status == ShipmentStatus.PICKING and parcel.measured_weight_grams is None


def test_weight_mismatch_is_recorded(role_users, parcel):
    client = login(role_users, "warehouse")
    for code in (TEA, TEA, CUP):
        scan(client, parcel, code, **HTMX)
    client.post(f"/fulfillment/pack/{parcel.pk}/pack/", {"weight_grams": "2000"}, **HTMX)
    mismatch = ShipmentEvent.objects.get(shipment=parcel, type=ShipmentEventType.WEIGHT_MISMATCH)
    assert mismatch.data == {"expected_grams": 1000, "measured_grams": 2000}


def test_reset_clears_the_scans(role_users, parcel):
    client = login(role_users, "warehouse")
    scan(client, parcel, TEA, **HTMX)
    scan(client, parcel, CUP, **HTMX)
    reset = client.post(f"/fulfillment/pack/{parcel.pk}/reset/", **HTMX)
    assert reset.status_code == 200 and "scan every item again" in reset.content.decode()
    assert scanned(parcel) == {"TEA-LJ-250G": 0, "CUP-CER-350": 0}


def test_a_parcel_not_picked_yet_offers_start_picking(role_users, make_order):
    order = make_order()
    shipment = Shipment.objects.filter(lines__order=order).distinct().get()
    client = login(role_users, "warehouse")
    opened = client.post("/fulfillment/pack/scan/", {"code": shipment.number}, **HTMX)
    body = opened.content.decode()
    assert "has not been picked yet" in body and 'data-action="start"' in body
    refused = scan(client, shipment, TEA, **HTMX)
    assert (
        refused.status_code == 409 and "only a parcel being picked can be scanned" in refused.content.decode()
    )
    started = client.post(f"/fulfillment/pack/{shipment.pk}/start/", **HTMX)
    assert started.status_code == 200 and "scan each item" in started.content.decode()
    shipment.refresh_from_db()
    order.refresh_from_db()
    assert shipment.status == ShipmentStatus.PICKING and order.status == OrderStatus.IN_FULFILMENT


def test_scanning_another_label_opens_that_parcel_and_unknown_codes_are_refused(
    role_users, parcel, make_order
):
    from orders.services import BuyerInput

    other_order = make_order(buyer=BuyerInput(id="buyer-2", name="李雷"))
    other = Shipment.objects.filter(lines__order=other_order).distinct().get()
    shipping.shipment_start_picking(shipment_id=other.pk)
    services.shipment_set_tracking_number(shipment_id=other.pk, tracking_number="YT1000000001")
    client = login(role_users, "warehouse")
    switched = scan(client, parcel, "yt 1000 0000 01", **HTMX)  # the tracking number, as typed
    assert switched.status_code == 200 and switched["HX-Push-Url"] == f"/fulfillment/pack/{other.pk}/"
    assert f'data-shipment="{other.pk}"' in switched.content.decode()
    assert refusals(parcel) == []

    unknown = client.post("/fulfillment/pack/scan/", {"code": "NOPE-123"}, **HTMX)
    assert unknown.status_code == 400 and "No parcel has the number NOPE-123." in unknown.content.decode()
    empty = scan(client, parcel, "  ", **HTMX)
    assert empty.status_code == 400 and "Scan a barcode first." in empty.content.decode()
    assert client.post("/fulfillment/pack/999999/scan/", {"code": TEA}, **HTMX).status_code == 404
    assert client.get("/fulfillment/pack/999999/").status_code == 404


def test_only_roles_that_move_parcels_may_pack(role_users, parcel):
    cs = login(role_users, "customer_service")
    assert cs.get("/fulfillment/pack/").status_code == 403
    assert cs.post(f"/fulfillment/pack/{parcel.pk}/scan/", {"code": TEA}).status_code == 403
    assert cs.post(f"/fulfillment/pack/{parcel.pk}/pack/", {}).status_code == 403
    assert cs.post(f"/fulfillment/pack/{parcel.pk}/reset/").status_code == 403
    assert login(role_users, "finance").get("/fulfillment/pack/").status_code == 403
    anonymous = Client().get("/fulfillment/pack/")
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/accounts/login/")
    assert login(role_users, "warehouse").get(f"/fulfillment/pack/{parcel.pk}/scan/").status_code == 405
    assert scanned(parcel) == {"TEA-LJ-250G": 0, "CUP-CER-350": 0}
    assert login(role_users, "manager").get("/fulfillment/pack/").status_code == 200
