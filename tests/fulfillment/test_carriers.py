"""Carrier adapters against the real SF-like sandbox over HTTP, the manual carrier, and formatting."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import os
import re
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote_plus

import pytest
import requests
from django.utils import translation

from fulfillment.carriers import adapter_for
from fulfillment.carriers.base import (
    Address,
    CarrierAuthError,
    CarrierPermanentError,
    CarrierTransientError,
    TrackingEvent,
    WaybillRequest,
)
from fulfillment.carriers.formatting import customer_tracking, normalize_tracking_number
from fulfillment.carriers.manual import ManualAdapter
from fulfillment.carriers.sf import SFAdapter, sf_digest
from fulfillment.carriers.sf_sandbox import SFSandbox

T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # 2026-03-02 09:00 in Beijing
SENDER = Address(
    name="仓库 发货组",
    phone="0755-26880000",
    province="广东省",
    city="深圳市",
    district="南山区",
    address="高新南一道 8 号",
)
RECEIVER = Address(
    name="王芳",
    phone="13812345678",
    province="上海市",
    city="上海市",
    district="浦东新区",
    address="张江路 100 号 2 栋 301 室",
)
SF_NUMBER = re.compile(r"SF\d{13}")


def make_request(ref: str = "SHP-0001", **changes) -> WaybillRequest:
    fields = {
        "order_ref": ref,
        "sender": SENDER,
        "receiver": RECEIVER,
        "weight_grams": 1250,
        "service": "standard",
        "items": (("西湖龙井 250g", 2),),
    }
    return WaybillRequest(**{**fields, **changes})


@pytest.fixture(scope="module")
def running_sandbox():
    # One server for the module (stopping one costs a poll interval); each test gets it reset.
    box = SFSandbox(port=0, seed=7)
    box.start()
    yield box
    box.stop()


@pytest.fixture
def sandbox(running_sandbox):
    running_sandbox.reset()
    yield running_sandbox
    running_sandbox.reset()


@pytest.fixture
def waits() -> list[float]:
    return []


@pytest.fixture
def adapter(sandbox, waits) -> SFAdapter:
    return make_adapter(sandbox, waits)


def make_adapter(sandbox: SFSandbox, waits: list[float], **overrides) -> SFAdapter:
    adapter = adapter_for("sf", {**sandbox.adapter_config(), "timeout": 5, **overrides})
    adapter.client.sleep = waits.append  # count the backoff waits instead of sleeping them
    return adapter


def control(sandbox: SFSandbox, action: str, body: dict | None = None) -> dict:
    """One call to the sandbox's control API, over HTTP like an operator would."""
    url = f"{sandbox.base_url}/_sandbox/{action}"
    response = requests.post(url, json=body, timeout=5) if body is not None else requests.get(url, timeout=5)
    assert response.status_code == 200, response.text
    return response.json()


def set_clock(sandbox: SFSandbox, when: datetime) -> None:
    assert control(sandbox, "clock", {"now": when.isoformat()}) == {"now": when.isoformat(), "frozen": True}


def codes(events: list[TrackingEvent]) -> list[str]:
    return [event.code for event in events]


# --- Signing ----------------------------------------------------------------------------------


def test_digest_matches_an_independent_computation_and_a_fixed_vector():
    msg_data = '{"orderId":"SHP-0001","contact":"王芳 & co"}'
    timestamp, checkword = "1767225600000", "sandbox-checkword"
    expected = base64.b64encode(
        hashlib.md5(quote_plus(msg_data + timestamp + checkword).encode("utf-8")).digest()
    ).decode()
    assert sf_digest(msg_data, timestamp, checkword) == expected == "fujsb9WaMFKUQbzYJCRZPA=="


def test_wrong_checkword_or_partner_is_an_auth_error_and_creates_nothing(sandbox, waits):
    with pytest.raises(CarrierAuthError) as wrong_digest:
        make_adapter(sandbox, waits, checkword="not-the-checkword").create_waybill(make_request())
    assert wrong_digest.value.code == "A1006"
    with pytest.raises(CarrierAuthError) as wrong_partner:
        make_adapter(sandbox, waits, partner_id="SOMEONE_ELSE").create_waybill(make_request())
    assert wrong_partner.value.code == "A1004"
    assert sandbox.waybills() == []
    assert waits == []  # an auth failure is not retried


def test_missing_config_is_an_auth_error():
    with pytest.raises(CarrierAuthError) as refused:
        adapter_for("sf", {"base_url": "http://127.0.0.1:9", "partner_id": "OMS_DEMO"})
    assert refused.value.code == "credentials"
    assert "checkword" in str(refused.value)


# --- Creating waybills --------------------------------------------------------------------------


def test_create_returns_an_sf_number_and_a_handover_code(sandbox, adapter):
    set_clock(sandbox, T0)
    waybill = adapter.create_waybill(make_request(service="express"))

    assert SF_NUMBER.fullmatch(waybill.tracking_number)
    assert re.fullmatch(r"021[A-Z]{2}-\d{3}", waybill.handover_code)  # 021: Shanghai, the receiver's city
    assert waybill.label["dest_route_code"] == waybill.handover_code
    assert waybill.label["origin_code"] == "755"  # Shenzhen, the sender's city
    assert waybill.label["service_name"] == "顺丰特快"
    assert waybill.label["pro_code"] == "T4"
    [stored] = control(sandbox, "state")["waybills"]
    assert stored["orderId"] == "SHP-0001"
    assert stored["waybillNo"] == waybill.tracking_number
    assert stored["status"] == "created"
    assert stored["createdAt"] == T0.isoformat()
    assert stored["totalWeight"] == 1.25
    assert stored["cargoDetails"] == [{"name": "西湖龙井 250g", "count": 2}]
    assert stored["receiver"]["mobile"] == "13812345678"
    assert stored["sender"]["tel"] == "0755-26880000"
    # The seeded generator: after a reset the first number is the same again.
    sandbox.reset()
    assert adapter.create_waybill(make_request("SHP-0002")).tracking_number == waybill.tracking_number


def test_same_order_ref_twice_gives_the_same_waybill_and_one_waybill_in_the_sandbox(sandbox, adapter):
    first = adapter.create_waybill(make_request())
    second = adapter.create_waybill(make_request())

    assert second == first
    assert (first.recovered, second.recovered) == (False, True)
    assert len(control(sandbox, "state")["waybills"]) == 1
    pushed = control(sandbox, "pushed")["pushed"]
    # As SF: the repeat is refused (8016, duplicate order), and the adapter looks the order up.
    assert [(p["kind"], p["orderId"], p["waybillNo"], p.get("refused")) for p in pushed] == [
        ("create", "SHP-0001", first.tracking_number, None),
        ("create", "SHP-0001", first.tracking_number, "8016"),
        ("search", "SHP-0001", first.tracking_number, None),
    ]


def test_a_retry_after_a_timeout_makes_no_second_waybill(sandbox, waits):
    slow = make_adapter(sandbox, waits, timeout=0.2, max_retries=0)
    control(sandbox, "faults", {"latency_ms": 600})
    with pytest.raises(CarrierTransientError) as timed_out:
        slow.create_waybill(make_request())
    assert timed_out.value.code == "timeout"

    control(sandbox, "faults", {"latency_ms": 0})
    waybill = slow.create_waybill(make_request())

    def creates():
        return [p for p in sandbox.pushed if p["kind"] == "create"]

    deadline = time.monotonic() + 3  # the timed-out request is still being served: wait for it
    while len(creates()) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert {p["waybillNo"] for p in sandbox.pushed} == {waybill.tracking_number}
    # One of the two requests made the waybill and the other was refused as a repeat: usually the retry gets
    # there first; on a loaded machine the late first request may, and the retry then finds its waybill.
    assert sorted((p["refused"] or "") for p in creates()) == ["", "8016"]
    assert [w["waybillNo"] for w in sandbox.waybills()] == [waybill.tracking_number]


def test_unreachable_address_is_refused_permanently(sandbox, adapter, waits):
    receiver = Address("李强", "13900001111", "四川省", "成都市", "武侯区", "某山区无法送达村 1 号")
    with pytest.raises(CarrierPermanentError) as refused:
        adapter.create_waybill(make_request(receiver=receiver))
    assert refused.value.code == "8114"
    assert not isinstance(refused.value, CarrierAuthError)
    assert sandbox.waybills() == []
    assert waits == []


def test_sender_with_only_an_address_is_accepted_but_a_receiver_needs_a_phone(sandbox, adapter):
    # What the shipment flow sends for a warehouse: name and address, no split province/city, maybe no phone.
    warehouse = Address(
        name="上海仓", phone="", province="", city="", district="", address="上海市青浦区华新镇 1 号"
    )
    set_clock(sandbox, T0)
    waybill = adapter.create_waybill(make_request(sender=warehouse))
    assert SF_NUMBER.fullmatch(waybill.tracking_number)
    set_clock(sandbox, T0 + timedelta(hours=6))
    assert [
        e.location for e in adapter.query_tracking([waybill.tracking_number])[waybill.tracking_number]
    ] == [
        "始发地",
        "始发地",
    ]

    with pytest.raises(CarrierPermanentError) as refused:
        adapter.create_waybill(make_request("SHP-0002", receiver=dataclasses.replace(RECEIVER, phone="")))
    assert refused.value.code == "1010"
    assert len(sandbox.waybills()) == 1


def test_unknown_service_is_refused_before_any_call(sandbox, adapter):
    with pytest.raises(CarrierPermanentError) as refused:
        adapter.create_waybill(make_request(service="same_day"))
    assert refused.value.code == "unknown_service"
    assert sandbox.api_calls == []


# --- Transient failures -------------------------------------------------------------------------


def test_sandbox_down_is_transient(sandbox, waits):
    control(sandbox, "faults", {"down": True})
    with pytest.raises(CarrierTransientError) as down:
        make_adapter(sandbox, waits, max_retries=0).create_waybill(make_request())
    assert down.value.code == "http_503"
    assert sandbox.waybills() == []


def test_server_errors_and_rate_limits_are_transient_and_retried(sandbox, waits):
    control(sandbox, "faults", {"server_errors": 1})
    with pytest.raises(CarrierTransientError) as failed:
        make_adapter(sandbox, waits, max_retries=0).query_tracking(["SF1000000000000"])
    assert failed.value.code == "http_503"

    control(sandbox, "faults", {"rate_limit": 1})
    with pytest.raises(CarrierTransientError) as limited:
        make_adapter(sandbox, waits, max_retries=0).query_tracking(["SF1000000000000"])
    assert limited.value.code == "A1005"

    # With retries the next attempt passes, and the idempotent create still makes one waybill.
    control(sandbox, "faults", {"server_errors": 1, "rate_limit": 1})
    waybill = make_adapter(sandbox, waits, max_retries=2).create_waybill(make_request())
    assert len(waits) == 2
    assert [w["waybillNo"] for w in sandbox.waybills()] == [waybill.tracking_number]


def test_connection_refused_is_transient(waits):
    with pytest.raises(CarrierTransientError) as refused:
        adapter_for(
            "sf", {"base_url": "http://127.0.0.1:9", "partner_id": "P", "checkword": "C", "max_retries": 0}
        ).query_tracking(["SF1000000000000"])
    assert refused.value.code == "connection"


def test_malformed_answer_is_transient(sandbox, adapter, waits):
    control(sandbox, "faults", {"malformed": 1})
    with pytest.raises(CarrierTransientError) as broken:
        make_adapter(sandbox, waits, max_retries=0).query_tracking(["SF1000000000000"])
    assert broken.value.code == "invalid_json"


# --- Tracking -----------------------------------------------------------------------------------


def test_tracking_advances_with_the_sandbox_clock(sandbox, adapter):
    set_clock(sandbox, T0)
    number = adapter.create_waybill(make_request()).tracking_number

    set_clock(sandbox, T0 + timedelta(minutes=59))
    assert adapter.query_tracking([number]) == {number: []}

    set_clock(sandbox, T0 + timedelta(hours=1))
    [accepted] = adapter.query_tracking([number])[number]
    assert accepted == TrackingEvent(
        tracking_number=number,
        occurred_at=T0 + timedelta(hours=1),
        code="accepted",
        description="顺丰速运 已收取快件",
        location="深圳市",
    )

    assert control(sandbox, "clock", {"advance_hours": 33})["now"] == (T0 + timedelta(hours=34)).isoformat()
    events = adapter.query_tracking([number])[number]
    assert codes(events) == ["accepted", "in_transit", "in_transit", "out_for_delivery", "delivered"]
    assert [event.occurred_at - T0 for event in events] == [timedelta(hours=h) for h in (1, 6, 20, 30, 34)]
    assert all(event.occurred_at.tzinfo == UTC for event in events)
    assert events[2].description == "快件到达【上海市集散中心】"
    assert events[-1].location == "浦东新区"


def test_query_omits_unknown_numbers_and_splits_long_lists(sandbox, adapter):
    set_clock(sandbox, T0)
    number = adapter.create_waybill(make_request()).tracking_number
    set_clock(sandbox, T0 + timedelta(days=3))
    unknown = [f"SF9{i:012d}" for i in range(12)]

    # 13 numbers: more than one route query may hold (10), so the adapter sends two.
    found = adapter.query_tracking([*unknown, number])

    assert list(found) == [number]
    assert codes(found[number])[-1] == "delivered"
    routes_calls = [c for c in sandbox.api_calls if c["serviceCode"] == "EXP_RECE_SEARCH_ROUTES"]
    assert len(routes_calls) == 2


def test_stall_keeps_a_parcel_at_accepted_forever(sandbox, adapter):
    set_clock(sandbox, T0)
    stalled = adapter.create_waybill(make_request("SHP-STALL")).tracking_number
    moving = adapter.create_waybill(make_request("SHP-MOVING")).tracking_number
    assert control(sandbox, "faults", {"stall": [stalled]})["stall"] == [stalled]

    set_clock(sandbox, T0 + timedelta(days=10))
    found = adapter.query_tracking([stalled, moving])

    assert codes(found[stalled]) == ["accepted"]
    assert codes(found[moving])[-1] == "delivered"
    control(sandbox, "faults", {"stall": "*"})
    assert codes(adapter.query_tracking([moving])[moving]) == ["accepted"]


def test_exception_fault_gives_an_exception_event(sandbox, adapter):
    set_clock(sandbox, T0)
    number = adapter.create_waybill(make_request()).tracking_number
    control(sandbox, "faults", {"exception": [number]})

    set_clock(sandbox, T0 + timedelta(days=5))
    events = adapter.query_tracking([number])[number]

    assert codes(events) == ["accepted", "in_transit", "exception"]
    assert events[-1].occurred_at == T0 + timedelta(hours=20)
    assert "收件人地址不详" in events[-1].description


def test_faults_control_refuses_bad_values(sandbox):
    response = requests.post(f"{sandbox.base_url}/_sandbox/faults", json={"stall": 5}, timeout=5)
    assert response.status_code == 400
    response = requests.post(
        f"{sandbox.base_url}/_sandbox/faults", json={"stall": ["X"], "nope": 1}, timeout=5
    )
    assert response.status_code == 400
    assert sandbox.faults.stall == []  # nothing applied from a refused body
    response = requests.post(
        f"{sandbox.base_url}/_sandbox/clock", json={"now": "2026-03-02T09:00:00"}, timeout=5
    )
    assert response.status_code == 400  # a naive time


# --- Cancel -------------------------------------------------------------------------------------


def test_cancel_marks_the_waybill_and_later_queries_omit_it(sandbox, adapter):
    set_clock(sandbox, T0)
    number = adapter.create_waybill(make_request()).tracking_number

    adapter.cancel_waybill(number, order_ref="SHP-0001")
    adapter.cancel_waybill(number, order_ref="SHP-0001")  # again: SF answers 8037 (已消单), not an error

    [stored] = control(sandbox, "state")["waybills"]
    assert (stored["status"], stored["cancelledAt"]) == ("cancelled", T0.isoformat())
    set_clock(sandbox, T0 + timedelta(days=2))
    assert adapter.query_tracking([number]) == {}
    assert [p["kind"] for p in sandbox.pushed] == ["create", "cancel"]
    with pytest.raises(CarrierPermanentError) as reused:
        adapter.create_waybill(make_request())  # a cancelled shipment number cannot be used again
    assert reused.value.code == "8016"
    assert "could not be recovered" in reused.value.message
    assert len(sandbox.waybills()) == 1


def test_cancel_after_pickup_or_of_an_unknown_waybill_is_refused(sandbox, adapter):
    set_clock(sandbox, T0)
    number = adapter.create_waybill(make_request()).tracking_number
    set_clock(sandbox, T0 + timedelta(hours=2))

    with pytest.raises(CarrierPermanentError) as too_late:
        adapter.cancel_waybill(number, order_ref="SHP-0001")
    assert too_late.value.code == "8044"  # SF's code for "picked up" is NOT CONFIRMED
    with pytest.raises(CarrierPermanentError) as unknown:
        adapter.cancel_waybill("SF1999999999999", order_ref="SHP-9999")
    assert unknown.value.code == "8018"  # 未获取到订单信息
    assert [w["status"] for w in sandbox.waybills()] == ["created"]


# --- Manual carrier and registry ----------------------------------------------------------------


def test_manual_adapter_refuses_create_and_has_no_tracking():
    adapter = adapter_for("manual", {})
    assert isinstance(adapter, ManualAdapter)
    with pytest.raises(CarrierPermanentError) as refused:
        adapter.create_waybill(make_request())
    assert refused.value.code == "manual_carrier"
    with translation.override("en"):
        assert str(refused.value) == "This carrier has no API: scan or type the tracking number."
    assert adapter.query_tracking(["SF1234567890123"]) == {}
    assert adapter.cancel_waybill("SF1234567890123") is None


def test_unknown_carrier_kind():
    with pytest.raises(LookupError):
        adapter_for("pigeon", {})


def test_carrier_modules_import_without_django_settings():
    # The sandbox must run standalone; the adapters must not need settings to import.
    code = (
        "import sys\n"
        "import fulfillment.carriers.sf_sandbox, fulfillment.carriers.formatting\n"
        "assert not [m for m in sys.modules if m.startswith('django')], 'sandbox pulled in Django'\n"
        "import fulfillment.carriers.manual\n"
        "from fulfillment.carriers import adapter_for\n"
        "adapter_for('sf', {'base_url': 'http://127.0.0.1:9', 'partner_id': 'P', 'checkword': 'C'})\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr


# --- Formatting ---------------------------------------------------------------------------------


def test_sf_number_for_customers():
    assert customer_tracking("SF", "sf1234567890123") == (
        "SF 1234 5678 9012 3",
        "https://www.sf-express.com/chn/sc/waybill/waybill-detail/SF1234567890123",
    )
    assert customer_tracking("sf", " SF 1234-5678-9012-3 ")[0] == "SF 1234 5678 9012 3"


def test_usps_numbers_for_customers():
    assert customer_tracking("USPS", "9400100000000000000000") == (
        "9400 1000 0000 0000 0000 00",
        "https://tools.usps.com/go/TrackConfirmAction?tLabels=9400100000000000000000",
    )
    assert customer_tracking("USPS", "ea123456789us")[0] == "EA 123 456 789 US"


def test_other_carriers_for_customers():
    assert customer_tracking("YTO", "YT1234567890123") == (
        "YT 1234 5678 9012 3",
        "https://www.kuaidi100.com/chaxun?nu=YT1234567890123",
    )
    assert customer_tracking("EMS", "EA123456789CN")[0] == "EA 123 456 789 CN"
    assert customer_tracking("UPS", "1Z999AA10123456784") == (
        "1Z 999 AA1 01 2345 6784",
        "https://www.ups.com/track?tracknum=1Z999AA10123456784",
    )
    assert customer_tracking("FEDEX", "123456789012") == (
        "1234 5678 9012",
        "https://www.fedex.com/fedextrack/?trknbr=123456789012",
    )


def test_unknown_carrier_keeps_the_number_and_has_no_url():
    assert customer_tracking("PIGEON", "ab-12 34") == ("ab-12 34", "")


def test_normalize_scanned_input():
    assert normalize_tracking_number(" sf 1234-5678\t9012 3\r\n") == "SF1234567890123"
    assert normalize_tracking_number("ＳＦ１２３４\u3000５６７８－９０") == "SF1234567890"
