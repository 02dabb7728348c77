"""The sandboxes refuse what their platforms refuse (issue 13, items 4 and 6), checked over real HTTP.

Signatures are verified by the sandboxes' own implementations, pinned to the API_FACTS test vectors,
so a client whose signer is wrong is refused; unknown carrier codes and oversize pages are refused
with the platform's error; and Taobao answers only the default trade types unless ``type`` lists more.
"""

import base64
import hashlib
import hmac
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

import pytest
import requests
from django.utils import timezone

from connectors import services
from connectors.base import PermanentError
from connectors.douyin import client as douyin_client
from connectors.douyin.client import DouyinClient
from connectors.douyin.connector import DouyinConnector
from connectors.models import ChannelSyncState
from connectors.pdd import client as pdd_client
from connectors.pdd.client import PddClient
from connectors.sandbox import douyin as douyin_sandbox
from connectors.sandbox import pdd as pdd_sandbox
from connectors.sandbox import shopify as shopify_sandbox
from connectors.sandbox import taobao as taobao_sandbox
from connectors.sandbox.douyin import DouyinSandbox, sandbox_douyin_sign, sandbox_event_sign
from connectors.sandbox.pdd import PddSandbox, sandbox_pdd_sign
from connectors.sandbox.shopify import ShopifySandbox, sandbox_webhook_hmac
from connectors.sandbox.taobao import DEFAULT_TRADE_TYPES, TaobaoSandbox, sandbox_top_sign
from connectors.shopify import connector as shopify_connector
from connectors.shopify.connector import ShopifyConnector
from connectors.taobao import client as taobao_client
from connectors.taobao.client import TRADE_TYPES, TopClient
from connectors.taobao.connector import TaobaoConnector
from orders.models import Order, Platform
from pipeline import channel
from tests.conftest import channel_store

INCREMENT = "taobao.trades.sold.increment.get"
T0 = datetime(2026, 3, 1, 0, 0, tzinfo=UTC)  # 2026-03-01 08:00:00 in Beijing


def _wrong_md5(*args, **kwargs) -> str:
    """A plausible but wrong signer: the sorted parameters hashed without the secret.

    Deterministic in what it is given (``sign`` and empty values left out), so a sandbox that verified
    with the client's own function would compute the same wrong value and let the request through.
    """
    if args and isinstance(args[0], Mapping):
        given = {key: value for key, value in args[0].items() if key != "sign" and value not in (None, "")}
    else:
        given = {**{str(i): value for i, value in enumerate(args) if i != 2}, **kwargs}  # args[2]: a secret
        given.pop("secret", None)
    return hashlib.md5("".join(f"{key}{given[key]}" for key in sorted(given)).encode()).hexdigest()


# --- The sandboxes' own signers reproduce the published vectors (API_FACTS §1.9, §2.2, §3.2, §4.2, §4.7) ----


TOP_VECTOR = {
    "method": INCREMENT, "app_key": "12345678", "session": "test-session", "timestamp": "2024-01-02 03:04:05",
    "format": "json", "v": "2.0", "fields": "tid,status,modified", "start_modified": "2024-01-02 00:00:00",
    "end_modified": "2024-01-02 00:30:00", "page_no": "1", "page_size": "50", "use_has_next": "true",
}


@pytest.mark.parametrize(("sign_method", "expected"), [
    ("md5", "36B17C52DEB7B9B93DB38E682AD9762A"),
    ("hmac", "3CA470F97702F1A541073DFAB5EA7061"),
    ("hmac-sha256", "4241093B450C74EFFE9449E4BCBFAB6E7767C5E5629D0DC96D1E0E3C53852625"),
])
def test_taobao_sandbox_signer_reproduces_the_vectors(sign_method, expected):
    params = {**TOP_VECTOR, "sign_method": sign_method}
    assert sandbox_top_sign(params, "testsecret", sign_method) == expected
    assert sandbox_top_sign({**params, "sign": "X", "tag": ""}, "testsecret", sign_method) == expected


def test_pdd_sandbox_signer_reproduces_the_vector():
    params = {"type": "pdd.order.number.list.increment.get", "client_id": "testclient", "access_token": "testtoken",
              "timestamp": "1704135845", "data_type": "JSON", "version": "V1", "start_updated_at": "1704135600",
              "end_updated_at": "1704137400", "is_lucky_flag": "0", "order_status": "5", "refund_status": "5",
              "page": "1", "page_size": "100"}
    assert sandbox_pdd_sign(params, "testsecret") == "84E38BA92FF10ED3CFD9066C9DDBB0AC"
    assert sandbox_pdd_sign({**params, "sign": "X"}, "testsecret") == "84E38BA92FF10ED3CFD9066C9DDBB0AC"


@pytest.mark.parametrize(("sign_method", "expected"), [
    ("md5", "a84d3597bbb7aaeb0540d1022623165c"),
    ("hmac-sha256", "8a5350b8fdacaa753c0885ab9859d382a31de4add09c6943c1d34298bd2165f1"),
])
def test_douyin_sandbox_signers_reproduce_the_vectors(sign_method, expected):
    assert sandbox_douyin_sign(app_key="appkey123", secret="secret123", method="order.searchList",
                               param_json='{"page":0,"size":100}', timestamp="1800000000",
                               sign_method=sign_method) == expected
    assert sandbox_event_sign(app_key="testappkey", body=b'[{"tag":"100","msg_id":"1","data":"{}"}]',
                              secret="testsecret") == "4d8c32ff053d815af878f594f728690c"


def test_shopify_sandbox_webhook_hmac_reproduces_the_vector():
    assert sandbox_webhook_hmac("shpss_testsecret", b'{"id":450789469,"name":"#1001"}') == (
        "3N3AXYmzI3nr1WHkHed1B4V5zYd0PYlcJWiEZH0CTV8=")


# --- Taobao ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def running_taobao():
    box = TaobaoSandbox(port=0, seed=21)
    box.start()
    yield box
    box.stop()


@pytest.fixture
def taobao(running_taobao):
    running_taobao.reset()
    yield running_taobao
    running_taobao.reset()


def top_client(sandbox: TaobaoSandbox) -> TopClient:
    client = TopClient.from_credentials(sandbox.connector_credentials(), timeout=5, backoff_base=0.001)
    client.sleep = lambda _seconds: None
    return client


def add_trade(sandbox: TaobaoSandbox, at: datetime, trade_type: str, **kwargs) -> dict:
    sandbox.set_clock(at)
    trade = sandbox.generate_order(trade_type=trade_type, **kwargs)
    sandbox.put_order(trade, push=False)
    return trade


def test_taobao_refuses_a_signature_made_with_the_clients_wrong_algorithm(taobao, monkeypatch):
    # If the sandbox checked with the client's own signer, a broken signer would agree with itself.
    monkeypatch.setattr(taobao_client, "top_sign", _wrong_md5)
    monkeypatch.setattr(taobao_sandbox, "top_sign", _wrong_md5, raising=False)
    with pytest.raises(PermanentError) as refused:
        top_client(taobao).trades_sold_increment_get(start_modified=T0, end_modified=T0 + timedelta(hours=1),
                                                     page_no=1)
    assert refused.value.code == "25"
    assert "Invalid Signature" in refused.value.message


def test_taobao_refuses_an_unknown_company_code_and_ships_nothing(taobao):
    trade = add_trade(taobao, T0, "fixed", status="WAIT_SELLER_SEND_GOODS")
    client = top_client(taobao)
    with pytest.raises(PermanentError) as refused:
        client.logistics_offline_send(tid=trade["tid_str"], out_sid="X1", company_code="NOPE")
    assert refused.value.code == "50" and "sub_code isv.logistics-company-not-exist" in refused.value.message
    assert taobao.pushed == []
    assert taobao.orders[trade["tid_str"]]["status"] == "WAIT_SELLER_SEND_GOODS"
    assert client.logistics_offline_send(tid=trade["tid_str"], out_sid="SF1", company_code="SF") == {
        "is_success": True}


def test_taobao_refuses_page_size_above_100(taobao):
    client = top_client(taobao)
    with pytest.raises(PermanentError) as refused:
        client.trades_sold_increment_get(start_modified=T0, end_modified=T0 + timedelta(hours=1), page_no=1,
                                         page_size=101)
    assert refused.value.code == "41" and "sub_code isv.invalid-parameter" in refused.value.message
    assert client.trades_sold_increment_get(start_modified=T0, end_modified=T0 + timedelta(hours=1), page_no=1,
                                            page_size=100)["total_results"] == 0


def test_taobao_without_type_answers_only_the_default_types_newest_first(taobao):
    kinds = ["fixed", "auction", "step", "cod", "eticket", "tmall_i18n", "o2o_offlinetrade"]
    trades = {kind: add_trade(taobao, T0 + timedelta(minutes=i), kind) for i, kind in enumerate(kinds)}
    client = top_client(taobao)
    window = {"start_modified": T0, "end_modified": T0 + timedelta(hours=1), "page_no": 1, "page_size": 100,
              "fields": "tid_str,type,modified"}
    bare = client.call(INCREMENT, **window)  # no `type`, as the client used to call it
    assert [t["type"] for t in bare["trades"]] == ["cod", "step", "auction", "fixed"]  # modified descending
    assert set(DEFAULT_TRADE_TYPES) == {"guarantee_trade", "auto_delivery", "ec", "cod", "step"}
    full = client.trades_sold_increment_get(**window)
    assert {t["tid_str"] for t in full["trades"]} == {t["tid_str"] for t in trades.values()}
    assert "type" not in taobao.api_calls[0]["params"]
    assert taobao.api_calls[-1]["params"]["type"] == ",".join(TRADE_TYPES)
    with pytest.raises(PermanentError) as refused:
        client.call(INCREMENT, type="fixed,bogus", **window)
    assert refused.value.code == "41" and "unknown trade type bogus" in refused.value.message


@pytest.fixture
def taobao_shop(skus):
    """A sandbox selling the hub's own SKU codes, so polled trades become orders."""
    box = TaobaoSandbox(port=0, skus=[("TEA-LJ-250G", "268.00"), ("CUP-CER-350", "39.00")], seed=5)
    box.start()
    yield box
    box.stop()


@pytest.mark.django_db
def test_taobao_poll_imports_trades_of_every_type_the_hub_handles(taobao_shop):
    taobao = taobao_shop
    store = channel_store(platform=Platform.TAOBAO, code="tb-types", name="淘宝类型店",
                                 credentials=taobao.connector_credentials())
    now = timezone.now()
    ChannelSyncState.objects.filter(store=store).update(watermark=now - timedelta(hours=2))
    tids = {kind: add_trade(taobao, now - timedelta(minutes=30 + i), kind)["tid_str"]
            for i, kind in enumerate(["fixed", "step", "eticket", "tmall_i18n", "o2o_offlinetrade"])}
    taobao.set_clock(None)
    result = services.store_poll(store_id=store.pk)
    assert (result.status, result.fetched) == ("ok", 5)
    channel.inbox_process_store(store_id=store.pk)
    assert set(Order.objects.filter(store=store).values_list("platform_order_id", flat=True)) == set(tids.values())
    assert TaobaoConnector.max_window == timedelta(days=1)


# --- PDD -----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def running_pdd():
    box = PddSandbox(port=0, seed=21)
    box.start()
    yield box
    box.stop()


@pytest.fixture
def pdd(running_pdd):
    running_pdd.reset()
    yield running_pdd
    running_pdd.reset()


def make_pdd_client(sandbox: PddSandbox) -> PddClient:
    client = PddClient.from_credentials(sandbox.connector_credentials(), timeout=5, backoff_base=0.001)
    client.sleep = lambda _seconds: None
    return client


def test_pdd_refuses_a_signature_made_with_the_clients_wrong_algorithm(pdd, monkeypatch):
    monkeypatch.setattr(pdd_client, "pdd_sign", _wrong_md5)
    monkeypatch.setattr(pdd_sandbox, "pdd_sign", _wrong_md5, raising=False)
    with pytest.raises(PermanentError) as refused:
        make_pdd_client(pdd).order_number_list_increment_get(start_updated_at=T0,
                                                             end_updated_at=T0 + timedelta(minutes=30), page=1)
    assert refused.value.code == str(pdd_sandbox.INVALID_SIGN)


def test_pdd_refuses_an_unknown_logistics_id_and_page_size_above_100(pdd):
    pdd.set_clock(T0)
    order = pdd.generate_order(group_pending=False)
    pdd.put_order(order, push=False)
    client = make_pdd_client(pdd)
    with pytest.raises(PermanentError) as refused:
        client.logistics_online_send(order_sn=order["order_sn"], logistics_id=999999, tracking_number="X1")
    assert (refused.value.code, refused.value.sub_code) == (str(pdd_sandbox.BUSINESS_ERROR),
                                                            "logistics.company.not.exist")
    assert pdd.pushed == []
    assert pdd.orders[order["order_sn"]]["order_status"] == 1
    with pytest.raises(PermanentError) as too_big:
        client.order_number_list_increment_get(start_updated_at=T0, end_updated_at=T0 + timedelta(minutes=30),
                                               page=1, page_size=101)
    assert too_big.value.code == str(pdd_sandbox.INVALID_PARAMETER)
    # The real client, its largest page and a known company still go through.
    page = client.order_number_list_increment_get(start_updated_at=T0 - timedelta(minutes=29),
                                                  end_updated_at=T0 + timedelta(minutes=1), page=1, page_size=100)
    assert [o["order_sn"] for o in page["order_sn_list"]] == [order["order_sn"]]
    assert client.logistics_online_send(order_sn=order["order_sn"], logistics_id=44, tracking_number="SF1")


# --- Douyin --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def running_douyin():
    box = DouyinSandbox(port=0, seed=21)
    box.start()
    yield box
    box.stop()


@pytest.fixture
def douyin(running_douyin):
    running_douyin.reset()
    running_douyin.webhook_url = ""
    yield running_douyin
    running_douyin.reset()


def make_douyin_client(sandbox: DouyinSandbox) -> DouyinClient:
    client = DouyinClient.from_credentials(sandbox.connector_credentials(), timeout=5, backoff_base=0.001)
    client.sleep = lambda _seconds: None
    return client


def test_douyin_refuses_a_signature_made_with_the_clients_wrong_algorithm(douyin, monkeypatch):
    monkeypatch.setattr(douyin_client, "douyin_sign", _wrong_md5)
    monkeypatch.setattr(douyin_sandbox, "douyin_sign", _wrong_md5, raising=False)
    with pytest.raises(PermanentError) as refused:
        make_douyin_client(douyin).order_search_list(update_time_start=T0, update_time_end=T0 + timedelta(hours=1),
                                                     page=0)
    assert (refused.value.code, refused.value.sub_code) == ("40003", "isv.signature-invalid")


def test_douyin_pushes_are_signed_by_the_documented_algorithm_not_the_clients(douyin, monkeypatch):
    monkeypatch.setattr(douyin_client, "event_sign", _wrong_md5)
    monkeypatch.setattr(douyin_sandbox, "event_sign", _wrong_md5, raising=False)
    sent = []
    monkeypatch.setattr(douyin, "post_webhook", lambda **kwargs: sent.append(kwargs))
    douyin.webhook_url = "http://127.0.0.1:9/unused"
    douyin.set_clock(T0)
    douyin.deliver_webhook("orders/create", douyin.generate_order(status=2))
    body, headers = sent[0]["body"], sent[0]["headers"]
    assert headers["event-sign"] == hashlib.md5(douyin.app_key.encode() + body + douyin.app_secret.encode()).hexdigest()


def test_douyin_refuses_an_unknown_company_code_and_size_above_100(douyin):
    douyin.set_clock(T0)
    order = douyin.generate_order(status=2)
    douyin.put_order(order, push=False)
    client = make_douyin_client(douyin)
    with pytest.raises(PermanentError) as refused:
        client.order_logistics_add(order_id=order["order_id"], company_code="nope", logistics_code="X1")
    assert (refused.value.code, refused.value.sub_code) == ("40004", "isv.parameter-invalid")
    assert douyin.pushed == []
    assert douyin.orders[order["order_id"]]["order_status"] == 2
    with pytest.raises(ValueError):  # the client itself never asks for more
        client.order_search_list(update_time_start=T0, update_time_end=T0 + timedelta(hours=1), page=0, size=101)
    bounds = {"update_time_start": int(T0.timestamp()) - 3600, "update_time_end": int(T0.timestamp()) + 3600}
    with pytest.raises(PermanentError) as too_big:
        client.call("order.searchList", {**bounds, "page": 0, "size": 101})
    assert (too_big.value.code, too_big.value.sub_code) == ("40004", "isv.parameter-invalid")
    connector = DouyinConnector(douyin.connector_credentials(), client=client)
    connector.ship(platform_order_id=order["order_id"], tracking_number="SF1", carrier_code="SF")
    assert [push["company_code"] for push in douyin.pushed] == ["shunfeng"]


def test_douyin_sorts_as_order_by_and_order_asc_say(douyin):
    orders = []
    for minutes in (0, 10, 20):
        douyin.set_clock(T0 + timedelta(minutes=minutes))
        orders.append(douyin.generate_order(status=2))
        douyin.put_order(orders[-1], push=False)
    client = make_douyin_client(douyin)
    bounds = {"update_time_start": int(T0.timestamp()) - 3600, "update_time_end": int(T0.timestamp()) + 3600,
              "page": 0, "size": 100, "order_by": "update_time"}
    newest_first = [o["order_id"] for o in client.call("order.searchList", bounds)["shop_order_list"]]
    oldest_first = [o["order_id"] for o in client.call("order.searchList", {**bounds, "order_asc": True})[
        "shop_order_list"]]
    assert newest_first == [o["order_id"] for o in reversed(orders)]
    assert oldest_first == [o["order_id"] for o in orders]
    with pytest.raises(PermanentError) as refused:
        client.call("order.searchList", {**bounds, "order_by": "pay_time"})
    assert refused.value.code == "40004"


# --- Shopify -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def running_shopify():
    box = ShopifySandbox(port=0, seed=21, throttle=False)
    box.start()
    yield box
    box.stop()


@pytest.fixture
def shopify(running_shopify):
    running_shopify.reset()
    running_shopify.webhook_url = ""
    yield running_shopify
    running_shopify.reset()


def orders_page(sandbox: ShopifySandbox, **params) -> requests.Response:
    return requests.get(f"{sandbox.base_url}/admin/api/{sandbox.api_version}/orders.json", params=params, timeout=5,
                        headers={"X-Shopify-Access-Token": sandbox.access_token})


def test_shopify_refuses_limit_above_250_and_accepts_250(shopify):
    refused = orders_page(shopify, limit=251, status="any")
    assert refused.status_code == 400
    assert refused.json() == {"errors": {"limit": "limit must be at most 250"}}
    assert orders_page(shopify, limit=250, status="any").json() == {"orders": []}


def test_shopify_webhooks_carry_the_documented_hmac_whatever_the_hub_computes(shopify, monkeypatch):
    monkeypatch.setattr(shopify_connector, "shopify_hmac", _wrong_md5)
    monkeypatch.setattr(shopify_sandbox, "shopify_hmac", _wrong_md5, raising=False)
    sent = []
    monkeypatch.setattr(shopify, "post_webhook", lambda **kwargs: sent.append(kwargs))
    shopify.set_clock(T0)
    shopify.deliver_webhook("orders/create", shopify.generate_order())
    body, headers = sent[0]["body"], sent[0]["headers"]
    expected = base64.b64encode(hmac.new(shopify.api_secret.encode(), body, hashlib.sha256).digest()).decode()
    assert headers["X-Shopify-Hmac-Sha256"] == expected


def test_shopify_tracking_company_is_free_text(shopify):
    # Shopify takes any company name; only names on its list get a tracking URL built (API_FACTS §1.6).
    shopify.set_clock(T0)
    order = shopify.generate(1, push=False)[0]
    connector = ShopifyConnector(shopify.connector_credentials())
    connector.ship(platform_order_id=str(order["id"]), tracking_number="ZT123", carrier_code="中通快递")
    assert [push["tracking_company"] for push in shopify.pushed if push["kind"] == "fulfillment"] == ["中通快递"]
