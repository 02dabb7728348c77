"""The PDD client and PddConnector against a real PddSandbox over HTTP: signing, windows, paging, errors, push-back."""

import hashlib
import json
import time
from datetime import UTC, datetime, timedelta

import pytest
import requests

from connectors.base import AuthError, PermanentError, TransientError
from connectors.pdd.client import PddClient, epoch_seconds, pdd_sign, response_key
from connectors.pdd.connector import CARRIER_IDS, PddConnector, carrier_id
from connectors.pdd.mapping import map_pdd_order
from connectors.registry import connector_class, sandbox_class
from connectors.sandbox.pdd import LOGISTICS_COMPANIES, PddSandbox
from tests.connectors.sandbox_fixtures import add_order

INCREMENT = "pdd.order.number.list.increment.get"
INFORMATION = "pdd.order.information.get"
T0 = datetime(2026, 3, 1, 0, 0, tzinfo=UTC)  # 2026-03-01 08:00:00 in Beijing

VECTOR_PARAMS = {
    "type": INCREMENT, "client_id": "testclient", "access_token": "testtoken", "timestamp": 1704135845,
    "data_type": "JSON", "version": "V1", "start_updated_at": 1704135600, "end_updated_at": 1704137400,
    "is_lucky_flag": 0, "order_status": 5, "refund_status": 5, "page": 1, "page_size": 100,
}


def test_signature_vector():
    assert pdd_sign(VECTOR_PARAMS, "testsecret") == "84E38BA92FF10ED3CFD9066C9DDBB0AC"  # API_FACTS §3.2 [CALC]
    # `sign` itself and empty parameters (never sent) are not signed; strings sign like numbers.
    extra = {"sign": "X", "trade_type": None, "remark": "", "page": "1"}
    assert pdd_sign({**VECTOR_PARAMS, **extra}, "testsecret") == "84E38BA92FF10ED3CFD9066C9DDBB0AC"


def test_objects_and_arrays_are_signed_as_json_text():
    data_list = [{"data_tag": "240318-422796379670125", "encrypted_data": "~AgAAAA~0~~"}]
    text = '[{"data_tag":"240318-422796379670125","encrypted_data":"~AgAAAA~0~~"}]'
    joined = "client_id" + "c" + "data_list" + text + "type" + "pdd.open.decrypt.batch"
    expected = hashlib.md5(("s" + joined + "s").encode()).hexdigest().upper()
    assert pdd_sign({"type": "pdd.open.decrypt.batch", "client_id": "c", "data_list": data_list}, "s") == expected
    assert pdd_sign({"type": "pdd.open.decrypt.batch", "client_id": "c", "data_list": text}, "s") == expected


def test_response_keys_are_looked_up():
    assert response_key(INCREMENT) == ("order_sn_increment_get_response",)
    assert response_key(INFORMATION) == ("order_info_get_response",)
    assert response_key("pdd.logistics.online.send") == ("logistics_online_send_response",)
    assert response_key("pdd.goods.quantity.update") == ("goods_quantity_update_response",)
    assert response_key("pdd.logistics.companies.get") == ("logistics_companies_get_response",)
    assert response_key("pdd.open.decrypt.batch") == ("open_decrypt_batch_response",
                                                      "open_kms_decrypt_batch_response")


def test_epoch_seconds():
    assert epoch_seconds(datetime(2024, 1, 1, 19, 0, 0, 999999, tzinfo=UTC)) == 1704135600
    assert epoch_seconds(1704135600) == 1704135600
    with pytest.raises(ValueError):
        epoch_seconds(datetime(2024, 1, 1))


def test_connector_window_settings():
    assert PddConnector.max_window == timedelta(minutes=30)
    assert PddConnector.lag == timedelta(minutes=3)
    assert PddConnector.overlap == timedelta(minutes=5)


def test_carrier_ids():
    assert {code: carrier_id(code) for code in CARRIER_IDS} == {"SF": 44, "ZTO": 115, "YTO": 85, "STO": 1,
                                                                 "YUNDA": 121, "EMS": 118}
    assert carrier_id("sf") == 44 and carrier_id("132") == 132
    assert {c["id"] for c in LOGISTICS_COMPANIES} == set(CARRIER_IDS.values())  # the sandbox knows them all
    with pytest.raises(PermanentError) as caught:
        carrier_id("DHL")
    assert caught.value.code == "unknown_carrier"


# --- Against the sandbox -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def running_sandbox():
    # One server for the module (stopping one costs half a second); each test gets it reset.
    box = PddSandbox(port=0, seed=11)
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


def make_client(sandbox: PddSandbox, waits: list[float], **overrides) -> PddClient:
    credentials = {**sandbox.connector_credentials(), **overrides}
    client = PddClient.from_credentials(credentials, timeout=5, backoff_base=0.001)
    client.sleep = waits.append  # count the waits instead of sleeping them
    return client


@pytest.fixture
def client(sandbox, waits) -> PddClient:
    return make_client(sandbox, waits)


@pytest.fixture
def connector(sandbox, client) -> PddConnector:
    return PddConnector(sandbox.connector_credentials(), client=client)


def calls(sandbox: PddSandbox, api_type: str) -> list[dict]:
    return [call["params"] for call in sandbox.api_calls if call["type"] == api_type]


def epoch(value: datetime) -> str:
    return str(int(value.timestamp()))


def test_registry_names_the_pdd_classes():
    assert connector_class("pdd") is PddConnector
    assert sandbox_class("pdd") is PddSandbox


def test_requests_carry_the_common_parameters(sandbox, client):
    order = add_order(sandbox, T0)
    assert client.order_information_get(order["order_sn"])["order_sn"] == order["order_sn"]
    (params,) = calls(sandbox, INFORMATION)
    assert set(params) == {"type", "client_id", "access_token", "timestamp", "data_type", "version", "order_sn"}
    assert (params["client_id"], params["access_token"], params["data_type"], params["version"]) == (
        "pdd-sandbox-client", "pdd-sandbox-token", "JSON", "V1")
    assert abs(int(params["timestamp"]) - time.time()) < 5  # epoch seconds


def test_poll_splits_70_minutes_into_3_windows_pages_backwards_and_yields_each_order_once(sandbox, connector):
    first = [add_order(sandbox, T0 + timedelta(seconds=5 + 7 * i)) for i in range(250)]  # all within 30 min
    boundary = add_order(sandbox, T0 + timedelta(minutes=30))  # in both the first and second window's answers
    second = [add_order(sandbox, T0 + timedelta(minutes=31 + j)) for j in range(20)]
    third = [add_order(sandbox, T0 + timedelta(minutes=61 + k)) for k in range(5)]
    add_order(sandbox, T0 - timedelta(minutes=1))  # outside the range on both sides
    add_order(sandbox, T0 + timedelta(minutes=71))
    sandbox.set_clock(None)
    expected = {o["order_sn"]: o for o in [*first, boundary, *second, *third]}

    raws = list(connector.poll(start=T0, end=T0 + timedelta(minutes=70)))

    assert sorted(raw.platform_order_id for raw in raws) == sorted(expected)
    assert len(raws) == len(expected) == 276
    increments = calls(sandbox, INCREMENT)
    windows = sorted({(c["start_updated_at"], c["end_updated_at"]) for c in increments})
    assert windows == [(epoch(T0), epoch(T0 + timedelta(minutes=30))),
                       (epoch(T0 + timedelta(minutes=30)), epoch(T0 + timedelta(minutes=60))),
                       (epoch(T0 + timedelta(minutes=60)), epoch(T0 + timedelta(minutes=70)))]
    assert all(int(end) - int(start) <= 30 * 60 for start, end in windows)
    window_one = [c for c in increments if c["start_updated_at"] == epoch(T0)]
    # A counting call, then the last page back to the first.
    assert [(c["page"], c["page_size"]) for c in window_one] == [("1", "100"), ("3", "100"), ("2", "100"),
                                                                 ("1", "100")]
    assert all((c["order_status"], c["refund_status"], c["is_lucky_flag"]) == ("5", "5", "0") for c in increments)
    later = [c["page"] for c in increments if c["start_updated_at"] != epoch(T0)]
    assert later == ["1", "1"]  # one page each: the counting call already holds it
    assert calls(sandbox, INFORMATION) == []  # the list already carries full orders
    for raw in raws:
        stored = expected[raw.platform_order_id]
        assert raw.payload == json.loads(json.dumps(stored))  # the full order, as it came over the wire
        assert raw.updated_at == datetime.strptime(stored["updated_at"], "%Y-%m-%d %H:%M:%S").replace(
            tzinfo=UTC) - timedelta(hours=8)
        assert raw.updated_at.tzinfo is UTC
        assert map_pdd_order(raw.payload).platform_order_id == raw.platform_order_id


class UpdateDuringPaging(PddSandbox):
    """Moves a page-1 order out of the window right after page 3 has been served."""

    victim = ""

    def _order_number_list_increment_get(self, params):
        response = super()._order_number_list_increment_get(params)
        if params.get("page") == "3" and self.victim:
            self.set_clock(T0 + timedelta(hours=3))
            self.update_order(self.victim, remark="已改地址")
            self.victim = ""
        return response


def test_backward_paging_misses_nothing_when_an_order_is_updated_meanwhile(waits):
    box = UpdateDuringPaging(port=0, seed=5)
    box.start()
    try:
        orders = [add_order(box, T0 + timedelta(seconds=1 + 7 * i)) for i in range(250)]
        box.victim = orders[-1]["order_sn"]  # the newest: first on page 1
        connector = PddConnector(box.connector_credentials(), client=make_client(box, waits))
        got = [raw.platform_order_id for raw in connector.poll(start=T0, end=T0 + timedelta(minutes=30))]
    finally:
        box.stop()
    # Every order still in the window is there exactly once; the moved one belongs to a later poll.
    assert sorted(got) == sorted(o["order_sn"] for o in orders[:-1])


def test_window_longer_than_30_minutes_is_a_permanent_error(client, waits):
    with pytest.raises(PermanentError) as caught:
        client.order_number_list_increment_get(start_updated_at=T0, end_updated_at=T0 + timedelta(minutes=30,
                                                                                                   seconds=1), page=1)
    assert not isinstance(caught.value, AuthError)
    assert caught.value.code == "10000"  # the sandbox's own code (NOT CONFIRMED as PDD's)
    assert "30 minutes" in caught.value.message
    assert waits == []


def test_exactly_30_minutes_is_allowed_and_empty_pages_have_no_orders(client):
    page = client.order_number_list_increment_get(start_updated_at=T0, end_updated_at=T0 + timedelta(minutes=30),
                                                  page=1)
    assert (page["total_count"], page["has_next"], page["order_sn_list"]) == (0, False, [])


def test_status_filters_are_applied(sandbox, client):
    waiting = add_order(sandbox, T0 + timedelta(minutes=1))
    shipped = add_order(sandbox, T0 + timedelta(minutes=2))
    sandbox.update_order(shipped["order_sn"], order_status=2)
    page = client.order_number_list_increment_get(start_updated_at=T0, end_updated_at=T0 + timedelta(minutes=30),
                                                  page=1, order_status=1)
    assert [o["order_sn"] for o in page["order_sn_list"]] == [waiting["order_sn"]]


def test_rate_limit_burst_is_retried_with_backoff(sandbox, client, waits):
    order = add_order(sandbox, T0)
    sandbox.faults.rate_limit = 3
    assert client.order_information_get(order["order_sn"])["order_sn"] == order["order_sn"]
    assert len(waits) == 3
    assert 0.0005 <= waits[0] <= 0.001 and 0.001 <= waits[1] <= 0.002 and 0.002 <= waits[2] <= 0.004


def test_rate_limit_answer_has_pdds_shape(sandbox):
    sandbox.faults.rate_limit = 1
    body = requests.post(sandbox.connector_credentials()["base_url"], data={}, timeout=5).json()
    assert body["error_response"]["error_code"] == 52101
    assert body["error_response"]["error_msg"] == "API rate-limited"


def test_persistent_service_unavailable_ends_in_transient_error(sandbox, client, waits):
    sandbox.faults.server_errors = 100
    with pytest.raises(TransientError) as caught:
        client.order_information_get("240318-422796379670125")
    assert caught.value.code == "52103"
    assert "service unavailable" in caught.value.message and "gave up after 5 retries" in caught.value.message
    assert len(waits) == 5


def test_malformed_body_is_retried(sandbox, client, waits):
    order = add_order(sandbox, T0)
    sandbox.faults.malformed = 1
    assert client.order_information_get(order["order_sn"])["order_sn"] == order["order_sn"]
    assert len(waits) == 1


def test_gateway_down_ends_in_transient_error(sandbox, client, waits):
    sandbox.faults.down = True
    before = sandbox.request_count
    with pytest.raises(TransientError) as caught:
        client.order_information_get("240318-422796379670125")
    assert caught.value.code == "http_503"
    assert (len(waits), sandbox.request_count - before) == (5, 6)


def test_timeouts_are_retried_then_transient(sandbox, waits):
    client = make_client(sandbox, waits)
    client.timeout, client.max_retries = 0.05, 1
    sandbox.faults.latency_ms = 150
    with pytest.raises(TransientError) as caught:
        client.order_information_get("240318-422796379670125")
    assert caught.value.code == "timeout"
    assert len(waits) == 1
    time.sleep(0.2)  # let the abandoned requests finish before the shared sandbox is reset


def test_connection_refused_is_transient(waits):
    box = PddSandbox(port=0)
    box.start()
    credentials = box.connector_credentials()
    box.stop()  # nothing listens on that port any more
    client = PddClient.from_credentials(credentials, timeout=2, backoff_base=0.001, max_retries=2)
    client.sleep = waits.append
    with pytest.raises(TransientError):
        client.order_information_get("240318-422796379670125")
    assert len(waits) == 2


def test_expired_token_is_an_auth_error_that_says_refresh(sandbox, client, waits):
    order = add_order(sandbox, T0)
    sandbox.expire_token()
    with pytest.raises(AuthError) as caught:
        client.order_information_get(order["order_sn"])
    assert caught.value.code == "10019"
    assert "refresh the token" in caught.value.message
    assert waits == []


def test_wrong_token_is_answered_like_an_expired_one(sandbox, waits):
    with pytest.raises(AuthError) as caught:
        make_client(sandbox, waits, access_token="someone-else").order_information_get("240318-422796379670125")
    assert caught.value.code == "10019"


def test_wrong_secret_is_a_signature_error_not_auth(sandbox, waits):
    with pytest.raises(PermanentError) as caught:
        make_client(sandbox, waits, client_secret="not-the-secret").order_information_get("240318-422796379670125")
    assert not isinstance(caught.value, AuthError)
    assert caught.value.code == "10018"
    assert waits == []


def test_wrong_client_id_is_refused(sandbox, waits):
    with pytest.raises(PermanentError) as caught:
        make_client(sandbox, waits, client_id="other").order_information_get("240318-422796379670125")
    assert caught.value.code == "10016"


def test_missing_credentials_are_an_auth_error():
    with pytest.raises(AuthError, match="access_token"):
        PddConnector({"client_id": "c", "client_secret": "s"}).fetch_order("240318-422796379670125")


def test_sandbox_checks_the_timestamp(sandbox):
    order = add_order(sandbox, T0)
    url = sandbox.connector_credentials()["base_url"]

    def post(timestamp: str) -> dict:
        params = {"type": INFORMATION, "client_id": sandbox.client_id, "access_token": sandbox.access_token,
                  "timestamp": timestamp, "data_type": "JSON", "order_sn": order["order_sn"]}
        params["sign"] = pdd_sign(params, sandbox.client_secret)
        return requests.post(url, data=params, timeout=5).json()

    assert post(str(int(time.time())))["order_info_get_response"]["order_info"]["order_sn"] == order["order_sn"]
    assert post(str(int(time.time()) - 11 * 60))["error_response"]["error_code"] == 10020
    assert post("2026-03-01 08:00:00")["error_response"]["error_code"] == 10020


def test_unknown_api_is_refused(client):
    with pytest.raises(PermanentError) as caught:
        client.call("pdd.order.does.not.exist")
    assert caught.value.code == "10001"


def test_fetch_order(sandbox, connector):
    order = add_order(sandbox, T0)
    raw = connector.fetch_order(order["order_sn"])
    assert (raw.platform_order_id, raw.updated_at, raw.payload) == (order["order_sn"], T0,
                                                                     json.loads(json.dumps(order)))
    with pytest.raises(PermanentError) as caught:
        connector.fetch_order("260301-000000000000001")
    assert caught.value.code == "50000" and "order.not.exist" in caught.value.message
    with pytest.raises(PermanentError) as caught:
        connector.fetch_order("not-an-order")
    assert caught.value.code == "invalid_order_sn"


def test_logistics_online_send_is_recorded_and_the_order_ships(sandbox, client, connector):
    order = add_order(sandbox, T0, group_pending=False)
    before = order["updated_at"]

    assert client.logistics_online_send(order_sn=order["order_sn"], logistics_id=44,
                                        tracking_number="SF1234567890")["is_success"] is True

    assert [{k: v for k, v in push.items() if k != "at"} for push in sandbox.pushed] == [
        {"kind": "shipment", "order_sn": order["order_sn"], "logistics_id": 44, "tracking_number": "SF1234567890"}]
    stored = sandbox.orders[order["order_sn"]]
    assert (stored["order_status"], stored["logistics_id"], stored["tracking_number"]) == (2, 44, "SF1234567890")
    assert stored["updated_at"] > before and stored["shipping_time"] == stored["updated_at"]
    unified = map_pdd_order(connector.fetch_order(order["order_sn"]).payload)
    assert unified.status == "shipped"
    assert unified.receiver.encrypted == {} and unified.receiver.name == order["receiver_name_mask"]

    with pytest.raises(PermanentError) as caught:  # already shipped
        connector.ship(platform_order_id=order["order_sn"], tracking_number="SF2", carrier_code="SF")
    assert "order.cannot.ship" in caught.value.message
    assert len(sandbox.pushed) == 1


def test_group_pending_orders_ship_only_after_the_group_forms(sandbox, connector):
    order = add_order(sandbox, T0, group_pending=True)
    assert map_pdd_order(connector.fetch_order(order["order_sn"]).payload).status == "group_pending"
    with pytest.raises(PermanentError):
        connector.ship(platform_order_id=order["order_sn"], tracking_number="ZT1", carrier_code="ZTO")
    sandbox.form_group(order["order_sn"])
    assert map_pdd_order(connector.fetch_order(order["order_sn"]).payload).status == "paid"
    connector.ship(platform_order_id=order["order_sn"], tracking_number="ZT1", carrier_code="ZTO")
    assert sandbox.pushed[-1]["logistics_id"] == 115


def test_ship_covers_whole_orders_only(sandbox, connector):
    order = add_order(sandbox, T0, lines=2, group_pending=False)
    line_ids = [f"{item['goods_id']}:{item['sku_id']}" for item in order["item_list"]]
    with pytest.raises(PermanentError) as caught:
        connector.ship(platform_order_id=order["order_sn"], tracking_number="YT1", carrier_code="YTO",
                       line_ids=line_ids[:1])
    assert caught.value.code == "split_unsupported"
    assert sandbox.pushed == []
    connector.ship(platform_order_id=order["order_sn"], tracking_number="YT1", carrier_code="YTO", line_ids=line_ids)
    assert sandbox.pushed[-1]["logistics_id"] == 85


def test_shipment_is_not_repeated_after_an_ambiguous_failure(sandbox, client, waits):
    order = add_order(sandbox, T0, group_pending=False)
    sandbox.faults.server_errors = 1  # 52103: the send may or may not have happened
    with pytest.raises(TransientError):
        client.logistics_online_send(order_sn=order["order_sn"], logistics_id=44, tracking_number="SF1")
    assert (waits, sandbox.pushed) == ([], [])
    sandbox.faults.rate_limit = 1  # 52101 proves the gateway refused it: safe to retry
    client.logistics_online_send(order_sn=order["order_sn"], logistics_id=44, tracking_number="SF1")
    assert len(waits) == 1 and len(sandbox.pushed) == 1


def test_unknown_carrier_never_calls_the_platform(sandbox, connector):
    order = add_order(sandbox, T0, group_pending=False)
    sandbox.api_calls.clear()
    with pytest.raises(PermanentError):
        connector.ship(platform_order_id=order["order_sn"], tracking_number="X", carrier_code="DHL")
    assert sandbox.api_calls == []


def test_goods_quantity_update_is_recorded(sandbox, client, connector):
    entry = sandbox.catalog[0]
    answer = client.goods_quantity_update(goods_id=entry["goods_id"], sku_id=entry["sku_id"], quantity=37)
    assert answer["is_success"] is True
    connector.set_stock(platform_product_id=str(entry["goods_id"]), sku=entry["outer_id"], quantity=12)
    connector.set_stock(platform_product_id=str(entry["goods_id"]), platform_sku_id=str(entry["sku_id"]),
                        sku=entry["outer_id"], quantity=9)
    assert [{k: v for k, v in push.items() if k != "at"} for push in sandbox.pushed] == [
        {"kind": "stock", "goods_id": entry["goods_id"], "sku_id": str(entry["sku_id"]), "outer_id": None,
         "quantity": 37, "update_type": 1},
        {"kind": "stock", "goods_id": entry["goods_id"], "sku_id": None, "outer_id": entry["outer_id"],
         "quantity": 12, "update_type": 1},
        {"kind": "stock", "goods_id": entry["goods_id"], "sku_id": str(entry["sku_id"]), "outer_id": None,
         "quantity": 9, "update_type": 1}]
    assert sandbox.stock[(entry["goods_id"], str(entry["sku_id"]))] == 9
    assert [c["update_type"] for c in calls(sandbox, "pdd.goods.quantity.update")] == ["1", "1", "1"]


def test_goods_quantity_update_refusals(sandbox, client, waits):
    entry = sandbox.catalog[0]
    with pytest.raises(PermanentError) as caught:
        client.goods_quantity_update(goods_id=1, sku_id=1, quantity=1)
    assert caught.value.code == "50000" and "goods.not.exist" in caught.value.message
    with pytest.raises(PermanentError) as caught:
        client.goods_quantity_update(goods_id=entry["goods_id"], outer_id="NO-SUCH-SKU", quantity=1)
    assert "sku.not.exist" in caught.value.message
    with pytest.raises(PermanentError) as caught:  # refused before any request
        client.goods_quantity_update(goods_id=entry["goods_id"], quantity=1)
    assert caught.value.code == "invalid_parameter"
    assert (sandbox.pushed, waits) == ([], [])


def test_incremental_stock_change_is_not_repeated_after_an_ambiguous_failure(sandbox, client, waits):
    entry = sandbox.catalog[0]
    sandbox.faults.server_errors = 1
    with pytest.raises(TransientError):
        client.goods_quantity_update(goods_id=entry["goods_id"], sku_id=entry["sku_id"], quantity=5, update_type=2)
    assert (waits, sandbox.pushed) == ([], [])
    sandbox.faults.server_errors = 1  # a full overwrite may be repeated safely
    client.goods_quantity_update(goods_id=entry["goods_id"], sku_id=entry["sku_id"], quantity=5, update_type=1)
    assert len(waits) == 1 and len(sandbox.pushed) == 1


def test_pushes_are_not_supported(connector):
    with pytest.raises(PermanentError, match="WebSocket message service; orders arrive by polling"):
        connector.parse_webhook(headers={}, body=b"{}")


def test_update_order_moves_updated_at_strictly_forward(sandbox):
    order = add_order(sandbox, T0)
    sandbox.update_order(order["order_sn"], refund_status=2, after_sales_status=2)  # same clock: one second later
    assert sandbox.orders[order["order_sn"]]["updated_at"] == "2026-03-01 08:00:01"
    sandbox.form_group(order["order_sn"])
    assert sandbox.orders[order["order_sn"]]["updated_at"] == "2026-03-01 08:00:02"
    assert map_pdd_order(sandbox.orders[order["order_sn"]]).refund_requested is True


def test_control_api_generates_orders(sandbox):
    base = sandbox.base_url
    ids = requests.post(f"{base}/_sandbox/orders", json={"generate": 3, "push": False}, timeout=5).json()["ids"]
    assert sorted(ids) == sorted(sandbox.orders)
    assert requests.get(f"{base}/_sandbox/state", timeout=5).json()["orders"] == 3
