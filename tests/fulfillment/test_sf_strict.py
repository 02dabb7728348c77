"""SF as strict as SF (issue 13, items 2 and 3), over real HTTP against the sandbox: a repeated orderId is
refused (8016) and the adapter adopts the waybill SF already made; a cancel goes by orderId, and the
sandbox refuses what SF refuses (no orderId, unknown orderId, a waybill of another order)."""

from __future__ import annotations

import json

import pytest
import requests
from django.test import Client

from fulfillment.carriers import adapter_for
from fulfillment.carriers.base import Address, CarrierPermanentError, WaybillRequest
from fulfillment.carriers.sf import CREATE_ORDER, SEARCH_ORDER, UPDATE_ORDER
from fulfillment.carriers.sf_sandbox import SFSandbox
from fulfillment.models import Carrier, CarrierKind, Shipment, ShipmentEventType
from fulfillment.tracking import shipment_cancel_waybill
from gateway.errors import PermanentError
from pipeline import orders as order_flows
from tests.conftest import PASSWORD
from tests.fulfillment.helpers import parcel_of

SENDER = Address("上海仓", "021-60000000", "上海市", "上海市", "青浦区", "华新镇 88 号")
RECEIVER = Address("王芳", "13812345678", "浙江省", "杭州市", "西湖区", "文三路 100 号")


@pytest.fixture
def sandbox():
    box = SFSandbox(port=0, seed=11)
    box.start()
    box.lost_answer_seconds = 1.5  # longer than the adapters' 0.5 s timeout below
    yield box
    box.stop()


def adapter_of(sandbox: SFSandbox, **overrides):
    adapter = adapter_for("sf", {**sandbox.adapter_config(), "timeout": 0.5, "max_retries": 1, **overrides})
    adapter.client.sleep = lambda seconds: None  # the backoff wait is not what these tests are about
    return adapter


def faults(sandbox: SFSandbox, body: dict) -> None:
    """Set fault switches through the sandbox's control API, over HTTP like an operator."""
    response = requests.post(f"{sandbox.base_url}/_sandbox/faults", json=body, timeout=5)
    assert response.status_code == 200, response.text


def request_for(ref: str) -> WaybillRequest:
    return WaybillRequest(
        order_ref=ref, sender=SENDER, receiver=RECEIVER, weight_grams=800, items=(("龙井 250g", 1),)
    )


def refusal(call) -> str:
    with pytest.raises(PermanentError) as refused:
        call()
    return refused.value.code


# --- Item 2: a create whose answer was lost ----------------------------------------------------


@pytest.mark.parametrize("fault", [{"lost_answers": 1}, {"malformed": 1}], ids=["timeout", "cut_body"])
def test_a_create_whose_answer_is_lost_adopts_the_waybill_sf_made(sandbox, fault):
    adapter = adapter_of(sandbox)
    faults(sandbox, fault)

    waybill = adapter.create_waybill(request_for("SHP-LOST-1"))

    [made] = sandbox.waybills()  # exactly one waybill at SF, and it is the one the hub got
    assert (made["orderId"], made["status"]) == ("SHP-LOST-1", "created")
    assert waybill.tracking_number == made["waybillNo"]
    assert waybill.handover_code == made["routeLabelData"]["destRouteLabel"]
    assert waybill.recovered is True
    assert [(p["kind"], p.get("refused")) for p in sandbox.pushed] == [
        ("create", None),
        ("create", "8016"),  # the retry, refused as SF refuses a repeated orderId
        ("search", None),  # EXP_RECE_SEARCH_ORDER_RESP found the order
    ]
    search = [c for c in sandbox.api_calls if c["serviceCode"] == SEARCH_ORDER]
    assert [json.loads(c["msgData"]) for c in search] == [
        {"language": "zh-CN", "orderId": "SHP-LOST-1", "searchType": 1}
    ]


def test_the_sandbox_refuses_a_repeated_order_id_and_answers_the_order_search(sandbox):
    client = adapter_of(sandbox, max_retries=0).client
    msg = {
        "orderId": "SHP-RAW-1",
        "cargoDetails": [{"name": "茶", "count": 1}],
        "contactInfoList": [
            {"contactType": 1, "address": "上海市青浦区华新镇 88 号"},
            {"contactType": 2, "contact": "王芳", "mobile": "13812345678", "address": "杭州市文三路 100 号"},
        ],
    }
    first = client.call_once(CREATE_ORDER, msg)["waybillNoInfoList"]

    assert refusal(lambda: client.call_once(CREATE_ORDER, msg)) == "8016"
    assert (
        client.call_once(SEARCH_ORDER, {"orderId": "SHP-RAW-1", "searchType": 1})["waybillNoInfoList"]
        == first
    )
    assert refusal(lambda: client.call_once(SEARCH_ORDER, {"orderId": "SHP-NONE", "searchType": 1})) == "6150"
    assert len(sandbox.waybills()) == 1


@pytest.mark.django_db
def test_the_parcel_page_gets_the_recovered_waybill_after_a_lost_answer(
    sandbox, role_users, make_order, warehouse
):
    warehouse.address, warehouse.contact_phone = "上海市青浦区华新镇 88 号", "021-60000000"
    warehouse.save()
    carrier = Carrier.objects.create(
        code="SF",
        name="顺丰速运",
        kind=CarrierKind.SF,
        cost_first_kg=1,
        services=["standard"],
        config={**sandbox.adapter_config(), "timeout": 0.5, "max_retries": 1},
    )
    shipment = parcel_of(make_order())
    Shipment.objects.filter(pk=shipment.pk).update(carrier=carrier, service_level="standard")
    faults(sandbox, {"lost_answers": 1})
    client = Client()
    assert client.login(username=role_users["warehouse"].username, password=PASSWORD)
    client.cookies["django_language"] = "en"

    response = client.post(f"/fulfillment/shipments/{shipment.pk}/waybill/")

    assert response.status_code == 302
    shipment.refresh_from_db()
    [made] = sandbox.waybills()
    assert made["orderId"] == shipment.number
    assert shipment.tracking_number == made["waybillNo"]  # the parcel did not fail: it has SF's waybill
    assert shipment.handover_code == made["routeLabelData"]["destRouteLabel"]
    [event] = shipment.events.filter(type=ShipmentEventType.WAYBILL)
    assert event.data == {"tracking_number": made["waybillNo"], "source": "carrier:SF", "recovered": True}
    assert event.reason.startswith("The carrier had already made this waybill")
    page = client.get(response["Location"])
    assert page.status_code == 200
    assert [str(m) for m in page.context["messages"]] == [
        f"Waybill {made['waybillNo']} for parcel {shipment.number}."
    ]


# --- Item 3: cancel by orderId -------------------------------------------------------------------


def test_cancel_sends_the_order_id_and_the_waybill(sandbox):
    adapter = adapter_of(sandbox)
    number = adapter.create_waybill(request_for("SHP-CXL-1")).tracking_number

    adapter.cancel_waybill(number, order_ref="SHP-CXL-1")
    adapter.cancel_waybill(number, order_ref="SHP-CXL-1")  # SF answers 8037 (已消单): done, not an error

    [cancel, again] = [
        json.loads(c["msgData"]) for c in sandbox.api_calls if c["serviceCode"] == UPDATE_ORDER
    ]
    assert (
        cancel
        == again
        == {
            "language": "zh-CN",
            "orderId": "SHP-CXL-1",
            "dealType": 2,
            "waybillNoInfoList": [{"waybillType": 1, "waybillNo": number}],
        }
    )
    assert [w["status"] for w in sandbox.waybills()] == ["cancelled"]
    assert [p["kind"] for p in sandbox.pushed] == ["create", "cancel"]


def test_the_sandbox_refuses_a_cancel_sf_would_refuse(sandbox):
    adapter = adapter_of(sandbox, max_retries=0)
    number = adapter.create_waybill(request_for("SHP-CXL-2")).tracking_number
    other = adapter.create_waybill(request_for("SHP-CXL-3")).tracking_number
    call = adapter.client.call_once
    by_waybill = [{"waybillType": 1, "waybillNo": number}]

    # What the adapter used to send: the waybill list only. SF requires orderId: 6118 订单号不能为空.
    assert refusal(lambda: call(UPDATE_ORDER, {"dealType": 2, "waybillNoInfoList": by_waybill})) == "6118"
    # An orderId SF does not know: 8018 未获取到订单信息.
    assert refusal(lambda: call(UPDATE_ORDER, {"dealType": 2, "orderId": "SHP-NONE"})) == "8018"
    # A waybill that is not this order's: 8017 订单号与运单号不匹配.
    mismatched = {"dealType": 2, "orderId": "SHP-CXL-3", "waybillNoInfoList": by_waybill}
    assert refusal(lambda: call(UPDATE_ORDER, mismatched)) == "8017"
    # Nothing was cancelled by any of them.
    assert {w["waybillNo"]: w["status"] for w in sandbox.waybills()} == {number: "created", other: "created"}
    # And the adapter will not send a cancel SF must refuse.
    with pytest.raises(CarrierPermanentError) as refused:
        adapter.cancel_waybill(number)
    assert refused.value.code == "order_ref_required"


@pytest.mark.django_db
def test_a_cancelled_parcels_waybill_is_voided_by_its_order_id(sandbox, make_order, warehouse):

    carrier = Carrier.objects.create(
        code="SF",
        name="顺丰速运",
        kind=CarrierKind.SF,
        cost_first_kg=1,
        services=["standard"],
        config=sandbox.adapter_config(),
    )
    order = make_order()
    shipment = parcel_of(order)
    number = adapter_of(sandbox).create_waybill(request_for(shipment.number)).tracking_number
    Shipment.objects.filter(pk=shipment.pk).update(carrier=carrier, tracking_number=number)
    order_flows.order_cancel(order_id=order.pk, reason="buyer cancelled")

    assert shipment_cancel_waybill(shipment_id=shipment.pk) is True

    assert {w["waybillNo"]: w["status"] for w in sandbox.waybills()} == {number: "cancelled"}
    [cancel] = [json.loads(c["msgData"]) for c in sandbox.api_calls if c["serviceCode"] == UPDATE_ORDER]
    assert cancel["orderId"] == shipment.number
    assert Shipment.objects.get(pk=shipment.pk).waybill_voided_at is not None
