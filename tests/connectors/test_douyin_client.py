"""The Douyin client and DouyinConnector against a real DouyinSandbox over HTTP: signing, paging, errors,
push-back, and pushes verified by parse_webhook (also end to end through the webhook endpoint)."""

import json
import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from connectors.base import AuthError, PermanentError, SignatureError, TransientError
from connectors.douyin.client import DouyinClient, canonical_param_json, douyin_sign, event_sign
from connectors.douyin.connector import ACK, CARRIER_CODES, DouyinConnector
from connectors.douyin.mapping import map_douyin_order
from connectors.registry import connector_class, sandbox_class
from connectors.sandbox.douyin import SHANGHAI, DouyinSandbox
from pipeline import channel
from tests.conftest import channel_store
from tests.connectors.sandbox_fixtures import add_order

T0 = datetime(2026, 3, 1, 0, 0, tzinfo=UTC)  # 08:00 in Beijing
SEARCH = "order.searchList"


# --- Signatures (API_FACTS §4.2 and §4.7 vectors) ---------------------------------------------------


@pytest.mark.parametrize(("sign_method", "expected"), [
    ("md5", "a84d3597bbb7aaeb0540d1022623165c"),
    ("hmac-sha256", "8a5350b8fdacaa753c0885ab9859d382a31de4add09c6943c1d34298bd2165f1"),
])
def test_request_signature_vectors(sign_method, expected):
    param_json = canonical_param_json({"size": 100, "page": 0})
    assert param_json == '{"page":0,"size":100}'
    assert douyin_sign(app_key="appkey123", secret="secret123", method=SEARCH, param_json=param_json,
                       timestamp=1800000000, sign_method=sign_method) == expected
    assert douyin_sign(app_key="appkey123", secret="secret123", method=SEARCH, param_json=param_json,
                       timestamp="1800000000", sign_method=sign_method) == expected


def test_hmac_sha256_is_the_default_and_unknown_methods_are_refused():
    assert douyin_sign(app_key="appkey123", secret="secret123", method=SEARCH, param_json='{"page":0,"size":100}',
                       timestamp=1800000000).startswith("8a5350b8")
    with pytest.raises(ValueError):
        douyin_sign(app_key="k", secret="s", method=SEARCH, param_json="{}", timestamp=1, sign_method="sha1")


def test_push_signature_vector():
    body = b'[{"tag":"100","msg_id":"1","data":"{}"}]'
    assert event_sign("testappkey", body, "testsecret") == "4d8c32ff053d815af878f594f728690c"
    assert event_sign("testappkey", body.decode(), "testsecret") == "4d8c32ff053d815af878f594f728690c"


def test_canonical_param_json_sorts_recursively_and_keeps_text_and_numbers():
    params = {"size": 100, "b": {"d": 1, "c": [{"z": True, "a": "龙井 <&>"}]}, "a": 1.5, "n": None}
    assert canonical_param_json(params) == '{"a":1.5,"b":{"c":[{"a":"龙井 <&>","z":true}],"d":1},"n":null,"size":100}'
    assert canonical_param_json({}) == canonical_param_json(None) == "{}"


# --- Against the sandbox -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def running_sandbox():
    # One server for the module; each test gets it reset.
    box = DouyinSandbox(port=0, seed=11)
    box.start()
    yield box
    box.stop()


@pytest.fixture
def sandbox(running_sandbox):
    running_sandbox.reset()
    running_sandbox.webhook_url = ""
    yield running_sandbox
    running_sandbox.reset()
    running_sandbox.webhook_url = ""


@pytest.fixture
def waits() -> list[float]:
    return []


def make_client(sandbox: DouyinSandbox, waits: list[float], **overrides) -> DouyinClient:
    credentials = {**sandbox.connector_credentials(), **overrides}
    client = DouyinClient.from_credentials(credentials, timeout=5, backoff_base=0.001)
    client.sleep = waits.append  # count the waits instead of sleeping them
    return client


@pytest.fixture
def client(sandbox, waits) -> DouyinClient:
    return make_client(sandbox, waits)


@pytest.fixture
def connector(sandbox, client) -> DouyinConnector:
    return DouyinConnector(sandbox.connector_credentials(), client=client)


def searches(sandbox: DouyinSandbox) -> list[dict]:
    return [json.loads(call["body"]) for call in sandbox.api_calls if call["method"] == SEARCH]


def set_faults(sandbox: DouyinSandbox, **faults) -> None:
    response = requests.post(f"{sandbox.base_url}/_sandbox/faults", json=faults, timeout=5)
    assert response.status_code == 200


def raw_call(sandbox: DouyinSandbox, method: str, body: str, *, timestamp: str | None = None,
             sign_method: str = "hmac-sha256", sign: str | None = None, token: str | None = None) -> dict:
    """One hand-made gateway request (to check what the sandbox accepts and refuses)."""
    timestamp = timestamp or str(int(datetime.now(UTC).timestamp()))
    query = {"app_key": sandbox.app_key, "method": method, "timestamp": timestamp, "v": "2",
             "sign_method": sign_method, "access_token": token or sandbox.access_token,
             "sign": sign or douyin_sign(app_key=sandbox.app_key, secret=sandbox.app_secret, method=method,
                                         param_json=body, timestamp=timestamp, sign_method=sign_method)}
    response = requests.post(f"{sandbox.base_url}/{method.replace('.', '/')}", params=query,
                             data=body.encode(), headers={"Content-Type": "application/json"}, timeout=5)
    assert response.status_code == 200
    return response.json()


def test_registry_names_the_douyin_classes():
    assert connector_class("douyin") is DouyinConnector
    assert sandbox_class("douyin") is DouyinSandbox
    assert (DouyinConnector.max_window, DouyinConnector.lag, DouyinConnector.overlap) == (
        timedelta(days=1), timedelta(0), timedelta(minutes=5))


def test_requests_carry_the_documented_query_body_and_headers(sandbox, client):
    data = client.order_search_list(update_time_start=T0, update_time_end=T0 + timedelta(hours=1), page=0)
    assert data == {"page": 0, "size": 100, "total": 0, "shop_order_list": []}
    [call] = sandbox.api_calls
    assert call["path"] == "/order/searchList"
    assert set(call["query"]) == {"app_key", "method", "timestamp", "v", "sign_method", "access_token"}
    assert call["query"]["method"] == SEARCH and call["query"]["v"] == "2"
    assert call["query"]["sign_method"] == "hmac-sha256"
    assert abs(int(call["query"]["timestamp"]) - datetime.now(UTC).timestamp()) < 60  # epoch seconds
    assert call["headers"]["x-open-no-old-err-code"] == "1"
    assert call["headers"]["content-type"].startswith("application/json")
    start = int(T0.timestamp())
    assert call["body"] == (f'{{"order_by":"update_time","page":0,"size":100,"update_time_end":{start + 3600},'
                            f'"update_time_start":{start}}}')


def test_sandbox_accepts_legacy_timestamps_and_md5(sandbox):
    add_order(sandbox, T0)
    legacy = datetime.now(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")
    answer = raw_call(sandbox, SEARCH, '{"page":0,"size":10}', timestamp=legacy, sign_method="md5")
    assert answer["code"] == 10000 and answer["msg"] == "success" and answer["data"]["total"] == 1
    assert {"sub_code", "sub_msg", "log_id"} <= set(answer)


@pytest.mark.parametrize(("kwargs", "body", "sub_code"), [
    ({"sign": "0" * 64}, '{"page":0,"size":10}', "isv.signature-invalid"),
    ({"timestamp": str(int((datetime.now(UTC) - timedelta(minutes=11)).timestamp()))}, '{"page":0,"size":10}',
     "isv.timestamp-invalid"),
    ({"timestamp": "yesterday"}, '{"page":0,"size":10}', "isv.timestamp-invalid"),
    ({}, '{"size": 10, "page": 0}', "isv.parameter-format-invalid"),  # signed, but not canonical
    ({}, "[1]", "isv.parameter-format-invalid"),
    ({"token": "someone-else"}, '{"page":0,"size":10}', "isv.access-token-no-existed"),
])
def test_sandbox_refuses_bad_calls_with_40003(sandbox, kwargs, body, sub_code):
    answer = raw_call(sandbox, SEARCH, body, **kwargs)
    assert (answer["code"], answer["sub_code"]) == (40003, sub_code)


def test_sandbox_checks_page_size_and_paths(sandbox):
    assert raw_call(sandbox, SEARCH, '{"page":0,"size":101}')["code"] == 40004
    assert raw_call(sandbox, SEARCH, '{"page":-1,"size":10}')["code"] == 40004
    response = requests.post(f"{sandbox.base_url}/order/nothing", timeout=5)
    assert response.status_code == 404


def test_wrong_secret_is_an_auth_error_without_retries(sandbox, waits):
    client = make_client(sandbox, waits, app_secret="not-the-secret")
    with pytest.raises(AuthError) as caught:
        client.order_detail("6900000000000000001")
    assert (caught.value.code, caught.value.sub_code) == ("40003", "isv.signature-invalid")
    assert waits == []


def test_expired_token_is_an_auth_error_without_retries(sandbox, client, waits):
    order = add_order(sandbox, T0)
    sandbox.expire_token()
    with pytest.raises(AuthError) as caught:
        client.order_detail(order["order_id"])
    assert (caught.value.code, caught.value.sub_code) == ("40003", "isv.access-token-expired")
    assert "log_id" in caught.value.message
    assert waits == []


def test_missing_credentials_are_an_auth_error():
    with pytest.raises(AuthError, match="access_token"):
        DouyinClient.from_credentials({"app_key": "k", "app_secret": "s"})
    with pytest.raises(AuthError):
        _ = DouyinConnector({"app_key": "k"}).client


# --- Polling ------------------------------------------------------------------------------------------


def test_poll_reads_every_page_once_from_the_last_back_to_page_0(sandbox, connector):
    inside = [add_order(sandbox, T0 + timedelta(seconds=10 * i)) for i in range(250)]
    add_order(sandbox, T0 - timedelta(seconds=1))
    add_order(sandbox, T0 + timedelta(hours=1))  # the end is exclusive: it belongs to the next window
    sandbox.set_clock(None)

    raws = list(connector.poll(start=T0, end=T0 + timedelta(hours=1)))

    assert sorted(raw.platform_order_id for raw in raws) == sorted(order["order_id"] for order in inside)
    # Page 0 tells the total; then the last page back to page 0 (pages are 0-based, 100 a page).
    assert [(body["page"], body["size"], body["order_by"]) for body in searches(sandbox)] == [
        (0, 100, "update_time"), (2, 100, "update_time"), (1, 100, "update_time"), (0, 100, "update_time")]
    stored = {order["order_id"]: order for order in inside}
    for raw in raws:
        assert raw.updated_at == datetime.fromtimestamp(stored[raw.platform_order_id]["update_time"], UTC)
        assert raw.updated_at.tzinfo is UTC
        assert raw.payload == stored[raw.platform_order_id]


def test_an_order_updated_while_paging_does_not_push_another_past_the_reader(sandbox, connector, client):
    inside = [add_order(sandbox, T0 + timedelta(seconds=10 * i)) for i in range(250)]
    newest = inside[-1]["order_id"]
    real = client.order_search_list
    calls = []

    def search_then_update(**kwargs):
        data = real(**kwargs)
        calls.append(kwargs["page"])
        if len(calls) == 1:
            # After page 0: the newest order changes and leaves the window; everything after it moves
            # one place forward. A reader going 0, 1, 2 would now miss the order that slid onto page 0.
            sandbox.set_clock(T0 + timedelta(hours=2))
            sandbox.update_order(newest, seller_words="改发顺丰")
        return data

    client.order_search_list = search_then_update
    raws = list(connector.poll(start=T0, end=T0 + timedelta(hours=1)))
    assert sorted(raw.platform_order_id for raw in raws) == sorted(order["order_id"] for order in inside)
    assert len(raws) == 250


def test_poll_splits_long_spans_into_one_day_windows(sandbox, connector):
    first = add_order(sandbox, T0 + timedelta(hours=3))
    boundary = add_order(sandbox, T0 + timedelta(days=1))
    second = add_order(sandbox, T0 + timedelta(days=1, hours=5))
    sandbox.set_clock(None)
    raws = list(connector.poll(start=T0, end=T0 + timedelta(days=2)))
    # The boundary order is in both windows' answers (inclusive bounds) and yielded once.
    assert sorted(raw.platform_order_id for raw in raws) == sorted(
        [first["order_id"], boundary["order_id"], second["order_id"]])
    day = 86400
    start = int(T0.timestamp())
    assert [(body["update_time_start"], body["update_time_end"]) for body in searches(sandbox)] == [
        (start, start + day), (start + day, start + 2 * day)]


def test_fetch_order_reads_the_detail(sandbox, connector):
    order = add_order(sandbox, T0)
    raw = connector.fetch_order(order["order_id"])
    assert raw.payload == order and raw.updated_at == T0
    assert map_douyin_order(raw.payload).platform_order_id == order["order_id"]
    with pytest.raises(PermanentError) as caught:
        connector.fetch_order("6900000000000000001")
    assert caught.value.code == "50002"
    with pytest.raises(PermanentError) as caught:
        connector.fetch_order("#1001")
    assert caught.value.code == "invalid_id"


# --- Errors and retries ---------------------------------------------------------------------------


def test_rate_limited_answer_has_the_documented_shape(sandbox):
    set_faults(sandbox, rate_limit=1)
    answer = raw_call(sandbox, SEARCH, '{"page":0,"size":10}')
    assert (answer["code"], answer["msg"]) == (60000, "触发限流，请稍后重试")


def test_a_burst_of_rate_limits_is_retried_with_backoff(sandbox, connector, waits):
    order = add_order(sandbox, T0)
    set_faults(sandbox, rate_limit=3)
    assert connector.fetch_order(order["order_id"]).platform_order_id == order["order_id"]
    assert len(waits) == 3
    assert all(0.001 * 2 ** i / 2 <= wait <= 0.001 * 2 ** i for i, wait in enumerate(waits))


def test_rate_limit_beyond_max_retries_is_transient(sandbox, client, waits):
    set_faults(sandbox, rate_limit=10)
    with pytest.raises(TransientError) as caught:
        client.order_detail("6900000000000000001")
    assert caught.value.code == "60000" and "gave up after 5 retries" in caught.value.message
    assert len(waits) == 5


def test_persistent_service_errors_end_in_a_transient_error(sandbox, client, waits):
    set_faults(sandbox, server_errors=50)
    with pytest.raises(TransientError) as caught:
        client.order_search_list(update_time_start=T0, update_time_end=T0 + timedelta(hours=1), page=0)
    assert (caught.value.code, caught.value.sub_code) == ("20000", "isp.service-error")
    # Jittered exponential backoff: attempt n waits between half and all of base × 2^n.
    assert len(waits) == 5
    assert all(0.001 * 2 ** i / 2 <= wait <= 0.001 * 2 ** i for i, wait in enumerate(waits))


def test_malformed_bodies_and_a_down_gateway_are_transient(sandbox, client, waits):
    set_faults(sandbox, malformed=2)
    assert client.order_search_list(update_time_start=T0, update_time_end=T0, page=0)["total"] == 0
    assert len(waits) == 2
    set_faults(sandbox, down=True)
    with pytest.raises(TransientError) as caught:
        client.order_search_list(update_time_start=T0, update_time_end=T0, page=0)
    assert caught.value.code == "http_503"


def test_connection_refused_is_transient(waits):
    with ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler) as closed:
        port = closed.server_address[1]
    client = DouyinClient(base_url=f"http://127.0.0.1:{port}", app_key="k", app_secret="s", access_token="t",
                          timeout=2, max_retries=2, backoff_base=0.001, sleep=waits.append)
    with pytest.raises(TransientError):
        client.order_detail("6900000000000000001")
    assert len(waits) == 2


# --- Push-back --------------------------------------------------------------------------------------


def test_ship_calls_logistics_add_and_the_order_ships(sandbox, connector):
    order = add_order(sandbox, T0, status=2)
    sandbox.set_clock(T0 + timedelta(minutes=30))
    result = connector.ship(platform_order_id=order["order_id"], tracking_number="SF1234567890123",
                            carrier_code="sf")
    assert result["company_code"] == "shunfeng"
    assert [{k: v for k, v in push.items() if k != "at"} for push in sandbox.pushed] == [
        {"kind": "shipment", "order_id": order["order_id"], "company_code": "shunfeng",
         "logistics_code": "SF1234567890123"}]
    raw = connector.fetch_order(order["order_id"])
    assert map_douyin_order(raw.payload).status == "shipped"
    assert raw.updated_at == T0 + timedelta(minutes=30)
    assert raw.payload["logistics_info"][0]["tracking_no"] == "SF1234567890123"


def test_ship_again_after_a_lost_answer_confirms_instead_of_failing(sandbox, connector):
    order = add_order(sandbox, T0, status=2)
    connector.ship(platform_order_id=order["order_id"], tracking_number="ZTO778899", carrier_code="ZTO")
    again = connector.ship(platform_order_id=order["order_id"], tracking_number="ZTO778899", carrier_code="ZTO")
    assert again["already_shipped"] is True
    assert len(sandbox.pushed) == 1
    with pytest.raises(PermanentError) as caught:  # shipped with another number: a real conflict
        connector.ship(platform_order_id=order["order_id"], tracking_number="ZTO000000", carrier_code="ZTO")
    assert caught.value.code == "50002"


def test_logistics_add_is_not_retried_after_an_ambiguous_failure(sandbox, connector, waits):
    order = add_order(sandbox, T0, status=2)
    set_faults(sandbox, server_errors=1)
    with pytest.raises(TransientError):
        connector.ship(platform_order_id=order["order_id"], tracking_number="YT100", carrier_code="YTO")
    assert waits == [] and sandbox.pushed == []
    set_faults(sandbox, rate_limit=1)  # refused before running: safe to retry at once
    connector.ship(platform_order_id=order["order_id"], tracking_number="YT100", carrier_code="YTO")
    assert len(waits) == 1 and [push["company_code"] for push in sandbox.pushed] == ["yuantong"]


def test_ship_refuses_partial_shipments_unpaid_orders_and_unknown_carriers(sandbox, connector):
    order = add_order(sandbox, T0, status=2, lines=2)
    with pytest.raises(PermanentError, match="partial"):
        connector.ship(platform_order_id=order["order_id"], tracking_number="1", carrier_code="SF",
                       line_ids=[order["sku_order_list"][0]["order_id"]])
    with pytest.raises(PermanentError) as caught:
        connector.ship(platform_order_id=order["order_id"], tracking_number="1", carrier_code="NOPE")
    assert caught.value.code == "40004"
    unpaid = add_order(sandbox, T0, status=1)
    with pytest.raises(PermanentError) as caught:
        connector.ship(platform_order_id=unpaid["order_id"], tracking_number="1", carrier_code="SF")
    assert caught.value.code == "50002"
    assert sandbox.pushed == []
    assert {"SF", "ZTO", "YTO", "STO", "YUNDA", "EMS"} <= set(CARRIER_CODES)


def test_a_store_can_override_carrier_codes(sandbox, client):
    connector = DouyinConnector({**sandbox.connector_credentials(), "carrier_codes": {"JD": "jd"}}, client=client)
    assert connector.company_code("jd") == "jd" and connector.company_code("SF") == "shunfeng"


def test_set_stock_calls_sync_stock_with_an_absolute_number(sandbox, connector):
    entry = sandbox.sku("TEA-LJ-250G")
    connector.set_stock(platform_product_id=str(entry["product_id"]), quantity=42,
                        platform_sku_id=str(entry["sku_id"]))
    connector.set_stock(platform_product_id=str(entry["product_id"]), quantity=0, sku="TEA-LJ-250G")
    assert [{k: v for k, v in push.items() if k != "at"} for push in sandbox.pushed] == [
        {"kind": "stock", "sku_id": entry["sku_id"], "code": None, "product_id": entry["product_id"],
         "stock_num": 42, "incremental": False},
        {"kind": "stock", "sku_id": None, "code": "TEA-LJ-250G", "product_id": entry["product_id"],
         "stock_num": 0, "incremental": False},
    ]
    assert sandbox.stock == {entry["sku_id"]: 0}
    body = json.loads([call for call in sandbox.api_calls if call["method"] == "sku.syncStock"][0]["body"])
    assert body == {"incremental": False, "product_id": entry["product_id"], "sku_id": entry["sku_id"],
                    "stock_num": 42}


def test_set_stock_of_an_unknown_sku_is_permanent(sandbox, connector):
    with pytest.raises(PermanentError) as caught:
        connector.set_stock(platform_product_id="3500000000000000001", quantity=1, sku="NO-SUCH-SKU")
    assert caught.value.code == "50002"
    with pytest.raises(PermanentError):
        connector.set_stock(platform_product_id="3500000000000000001", quantity=1)
    assert sandbox.pushed == []


# --- Pushes -----------------------------------------------------------------------------------------


class Receiver:
    """A tiny HTTP endpoint that stores every push it gets (headers as sent, raw body) and acks like the hub."""

    def __init__(self):
        self.deliveries: list[tuple[dict, bytes]] = []
        self.changed = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver.changed:
                    receiver.deliveries.append((dict(self.headers.items()), body))
                    receiver.changed.notify_all()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(ACK)))
                self.end_headers()
                self.wfile.write(ACK.encode())

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhooks/douyin/dy/"

    def wait_for(self, count: int, timeout: float = 5.0) -> list[tuple[dict, bytes]]:
        with self.changed:
            assert self.changed.wait_for(lambda: len(self.deliveries) >= count, timeout), self.deliveries
            return list(self.deliveries)


@pytest.fixture
def receiver():
    made = Receiver()
    yield made
    made.server.shutdown()
    made.server.server_close()


def test_sandbox_pushes_verify_with_parse_webhook(sandbox, receiver, connector):
    sandbox.webhook_url = receiver.url
    sandbox.set_clock(T0)
    order = sandbox.generate(1)[0]
    sandbox.set_clock(T0 + timedelta(minutes=3))
    sandbox.update_order(order["order_id"], order_status=4, cancel_reason="不想要了")

    (created_headers, created), (cancelled_headers, cancelled) = receiver.wait_for(2)
    assert created_headers["app-id"] == sandbox.app_key
    assert created_headers["event-sign"] == event_sign(sandbox.app_key, created, sandbox.app_secret)
    [first] = connector.parse_webhook(headers=created_headers, body=created)
    [second] = connector.parse_webhook(headers=cancelled_headers, body=cancelled)
    [message] = json.loads(created)
    assert first.delivery_id == message["msg_id"] != second.delivery_id
    assert (first.topic, second.topic) == ("100", "106")
    assert first.platform_order_id == second.platform_order_id == order["order_id"]
    assert first.needs_fetch and second.needs_fetch
    assert (first.updated_at, second.updated_at) == (T0, T0 + timedelta(minutes=3))
    assert first.payload["p_id"] == int(order["order_id"]) and second.payload["cancel_reason"] == "不想要了"
    # The push only names the order: the worker fetches it, and that is the cancelled version.
    assert map_douyin_order(connector.fetch_order(second.platform_order_id).payload).status == "cancelled"
    assert connector.webhook_ack() == ('{"code":0,"msg":"success"}', "application/json")

    tampered = created.replace(b'\\"order_status\\":', b'\\"order_status\\":4,\\"x\\":')
    assert tampered != created
    with pytest.raises(SignatureError):
        connector.parse_webhook(headers=created_headers, body=tampered)
    with pytest.raises(SignatureError):
        connector.parse_webhook(headers={**created_headers, "app-id": "other-app"}, body=created)
    with pytest.raises(SignatureError):
        connector.parse_webhook(headers={"app-id": sandbox.app_key}, body=created)


def test_logistics_add_pushes_tag_102(sandbox, receiver, connector):
    order = add_order(sandbox, T0, status=2)
    sandbox.webhook_url = receiver.url
    connector.ship(platform_order_id=order["order_id"], tracking_number="SF99", carrier_code="SF")
    [(headers, body)] = receiver.wait_for(1)
    [delivery] = connector.parse_webhook(headers=headers, body=body)
    assert delivery.topic == "102" and delivery.platform_order_id == order["order_id"]
    assert delivery.payload["logistics_msg"] == {"express_company_id": "shunfeng", "logistics_code": "SF99"}


def test_duplicate_pushes_share_one_msg_id(sandbox, receiver, connector):
    sandbox.webhook_url = receiver.url
    set_faults(sandbox, duplicate_webhooks=True)
    sandbox.generate(2)
    deliveries = receiver.wait_for(4)
    parsed = [connector.parse_webhook(headers=h, body=b)[0] for h, b in deliveries]
    assert parsed[0].delivery_id == parsed[1].delivery_id != parsed[2].delivery_id == parsed[3].delivery_id


def test_parse_webhook_splits_messages_and_skips_unknown_tags():
    connector = DouyinConnector({"app_key": "testappkey", "app_secret": "testsecret"})
    body = json.dumps([
        {"tag": "101", "msg_id": "7001", "data": json.dumps({"p_id": 6921345678901234567, "pay_time": 1717219571})},
        {"tag": "400", "msg_id": "7002", "data": json.dumps({"product_id": 3581234567890123456})},
        {"tag": "206", "msg_id": "7003", "data": json.dumps({"p_id": "6921345678901234568", "s_id": 1,
                                                              "update_time": "2024-06-01T06:30:05+08:00"})},
        {"tag": 110, "msg_id": "", "data": {"shop_order_id": "6921345678901234569"}},
    ], separators=(",", ":")).encode()
    headers = {"App-Id": "testappkey", "Event-Sign": event_sign("testappkey", body, "testsecret").upper()}
    paid, refunded, pending = connector.parse_webhook(headers=headers, body=body)
    assert (paid.topic, paid.delivery_id, paid.platform_order_id) == ("101", "7001", "6921345678901234567")
    assert paid.updated_at == datetime(2024, 6, 1, 5, 26, 11, tzinfo=UTC)
    assert (refunded.topic, refunded.platform_order_id, refunded.updated_at) == ("206", "6921345678901234568", None)
    assert pending.topic == "110" and pending.delivery_id.startswith("sha256:")
    assert all(delivery.needs_fetch for delivery in (paid, refunded, pending))


@pytest.mark.parametrize("body, message", [
    (b'[{"tag":"100","msg_id":"1","data":"{}"}]', "names no order"),  # the §4.7 vector: signed, but empty
    (b"not json", "not JSON"),
    (b'{"tag":"100"}', "JSON array"),
    (b'[{"tag":"100","msg_id":"1","data":"{oops"}]', "data is not JSON"),
    (b'[{"msg_id":"1"}]', "with a tag"),
])
def test_parse_webhook_refuses_malformed_bodies(body, message):
    connector = DouyinConnector({"app_key": "testappkey", "app_secret": "testsecret"})
    headers = {"app-id": "testappkey", "event-sign": event_sign("testappkey", body, "testsecret")}
    with pytest.raises(PermanentError, match=message) as caught:
        connector.parse_webhook(headers=headers, body=body)
    assert not isinstance(caught.value, SignatureError)


def test_parse_webhook_without_credentials_is_an_auth_problem():
    with pytest.raises(AuthError):
        DouyinConnector({}).parse_webhook(headers={"event-sign": "x", "app-id": "y"}, body=b"[]")


# --- End to end through the hub's webhook endpoint -----------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_push_lands_in_the_inbox_and_the_fetched_order_is_imported(live_server, skus):
    from connectors.models import ChannelSyncState, InboxMessage
    from orders.models import Order, Platform

    sandbox = DouyinSandbox(port=0, seed=3, skus=[("TEA-LJ-250G", "268.00"), ("CUP-CER-350", "39.00")])
    sandbox.start()
    try:
        store = channel_store(platform=Platform.DOUYIN, code="dy", name="抖店",
                                     credentials=sandbox.connector_credentials())
        ChannelSyncState.objects.get_or_create(store=store)
        sandbox.webhook_url = f"{live_server.url}/webhooks/douyin/dy/"
        sandbox.set_clock(datetime.now(UTC) - timedelta(minutes=5))
        order = sandbox.generate_order(status=2)
        sandbox.put_order(order, topic="orders/create")
        assert sandbox.webhook_log[-1]["status"] == 200
        [message] = InboxMessage.objects.filter(store=store)
        assert message.platform_order_id == order["order_id"] and message.topic == "100"

        # A redelivery of the same message is acknowledged the way Douyin expects and stored once.
        body = json.dumps([{"tag": "100", "msg_id": message.delivery_key.removeprefix("wh:"),
                            "data": json.dumps({"p_id": int(order["order_id"])})}]).encode()
        response = requests.post(sandbox.webhook_url, data=body, timeout=5, headers={
            "app-id": sandbox.app_key, "event-sign": event_sign(sandbox.app_key, body, sandbox.app_secret)})
        assert (response.status_code, response.text) == (200, ACK)
        assert response.headers["Content-Type"].startswith("application/json")
        assert InboxMessage.objects.filter(store=store).count() == 1

        channel.inbox_process_store(store_id=store.pk)
        imported = Order.objects.get(store=store, platform_order_id=order["order_id"])
        assert imported.total_amount == Decimal(order["pay_amount"]).scaleb(-2)
        assert imported.shipping_amount == Decimal(order["post_amount"]).scaleb(-2)
        assert imported.currency == "CNY"
        assert imported.placed_at == datetime.fromtimestamp(order["create_time"], UTC)
        assert imported.lines.count() == len(order["sku_order_list"])
    finally:
        sandbox.stop()


@pytest.mark.django_db(transaction=True)
def test_polling_imports_every_order_of_two_windows(skus):
    from connectors import services
    from connectors.models import ChannelSyncState
    from orders.models import Order, Platform

    sandbox = DouyinSandbox(port=0, seed=4, skus=[("TEA-LJ-250G", "268.00"), ("CUP-CER-350", "39.00")])
    sandbox.start()
    try:
        store = channel_store(platform=Platform.DOUYIN, code="dy-poll", name="抖店",
                                     credentials=sandbox.connector_credentials())
        now = datetime.now(UTC)
        ChannelSyncState.objects.filter(store=store).update(watermark=now - timedelta(hours=30))
        for hour in range(0, 30, 2):  # spans two one-day windows
            sandbox.set_clock(now - timedelta(hours=30 - hour))
            sandbox.generate(1, push=False)
        sandbox.set_clock(None)
        result = services.store_poll(store_id=store.pk)
        assert result.status == "ok" and result.fetched == 15
        channel.inbox_process_store(store_id=store.pk)
        assert Order.objects.filter(store=store).count() == 15
    finally:
        sandbox.stop()
