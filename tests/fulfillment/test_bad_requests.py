"""Garbage sent to the warehouse pages is a clear refusal (4xx, form error or message), never a 500, and
nothing is cut off or half-saved."""

import pytest
from django.test import Client

from fulfillment import services
from fulfillment.exceptions import RoutingInvalid
from fulfillment.models import Carrier, Shipment, ShipmentStatus, Wave
from fulfillment.tracking import shipment_request_waybill
from pipeline import orders as order_flows
from tests.conftest import PASSWORD
from tests.fulfillment.helpers import parcel_of

pytestmark = pytest.mark.django_db

NOT_IDS = ["²", "١٢", "9" * 5000, "-1", "0", "abc"]


def login(role_users, role: str) -> Client:
    client = Client()
    assert client.login(username=role_users[role].username, password=PASSWORD)
    return client


@pytest.mark.parametrize("value", NOT_IDS)
def test_a_wave_from_ids_that_are_not_ids_is_a_form_error(role_users, warehouse, make_order, value):
    make_order()
    response = login(role_users, "warehouse").post("/fulfillment/waves/new/", {"warehouse": "SH", "shipments": value})
    assert response.status_code == 400
    assert not Wave.objects.exists()


@pytest.mark.parametrize("value", NOT_IDS)
def test_printing_a_selection_of_ids_that_are_not_ids_is_a_message(role_users, warehouse, value):
    response = login(role_users, "warehouse").post("/printing/batch/", {"shipments": value})
    assert response.status_code == 302  # back to the board with a message, nothing queued


@pytest.mark.parametrize("config", ['{"x": NaN}', '{"x": Infinity}', '{"x": 1e400}', '{"a": "\\u0000"}'])
def test_carrier_settings_the_database_cannot_hold_are_form_errors(role_users, config):
    response = login(role_users, "manager").post("/fulfillment/carriers/new/", {
        "code": "ZTO", "name": "中通", "kind": "manual", "active": "on", "services": "standard",
        "cost_first_kg": "5", "cost_extra_kg": "2", "config": config})
    assert response.status_code == 400 and response.context["form"].errors["config"]
    assert not Carrier.objects.exists()


def test_an_exception_reason_too_long_is_refused_not_cut(role_users, make_order):
    parcel = parcel_of(make_order())
    response = login(role_users, "warehouse").post(f"/fulfillment/shipments/{parcel.pk}/move/",
                                                   {"to": "exception", "reason": "箱子破损" * 100},
                                                   HTTP_HX_REQUEST="true")
    assert response.status_code == 400 and response["X-Refusal-Code"] == "reason_too_long"
    assert Shipment.objects.get(pk=parcel.pk).status == ShipmentStatus.TO_PICK


def test_a_tracking_number_in_other_digits_is_refused(make_order):
    parcel = parcel_of(make_order())
    with pytest.raises(RoutingInvalid) as refused:
        services.shipment_set_tracking_number(shipment_id=parcel.pk, tracking_number="١٢٣٤٥٦٧٨")
    assert refused.value.code == "tracking_invalid"
    assert Shipment.objects.get(pk=parcel.pk).tracking_number == ""


def test_a_cancelled_parcel_gets_no_waybill(make_order):
    order = make_order()
    parcel = parcel_of(order)
    order_flows.order_cancel(order_id=order.pk, reason="buyer cancelled")
    with pytest.raises(RoutingInvalid) as refused:
        shipment_request_waybill(shipment_id=parcel.pk)
    assert refused.value.code == "waybill_not_needed"
