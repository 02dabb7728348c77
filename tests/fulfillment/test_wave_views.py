"""Wave pages: a wave of ticked parcels or by rule, the pick list sorted by bin location, starting the wave,
bad inputs and permissions."""

import pytest
from django.test import Client

from fulfillment.models import Carrier, CarrierKind, Shipment, ShipmentStatus, Wave
from inventory.models import StockLevel
from orders.models import OrderStatus
from orders.services import BuyerInput, ReceiverInput
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def login(role_users, role: str) -> Client:
    client = Client()
    assert client.login(username=role_users[role].username, password=PASSWORD)
    client.cookies["django_language"] = "en"
    return client


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


@pytest.fixture
def parcels(make_order) -> list[Shipment]:
    """Three parcels waiting in SH, of three buyers (so none merges); the second goes to Zhejiang."""
    created = []
    for n, province in enumerate(["上海市", "浙江省", "上海市"], start=1):
        receiver = ReceiverInput(
            name=f"买家{n}",
            phone=f"1331234000{n}",
            province=province,
            city="某市",
            district="某区",
            address=f"某路 {n} 号",
        )
        order = make_order(buyer=BuyerInput(id=f"buyer-{n}", name=f"买家{n}"), receiver=receiver)
        created.append(Shipment.objects.filter(lines__order=order).distinct().get())
    return created


def test_wave_by_selection(role_users, parcels):
    client = login(role_users, "warehouse")
    page = client.get("/fulfillment/waves/?warehouse=SH").content.decode()
    for shipment in parcels:
        assert f'name="shipments" value="{shipment.pk}"' in page
    response = client.post(
        "/fulfillment/waves/new/",
        {"warehouse": "SH", "description": "morning", "shipments": [parcels[0].pk, parcels[2].pk]},
        follow=True,
    )
    wave = Wave.objects.get()
    assert response.redirect_chain == [(f"/fulfillment/waves/{wave.pk}/", 302)]
    assert messages_of(response) == [f"Wave {wave.number} created with 2 parcels."]
    assert set(wave.shipments.all()) == {parcels[0], parcels[2]}
    assert (wave.warehouse.code, wave.description, wave.created_by) == (
        "SH",
        "morning",
        role_users["warehouse"],
    )
    # Parcels in a wave are no longer offered for another one.
    page = client.get("/fulfillment/waves/?warehouse=SH").content.decode()
    assert f'value="{parcels[0].pk}"' not in page and f'value="{parcels[1].pk}"' in page


def test_wave_by_rule(role_users, parcels):
    Carrier.objects.create(code="ZTO", name="中通", kind=CarrierKind.MANUAL)
    client = login(role_users, "manager")
    response = client.post(
        "/fulfillment/waves/new-by-rule/",
        {"warehouse": "SH", "province": "浙江省", "limit": "10"},
        follow=True,
    )
    wave = Wave.objects.get()
    assert list(wave.shipments.all()) == [parcels[1]] and wave.description == "浙江省"
    assert messages_of(response) == [f"Wave {wave.number} created with 1 parcel."]
    nothing = client.post(
        "/fulfillment/waves/new-by-rule/", {"warehouse": "SH", "carrier": "ZTO", "limit": "5"}, follow=True
    )
    assert messages_of(nothing) == ["Refused: No parcel waiting to be picked matches."]
    assert Wave.objects.count() == 1  # only the first wave: the refused rule made none
    limited = client.post("/fulfillment/waves/new-by-rule/", {"warehouse": "SH", "limit": "1"})
    assert limited.status_code == 302
    assert Wave.objects.order_by("-pk").first().shipments.count() == 1


def test_pick_list_is_sorted_by_location_and_printable(role_users, parcels):
    StockLevel.objects.filter(warehouse__code="SH", sku__code="TEA-LJ-250G").update(location="B-02-01")
    StockLevel.objects.filter(warehouse__code="SH", sku__code="CUP-CER-350").update(location="A-01-03")
    client = login(role_users, "warehouse")
    client.post("/fulfillment/waves/new/", {"warehouse": "SH", "shipments": [s.pk for s in parcels]})
    wave = Wave.objects.get()
    response = client.get(f"/fulfillment/waves/{wave.pk}/")
    rows = [(row.location, row.sku_code, row.quantity, row.shipments) for row in response.context["rows"]]
    assert rows == [("A-01-03", "CUP-CER-350", 3, 3), ("B-02-01", "TEA-LJ-250G", 6, 3)]
    page = response.content.decode()
    assert page.index('data-location="A-01-03"') < page.index('data-location="B-02-01"')
    assert "css/fulfillment.css" in page and 'data-action="wave-start"' in page


def test_start_wave_moves_parcels_to_picking_and_orders_to_fulfilment(role_users, parcels):
    client = login(role_users, "warehouse")
    client.post("/fulfillment/waves/new/", {"warehouse": "SH", "shipments": [parcels[0].pk, parcels[1].pk]})
    wave = Wave.objects.get()
    response = client.post(f"/fulfillment/waves/{wave.pk}/start/", follow=True)
    assert messages_of(response)[-1] == f"Wave {wave.number} started: its parcels are being picked."
    wave.refresh_from_db()
    assert wave.status == Wave.Status.PICKING and wave.started_at is not None
    for shipment in parcels[:2]:
        shipment.refresh_from_db()
        assert shipment.status == ShipmentStatus.PICKING
        assert {line.order.status for line in shipment.lines.select_related("order")} == {
            OrderStatus.IN_FULFILMENT
        }
    parcels[2].refresh_from_db()
    assert parcels[2].status == ShipmentStatus.TO_PICK
    again = client.post(f"/fulfillment/waves/{wave.pk}/start/", follow=True)
    assert messages_of(again) == [f"Refused: Wave {wave.number} has already started."]
    assert 'data-action="wave-start"' not in again.content.decode()


def test_bad_inputs_are_form_errors_not_500(role_users, parcels):
    client = login(role_users, "warehouse")
    for data in (
        {"warehouse": "SH", "shipments": ["abc"]},
        {"warehouse": "SH", "shipments": ["999999"]},
        {"warehouse": "SH"},
        {"warehouse": "NOPE", "shipments": [parcels[0].pk]},
    ):
        response = client.post("/fulfillment/waves/new/", data)
        assert response.status_code == 400, data
        assert 'role="alert"' in response.content.decode()
    for data in (
        {"warehouse": "SH", "limit": "abc"},
        {"warehouse": "SH", "limit": "0"},
        {"warehouse": "SH", "limit": "501"},
        {"warehouse": "", "limit": "5"},
        {"warehouse": "SH", "carrier": "NOPE", "limit": "5"},
    ):
        assert client.post("/fulfillment/waves/new-by-rule/", data).status_code == 400, data
    assert not Wave.objects.exists()
    assert client.get("/fulfillment/waves/999999/").status_code == 404
    assert client.post("/fulfillment/waves/999999/start/").status_code == 404
    assert client.get("/fulfillment/waves/?warehouse=NOPE&page=x").status_code == 200


def test_permissions(role_users, parcels):
    cs = login(role_users, "customer_service")
    page = cs.get("/fulfillment/waves/")
    assert page.status_code == 200 and 'data-action="wave-create"' not in page.content.decode()
    assert (
        cs.post("/fulfillment/waves/new/", {"warehouse": "SH", "shipments": [parcels[0].pk]}).status_code
        == 403
    )
    assert cs.post("/fulfillment/waves/new-by-rule/", {"warehouse": "SH", "limit": "5"}).status_code == 403
    login(role_users, "warehouse").post(
        "/fulfillment/waves/new/", {"warehouse": "SH", "shipments": [parcels[0].pk]}
    )
    wave = Wave.objects.get()
    assert cs.get(f"/fulfillment/waves/{wave.pk}/").status_code == 200
    assert cs.post(f"/fulfillment/waves/{wave.pk}/start/").status_code == 403
    assert login(role_users, "finance").get("/fulfillment/waves/").status_code == 403
    wave.refresh_from_db()
    assert wave.status == Wave.Status.OPEN
