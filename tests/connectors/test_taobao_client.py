"""The TOP client and TaobaoConnector against a real TaobaoSandbox over HTTP: signing, paging, errors, push-back."""

import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler

import pytest
import requests

from connectors.base import AuthError, PermanentError, TransientError
from connectors.registry import connector_class, sandbox_class
from connectors.sandbox.taobao import TaobaoSandbox
from connectors.taobao.client import (
    FULLINFO_FIELDS,
    TopClient,
    format_top_time,
    response_key,
    top_sign,
    unwrap_lists,
)
from connectors.taobao.connector import TaobaoConnector
from connectors.taobao.mapping import map_taobao_trade
from tests.connectors.sandbox_fixtures import add_order as add_trade

INCREMENT = "taobao.trades.sold.increment.get"
FULLINFO = "taobao.trade.fullinfo.get"
T0 = datetime(2026, 3, 1, 0, 0, tzinfo=UTC)  # 2026-03-01 08:00:00 in Beijing

VECTOR_PARAMS = {
    "method": INCREMENT, "app_key": "12345678", "session": "test-session", "timestamp": "2024-01-02 03:04:05",
    "format": "json", "v": "2.0", "fields": "tid,status,modified", "start_modified": "2024-01-02 00:00:00",
    "end_modified": "2024-01-02 00:30:00", "page_no": "1", "page_size": "50", "use_has_next": "true",
}


@pytest.mark.parametrize(("sign_method", "expected"), [
    ("md5", "36B17C52DEB7B9B93DB38E682AD9762A"),
    ("hmac", "3CA470F97702F1A541073DFAB5EA7061"),
    ("hmac-sha256", "4241093B450C74EFFE9449E4BCBFAB6E7767C5E5629D0DC96D1E0E3C53852625"),
])
def test_signature_vectors(sign_method, expected):
    params = {**VECTOR_PARAMS, "sign_method": sign_method}
    assert top_sign(params, "testsecret", sign_method) == expected
    # `sign` itself and empty values are not signed.
    assert top_sign({**params, "sign": "X", "buyer_nick": "", "tag": None}, "testsecret", sign_method) == expected


def test_envelope_helpers():
    assert response_key("taobao.trade.fullinfo.get") == "trade_fullinfo_get_response"
    assert response_key("taobao.logistics.offline.send") == "logistics_offline_send_response"
    assert unwrap_lists({"trades": {"trade": [{"tid": 1, "orders": {"order": [{"oid": 2}]}}]},
                         "item": {"skus": {"sku": [{"sku_id": 3}]}}, "shipping": {"is_success": True}}) == {
        "trades": [{"tid": 1, "orders": [{"oid": 2}]}], "item": {"skus": [{"sku_id": 3}]},
        "shipping": {"is_success": True}}


# --- Against the sandbox -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fast_sockets():
    # The sandbox writes headers and body in two sends; with Nagle on, each keep-alive request
    # waits ~40 ms for a delayed ACK (see the report: the base Handler should disable Nagle).
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(BaseHTTPRequestHandler, "disable_nagle_algorithm", True)
        yield


@pytest.fixture(scope="module")
def running_sandbox(fast_sockets):
    # One server for the module (stopping one costs half a second); each test gets it reset.
    box = TaobaoSandbox(port=0, seed=11)
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


def make_client(sandbox: TaobaoSandbox, waits: list[float], **overrides) -> TopClient:
    credentials = {**sandbox.connector_credentials(), **overrides}
    client = TopClient.from_credentials(credentials, timeout=5, backoff_base=0.001)
    client.sleep = waits.append  # count the waits instead of sleeping them
    return client


@pytest.fixture
def client(sandbox, waits) -> TopClient:
    return make_client(sandbox, waits)


@pytest.fixture
def connector(sandbox, client) -> TaobaoConnector:
    return TaobaoConnector(sandbox.connector_credentials(), client=client)


def calls(sandbox: TaobaoSandbox, method: str) -> list[dict]:
    return [call["params"] for call in sandbox.api_calls if call["method"] == method]


def test_registry_names_the_taobao_classes():
    assert connector_class("taobao") is TaobaoConnector
    assert sandbox_class("taobao") is TaobaoSandbox


def test_poll_splits_days_pages_backwards_and_fetches_each_trade_once(sandbox, connector):
    first_day = [add_trade(sandbox, T0 + timedelta(minutes=1 + 5 * i)) for i in range(250)]
    boundary = add_trade(sandbox, T0 + timedelta(days=1))  # in both windows' answers
    second_day = [add_trade(sandbox, T0 + timedelta(days=1, minutes=10 * (j + 1))) for j in range(30)]
    add_trade(sandbox, T0 - timedelta(hours=1))
    add_trade(sandbox, T0 + timedelta(days=2, minutes=1))
    sandbox.set_clock(None)
    expected = {t["tid_str"]: t for t in [*first_day, boundary, *second_day]}

    raws = list(connector.poll(start=T0, end=T0 + timedelta(days=2)))

    assert sorted(raw.platform_order_id for raw in raws) == sorted(expected)
    increments = calls(sandbox, INCREMENT)
    windows = [(c["start_modified"], c["end_modified"]) for c in increments]
    assert sorted(set(windows)) == [("2026-03-01 08:00:00", "2026-03-02 08:00:00"),
                                    ("2026-03-02 08:00:00", "2026-03-03 08:00:00")]
    day_one = [c for c in increments if c["start_modified"] == "2026-03-01 08:00:00"]
    # A counting call, then the last page back to the first.
    assert [(c["page_no"], c["page_size"], c["use_has_next"]) for c in day_one] == [
        ("1", "100", "false"), ("3", "100", "false"), ("2", "100", "false"), ("1", "100", "false")]
    day_two = [c for c in increments if c["start_modified"] == "2026-03-02 08:00:00"]
    assert [c["page_no"] for c in day_two] == ["1"]  # one page: the counting call already holds it
    fetched = [c["tid"] for c in calls(sandbox, FULLINFO)]
    assert sorted(fetched) == sorted(expected)  # each trade's details fetched exactly once
    for raw in raws:
        stored = expected[raw.platform_order_id]
        assert raw.payload == unwrap_lists(stored)  # the full trade, every generated field included
        assert raw.updated_at == datetime.strptime(stored["modified"], "%Y-%m-%d %H:%M:%S").replace(
            tzinfo=UTC) - timedelta(hours=8)
        assert map_taobao_trade(raw.payload).platform_order_id == raw.platform_order_id
    assert raws[0].updated_at.tzinfo is UTC


class ModifyDuringPaging(TaobaoSandbox):
    """Moves a page-1 trade out of the window right after page 3 has been served."""

    victim = ""

    def _trades_sold_increment_get(self, params):
        response = super()._trades_sold_increment_get(params)
        if params.get("page_no") == "3" and self.victim:
            self.set_clock(T0 + timedelta(days=3))
            self.update_trade(self.victim, seller_memo="已改地址")
            self.victim = ""
        return response


def test_backward_paging_misses_nothing_when_a_trade_is_modified_meanwhile(fast_sockets, waits):
    box = ModifyDuringPaging(port=0, seed=5)
    box.start()
    try:
        trades = [add_trade(box, T0 + timedelta(minutes=1 + i)) for i in range(250)]
        box.victim = trades[-1]["tid_str"]  # the newest: first on page 1
        connector = TaobaoConnector(box.connector_credentials(), client=make_client(box, waits))
        got = [raw.platform_order_id for raw in connector.poll(start=T0, end=T0 + timedelta(hours=12))]
    finally:
        box.stop()
    # Every trade still in the window is there exactly once; the moved one belongs to the next poll.
    assert sorted(got) == sorted(t["tid_str"] for t in trades[:-1])


def test_window_longer_than_a_day_is_a_permanent_error(client, waits):
    with pytest.raises(PermanentError) as caught:
        client.trades_sold_increment_get(start_modified=T0, end_modified=T0 + timedelta(days=1, seconds=1),
                                         page_no=1)
    assert caught.value.code == "41"
    assert "isv.invalid-parameter" in caught.value.message
    assert waits == []


def test_exactly_one_day_is_allowed_and_empty_pages_have_no_trades(client):
    page = client.trades_sold_increment_get(start_modified=T0, end_modified=T0 + timedelta(days=1), page_no=1)
    assert (page["total_results"], page["has_next"], page["trades"]) == (0, False, [])


def test_list_answers_carry_only_the_requested_fields(sandbox, client):
    trade = add_trade(sandbox, T0 + timedelta(minutes=3))
    page = client.trades_sold_increment_get(start_modified=T0, end_modified=T0 + timedelta(hours=1), page_no=1,
                                            fields="tid,status,modified", use_has_next=True)
    assert page == {"has_next": False, "request_id": page["request_id"],
                    "trades": [{"tid": trade["tid"], "status": trade["status"], "modified": trade["modified"]}]}


def test_rate_limit_waits_for_the_ban_then_succeeds(sandbox, client, waits):
    trade = add_trade(sandbox, T0)
    sandbox.faults.rate_limit = 2
    assert client.trade_fullinfo_get(trade["tid_str"])["tid_str"] == trade["tid_str"]
    assert waits == [1.0, 1.0]  # "This ban will last for 1 more seconds", twice


def test_a_ban_longer_than_max_wait_is_handed_to_the_caller(sandbox, client, waits):
    trade = add_trade(sandbox, T0)
    sandbox.faults.rate_limit = 1
    client.max_wait = 0.5
    with pytest.raises(TransientError) as caught:
        client.trade_fullinfo_get(trade["tid_str"])
    assert (caught.value.code, caught.value.retry_after, waits) == ("7", 1.0, [])


def test_isp_errors_are_retried_with_growing_backoff(sandbox, client, waits):
    trade = add_trade(sandbox, T0)
    sandbox.faults.server_errors = 2
    assert client.trade_fullinfo_get(trade["tid_str"])["tid"] == trade["tid"]
    assert len(waits) == 2
    assert 0.0005 <= waits[0] <= 0.001 and 0.001 <= waits[1] <= 0.002


def test_malformed_body_is_retried(sandbox, client, waits):
    trade = add_trade(sandbox, T0)
    sandbox.faults.malformed = 1
    assert client.trade_fullinfo_get(trade["tid_str"])["tid"] == trade["tid"]
    assert len(waits) == 1


def test_persistent_isp_errors_end_in_transient_error(sandbox, client, waits):
    sandbox.faults.server_errors = 100
    with pytest.raises(TransientError) as caught:
        client.trade_fullinfo_get("1")
    assert caught.value.code == "10"
    assert "isp.remote-service-error" in caught.value.message and "gave up after 5 retries" in caught.value.message
    assert len(waits) == 5


def test_gateway_down_ends_in_transient_error(sandbox, client, waits):
    sandbox.faults.down = True
    before = sandbox.request_count
    with pytest.raises(TransientError) as caught:
        client.trade_fullinfo_get("1")
    assert caught.value.code == "http_503"
    assert (len(waits), sandbox.request_count - before) == (5, 6)


def test_timeouts_are_retried_then_transient(sandbox, waits):
    client = make_client(sandbox, waits)
    client.timeout, client.max_retries = 0.05, 1
    sandbox.faults.latency_ms = 150
    with pytest.raises(TransientError) as caught:
        client.trade_fullinfo_get("1")
    assert caught.value.code == "timeout"
    assert len(waits) == 1
    time.sleep(0.2)  # let the abandoned requests finish before the shared sandbox is reset


def test_connection_refused_is_transient(waits):
    box = TaobaoSandbox(port=0)
    box.start()
    credentials = box.connector_credentials()
    box.stop()  # nothing listens on that port any more
    client = TopClient.from_credentials(credentials, timeout=2, backoff_base=0.001, max_retries=2)
    client.sleep = waits.append
    with pytest.raises(TransientError):
        client.trade_fullinfo_get("1")
    assert len(waits) == 2


def test_wrong_session_is_an_auth_error(sandbox, waits):
    with pytest.raises(AuthError) as caught:
        make_client(sandbox, waits, session="expired").trade_fullinfo_get("1")
    assert caught.value.code == "27"
    assert waits == []


def test_wrong_app_key_is_an_auth_error(sandbox, waits):
    with pytest.raises(AuthError) as caught:
        make_client(sandbox, waits, app_key="99999999").trade_fullinfo_get("1")
    assert caught.value.code == "29"


def test_wrong_secret_is_an_invalid_signature(sandbox, waits):
    with pytest.raises(PermanentError) as caught:
        make_client(sandbox, waits, app_secret="not-the-secret").trade_fullinfo_get("1")
    assert not isinstance(caught.value, AuthError)
    assert caught.value.code == "25"
    assert waits == []


@pytest.mark.parametrize("sign_method", ["hmac", "hmac-sha256"])
def test_hmac_sign_methods_are_accepted(sandbox, waits, sign_method):
    trade = add_trade(sandbox, T0)
    assert make_client(sandbox, waits, sign_method=sign_method).trade_fullinfo_get(trade["tid"])["tid"] == trade["tid"]


def test_missing_credentials_are_an_auth_error():
    with pytest.raises(AuthError, match="session"):
        TaobaoConnector({"app_key": "12345678", "app_secret": "s"}).fetch_order("1")


def test_unknown_trade_is_a_permanent_error(connector):
    with pytest.raises(PermanentError) as caught:
        connector.fetch_order("123456789012345678")
    assert caught.value.code == "50" and "isv.trade-not-exist" in caught.value.message


def test_sandbox_accepts_sdk_style_requests_and_checks_the_timestamp(sandbox):
    trade = add_trade(sandbox, T0)
    url = sandbox.connector_credentials()["base_url"]

    def post(timestamp: str) -> dict:
        system = {"method": FULLINFO, "app_key": sandbox.app_key, "session": sandbox.session, "format": "json",
                  "v": "2.0", "sign_method": "hmac-sha256", "timestamp": timestamp}
        business = {"tid": trade["tid_str"], "fields": FULLINFO_FIELDS}
        system["sign"] = top_sign({**system, **business}, sandbox.app_secret, "hmac-sha256")
        # Like the official Python SDK: system params in the query, business params in the body.
        return requests.post(url, params=system, data=business, timeout=5).json()

    epoch_ms = str(int(time.time() * 1000))
    assert post(epoch_ms)["trade_fullinfo_get_response"]["trade"]["tid"] == trade["tid"]
    skewed = format_top_time(datetime.now(UTC) - timedelta(minutes=11))
    assert post(skewed)["error_response"]["code"] == 31
    assert post("yesterday")["error_response"]["code"] == 31


def test_unknown_method_is_code_22(client):
    with pytest.raises(PermanentError) as caught:
        client.call("taobao.trade.does.not.exist")
    assert caught.value.code == "22"


def test_split_shipment_is_recorded_and_the_trade_moves_on(sandbox, connector, client):
    trade = add_trade(sandbox, T0, lines=2, status="WAIT_SELLER_SEND_GOODS")
    first, second = (str(order["oid"]) for order in trade["orders"]["order"])
    before = trade["modified"]

    assert client.logistics_offline_send(tid=trade["tid_str"], out_sid="SF1234567890", company_code="SF",
                                         is_split=True, sub_tid=[first]) == {"is_success": True}

    assert [{k: v for k, v in push.items() if k != "at"} for push in sandbox.pushed] == [
        {"kind": "shipment", "tid": trade["tid_str"], "out_sid": "SF1234567890", "company_code": "SF",
         "is_split": True, "sub_tid": first}]
    stored = sandbox.orders[trade["tid_str"]]
    assert stored["status"] == "SELLER_CONSIGNED_PART"
    assert stored["modified"] > before
    assert [o["status"] for o in stored["orders"]["order"]] == ["WAIT_BUYER_CONFIRM_GOODS", "WAIT_SELLER_SEND_GOODS"]
    assert map_taobao_trade(connector.fetch_order(trade["tid_str"]).payload).status == "partially_shipped"

    connector.ship(platform_order_id=trade["tid_str"], tracking_number="YT9876543210", carrier_code="YTO",
                   line_ids=[second])
    assert sandbox.orders[trade["tid_str"]]["status"] == "WAIT_BUYER_CONFIRM_GOODS"
    assert sandbox.pushed[-1]["sub_tid"] == second

    with pytest.raises(PermanentError) as caught:  # nothing left to ship
        connector.ship(platform_order_id=trade["tid_str"], tracking_number="X", carrier_code="SF")
    assert caught.value.code == "50"
    assert len(sandbox.pushed) == 2


def test_whole_shipment_is_not_split(sandbox, connector):
    trade = add_trade(sandbox, T0, lines=3, status="WAIT_SELLER_SEND_GOODS")
    connector.ship(platform_order_id=trade["tid_str"], tracking_number="ZT1", carrier_code="ZTO")
    assert sandbox.pushed[-1]["is_split"] is False and sandbox.pushed[-1]["sub_tid"] is None
    assert sandbox.orders[trade["tid_str"]]["status"] == "WAIT_BUYER_CONFIRM_GOODS"


def test_stock_updates_are_recorded(sandbox, client, connector):
    item = sandbox.catalog[0]
    answer = client.item_quantity_update(num_iid=item["num_iid"], sku_id=item["sku_id"], quantity=37)
    assert answer["num_iid"] == item["num_iid"]
    assert answer["skus"] == [{"sku_id": int(item["sku_id"]), "quantity": 37, "modified": answer["modified"]}]
    connector.set_stock(platform_product_id=str(item["num_iid"]), sku=item["outer_sku_id"], quantity=12)
    assert [{k: v for k, v in push.items() if k != "at"} for push in sandbox.pushed] == [
        {"kind": "stock", "num_iid": item["num_iid"], "sku_id": item["sku_id"], "outer_id": None, "quantity": 37,
         "type": 1},
        {"kind": "stock", "num_iid": item["num_iid"], "sku_id": None, "outer_id": item["outer_sku_id"],
         "quantity": 12, "type": 1}]
    assert sandbox.stock[(item["num_iid"], item["sku_id"])] == 12
    with pytest.raises(PermanentError) as caught:
        client.item_quantity_update(num_iid=1, quantity=1)
    assert caught.value.code == "50"


def test_incremental_stock_change_is_not_repeated_after_an_ambiguous_failure(sandbox, client, waits):
    item = sandbox.catalog[0]
    sandbox.faults.server_errors = 1
    with pytest.raises(TransientError):
        client.item_quantity_update(num_iid=item["num_iid"], sku_id=item["sku_id"], quantity=5, type=2)
    assert (waits, sandbox.pushed) == ([], [])
    sandbox.faults.server_errors = 1  # an overwrite may be repeated safely
    client.item_quantity_update(num_iid=item["num_iid"], sku_id=item["sku_id"], quantity=5, type=1)
    assert len(waits) == 1 and len(sandbox.pushed) == 1


def test_pushes_are_not_supported(connector):
    with pytest.raises(PermanentError, match="orders arrive by polling"):
        connector.parse_webhook(headers={}, body=b"{}")


def test_update_trade_moves_modified_strictly_forward(sandbox):
    trade = add_trade(sandbox, T0)
    sandbox.update_trade(trade["tid_str"], status="TRADE_CLOSED")  # same clock: one second later
    assert sandbox.orders[trade["tid_str"]]["modified"] == "2026-03-01 08:00:01"
    assert {o["status"] for o in trade["orders"]["order"]} == {"TRADE_CLOSED"}
