"""The Shopify client and connector against a running ShopifySandbox over real HTTP, and webhook verification."""

import json
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from connectors.base import AuthError, PermanentError, SignatureError, TransientError
from connectors.sandbox.shopify import ShopifySandbox
from connectors.shopify.client import ShopifyClient
from connectors.shopify.connector import ShopifyConnector, shopify_hmac
from gateway.sandbox import Response

T0 = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)
VECTOR_SECRET = "shpss_testsecret"
VECTOR_BODY = b'{"id":450789469,"name":"#1001"}'
VECTOR_HMAC = "3N3AXYmzI3nr1WHkHed1B4V5zYd0PYlcJWiEZH0CTV8="


@pytest.fixture
def sandbox():
    box = ShopifySandbox(port=0, seed=7)
    box.start()
    yield box
    box.stop()


@pytest.fixture
def waits() -> list[float]:
    return []


@pytest.fixture
def client(sandbox, waits) -> ShopifyClient:
    made = ShopifyClient(sandbox.connector_credentials(), timeout=5)
    made.sleep = waits.append  # count the waits instead of spending them
    return made


@pytest.fixture
def connector(sandbox, client) -> ShopifyConnector:
    return ShopifyConnector(sandbox.connector_credentials(), client=client)


def place(sandbox: ShopifySandbox, at: datetime) -> dict:
    sandbox.set_clock(at)
    return sandbox.generate(1, push=False)[0]


def api(sandbox: ShopifySandbox, path: str, token: str | None = None, **params) -> requests.Response:
    return requests.get(f"{sandbox.base_url}/admin/api/2024-01/{path}", params=params, timeout=5,
                        headers={"X-Shopify-Access-Token": token or sandbox.access_token})


def set_faults(sandbox: ShopifySandbox, **faults) -> None:
    response = requests.post(f"{sandbox.base_url}/_sandbox/faults", json=faults, timeout=5)
    assert response.status_code == 200


class Receiver:
    """A tiny HTTP endpoint that stores every webhook it gets (headers with their original names, raw body)."""

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
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhooks/shopify"

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


# --- Webhook signatures (API_FACTS.md §1.9 test vector) ---------------------------------------------------


def vector_connector() -> ShopifyConnector:
    return ShopifyConnector({"api_secret": VECTOR_SECRET})


def test_hmac_test_vector():
    assert shopify_hmac(VECTOR_SECRET, VECTOR_BODY) == VECTOR_HMAC


def test_parse_webhook_accepts_the_test_vector_with_any_header_case():
    headers = {"x-shopify-hmac-sha256": VECTOR_HMAC, "X-SHOPIFY-TOPIC": "orders/updated",
               "X-Shopify-Webhook-Id": "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"}
    [delivery] = vector_connector().parse_webhook(headers=headers, body=VECTOR_BODY)
    assert delivery.platform_order_id == "450789469"
    assert delivery.topic == "orders/updated"
    assert delivery.delivery_id == "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"  # no Event-Id: the webhook id
    assert delivery.payload == {"id": 450789469, "name": "#1001"}
    assert delivery.updated_at is None and delivery.needs_fetch is True  # no updated_at: fetch the order


@pytest.mark.parametrize(("body", "signature"), [
    (b'{"id":450789469,"name":"#1002"}', VECTOR_HMAC),  # body changed
    (VECTOR_BODY + b" ", VECTOR_HMAC),  # one byte added
    (VECTOR_BODY, VECTOR_HMAC[:-2] + "A="),  # signature changed
    (VECTOR_BODY, ""),
])
def test_parse_webhook_refuses_tampered_deliveries(body, signature):
    headers = {"X-Shopify-Topic": "orders/updated", "X-Shopify-Hmac-Sha256": signature}
    with pytest.raises(SignatureError):
        vector_connector().parse_webhook(headers=headers, body=body)


def test_parse_webhook_refuses_missing_header_and_a_signed_non_json_body():
    with pytest.raises(SignatureError, match="without"):
        vector_connector().parse_webhook(headers={"X-Shopify-Topic": "orders/create"}, body=VECTOR_BODY)
    body = b"<html>not json"
    with pytest.raises(PermanentError, match="not JSON") as caught:
        vector_connector().parse_webhook(headers={"X-Shopify-Hmac-Sha256": shopify_hmac(VECTOR_SECRET, body)},
                                         body=body)
    assert not isinstance(caught.value, SignatureError)


def test_parse_webhook_without_a_configured_secret_is_an_auth_problem():
    with pytest.raises(AuthError):
        ShopifyConnector({}).parse_webhook(headers={"X-Shopify-Hmac-Sha256": VECTOR_HMAC}, body=VECTOR_BODY)


# --- Incremental polling ------------------------------------------------------------------------------------


def test_poll_walks_every_page_of_the_window_once(sandbox, connector, waits):
    before = [place(sandbox, T0 - timedelta(seconds=s)) for s in (3600, 1)]
    inside = [place(sandbox, T0 + timedelta(seconds=10 * i)) for i in range(620)]
    end = T0 + timedelta(seconds=6200)
    after = [place(sandbox, end), place(sandbox, end + timedelta(minutes=1))]  # end is exclusive
    cancelled = inside[5]["id"]
    sandbox.set_clock(T0 + timedelta(seconds=55))
    sandbox.update_order(cancelled, cancelled_at=T0 + timedelta(seconds=55), financial_status="voided")
    requests_before = sandbox.request_count

    polled = list(connector.poll(start=T0, end=end))

    ids = [raw.platform_order_id for raw in polled]
    assert sorted(ids) == sorted(str(order["id"]) for order in inside)
    assert len(ids) == len(set(ids)) == 620
    assert not {str(order["id"]) for order in before + after} & set(ids)
    assert sandbox.request_count - requests_before == 3  # 250 + 250 + 120
    assert [raw.updated_at for raw in polled] == sorted(raw.updated_at for raw in polled)
    assert all(raw.updated_at.tzinfo is not None and T0 <= raw.updated_at < end for raw in polled)
    assert next(raw for raw in polled if raw.platform_order_id == str(cancelled)).payload["cancelled_at"]
    assert waits == []


def test_list_orders_pages_and_keyset_cursor_survives_updates_between_pages(sandbox, client):
    orders = [place(sandbox, T0 + timedelta(seconds=i)) for i in range(620)]
    pages = client.list_orders(updated_at_min=T0, updated_at_max=T0 + timedelta(hours=1))
    first = next(pages)
    assert len(first) == 250
    # An order of page 1 is updated while the client pages: with offsets every later order would shift
    # one place back and one would be skipped; the cursor holds the last key, so nothing is lost.
    sandbox.set_clock(T0 + timedelta(minutes=30))
    sandbox.update_order(first[0]["id"], note="gift wrap please")
    rest = list(pages)
    assert [len(page) for page in rest] == [250, 121]
    seen = [order["id"] for page in [first, *rest] for order in page]
    assert set(seen) == {order["id"] for order in orders}
    assert seen.count(first[0]["id"]) == 2  # once as it was, once updated (the inbox keeps the newer)


def test_page_info_with_another_filter_is_a_400(sandbox):
    for i in range(3):
        place(sandbox, T0 + timedelta(seconds=i))
    first = api(sandbox, "orders.json", limit=2, status="any", updated_at_min="2024-03-01T00:00:00-05:00")
    assert first.status_code == 200
    assert len(first.json()["orders"]) == 2
    next_url = first.links["next"]["url"]
    assert next_url.startswith(f"{sandbox.base_url}/admin/api/2024-01/orders.json?limit=2&page_info=")
    assert "previous" not in first.links
    assert first.headers["X-Shopify-Shop-Api-Call-Limit"] == "1/40"
    page_info = requests.utils.urlparse(next_url).query.split("page_info=")[1]

    refused = api(sandbox, "orders.json", limit=2, page_info=page_info, updated_at_min="2024-03-01T00:00:00-05:00")
    assert refused.status_code == 400
    assert refused.json() == {"errors": {"updated_at_min": (
        "updated_at_min cannot be passed when page_info is present. "
        "See https://shopify.dev/api/usage/pagination-rest for more information.")}}
    refused = api(sandbox, "orders.json", page_info=page_info, status="any")
    assert refused.status_code == 400
    assert "status cannot be passed when page_info is present" in refused.json()["errors"]["status"]

    second = api(sandbox, "orders.json", limit=2, page_info=page_info)
    assert second.status_code == 200
    assert len(second.json()["orders"]) == 1
    assert "next" not in second.links and "previous" in second.links
    back = api(sandbox, "orders.json", limit=2,
               page_info=requests.utils.urlparse(second.links["previous"]["url"]).query.split("page_info=")[1])
    assert [o["id"] for o in back.json()["orders"]] == [o["id"] for o in first.json()["orders"]]


def test_sandbox_listing_defaults_status_open_limit_50_and_allows_250(sandbox):
    orders = [place(sandbox, T0 + timedelta(seconds=i)) for i in range(300)]
    sandbox.update_order(orders[0]["id"], cancelled_at=T0, closed_at=T0)
    sandbox.update_order(orders[1]["id"], closed_at=T0)
    default = api(sandbox, "orders.json")
    assert len(default.json()["orders"]) == 50
    assert {orders[0]["id"], orders[1]["id"]}.isdisjoint(o["id"] for o in default.json()["orders"])
    assert len(api(sandbox, "orders.json", limit=250, status="any").json()["orders"]) == 250
    assert api(sandbox, "orders/count.json").json() == {"count": 298}
    assert api(sandbox, "orders/count.json", status="any").json() == {"count": 300}
    assert api(sandbox, "orders/count.json", status="cancelled").json() == {"count": 1}


# --- Errors, retries and rate limits ---------------------------------------------------------------------


def test_wrong_token_is_an_auth_error_without_retries(sandbox, waits):
    order = place(sandbox, T0)
    raw = api(sandbox, f"orders/{order['id']}.json", token="shpat_wrong")
    assert raw.status_code == 401
    assert raw.json() == {"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"}
    bad = ShopifyClient({**sandbox.connector_credentials(), "access_token": "shpat_wrong"}, timeout=5)
    bad.sleep = waits.append
    with pytest.raises(AuthError) as caught:
        bad.get_order(order["id"])
    assert caught.value.code == "401"
    assert waits == []


def test_unknown_order_is_a_permanent_404(sandbox, client, waits):
    with pytest.raises(PermanentError) as caught:
        client.get_order(1)
    assert caught.value.code == "404" and "Not Found" in caught.value.message
    assert waits == []


def test_rate_limited_answer_has_the_documented_shape(sandbox):
    order = place(sandbox, T0)
    set_faults(sandbox, rate_limit=1)
    raw = api(sandbox, f"orders/{order['id']}.json")
    assert raw.status_code == 429
    assert raw.headers["Retry-After"] == "1.0"
    assert raw.headers["X-Shopify-Shop-Api-Call-Limit"] == "0/40"
    assert raw.json() == {"errors": "Exceeded 2 calls per second for api client. Reduce request rates to resume "
                                    "uninterrupted service."}


def test_rate_limit_waits_retry_after_then_succeeds(sandbox, client, waits):
    order = place(sandbox, T0)
    set_faults(sandbox, rate_limit=3)
    assert client.get_order(order["id"])["id"] == order["id"]
    assert waits == [1.0, 1.0, 1.0]
    assert sandbox.faults.rate_limit == 0


def test_rate_limit_beyond_max_retries_is_transient_with_retry_after(sandbox, client, waits):
    order = place(sandbox, T0)
    set_faults(sandbox, rate_limit=10)
    with pytest.raises(TransientError) as caught:
        client.get_order(order["id"])
    assert caught.value.code == "429" and caught.value.retry_after == 1.0
    assert waits == [1.0] * 5
    assert sandbox.faults.rate_limit == 4  # 1 call + 5 retries


def test_leaky_bucket_answers_429_when_full():
    box = ShopifySandbox(port=0, bucket_size=2, leak_rate=0.5)
    box.start()
    try:
        order = place(box, T0)
        first, second, third = (api(box, f"orders/{order['id']}.json") for _ in range(3))
        assert [first.status_code, second.status_code, third.status_code] == [200, 200, 429]
        assert [first.headers["X-Shopify-Shop-Api-Call-Limit"],
                second.headers["X-Shopify-Shop-Api-Call-Limit"]] == ["1/2", "2/2"]
        assert 0 < float(third.headers["Retry-After"]) <= 2.0
    finally:
        box.stop()


def test_client_paces_itself_against_a_real_bucket():
    box = ShopifySandbox(port=0, bucket_size=4, leak_rate=20)
    box.start()
    try:
        order = place(box, T0)
        slept: list[float] = []
        paced = ShopifyClient(box.connector_credentials(), timeout=5, leak_rate=20)
        paced.sleep = lambda seconds: (slept.append(seconds), time.sleep(seconds))
        for _ in range(12):
            assert paced.get_order(order["id"])["id"] == order["id"]
        # The bucket never overflowed: the client waited on the call-limit header, not on 429s.
        assert slept and all(seconds < 0.5 for seconds in slept)
        assert box.request_count == 12
    finally:
        box.stop()


def test_server_errors_are_retried_with_growing_jittered_backoff(sandbox, client, waits):
    order = place(sandbox, T0)
    set_faults(sandbox, server_errors=2)
    assert client.get_order(order["id"])["id"] == order["id"]
    assert len(waits) == 2
    assert 0.1 <= waits[0] <= 0.2 and 0.2 <= waits[1] <= 0.4


def test_malformed_body_is_retried(sandbox, client, waits):
    order = place(sandbox, T0)
    set_faults(sandbox, malformed=1)
    assert client.get_order(order["id"])["id"] == order["id"]
    assert len(waits) == 1


def test_persistent_server_errors_end_in_a_transient_error(sandbox, client, waits):
    order = place(sandbox, T0)
    set_faults(sandbox, down=True)
    before = sandbox.request_count
    with pytest.raises(TransientError) as caught:
        client.get_order(order["id"])
    assert caught.value.code == "503"
    assert sandbox.request_count - before == 6
    assert len(waits) == 5


def test_connection_refused_is_transient(waits):
    dead = ShopifySandbox(port=0)
    dead.start()
    credentials = dead.connector_credentials()
    dead.stop()
    gone = ShopifyClient(credentials, timeout=2, max_retries=1)
    gone.sleep = waits.append
    with pytest.raises(TransientError) as caught:
        gone.get_order(1)
    assert caught.value.code == "network"
    assert len(waits) == 1


# --- Push-back: fulfilment and stock ------------------------------------------------------------------------


def test_create_fulfillment_and_set_inventory_level_are_recorded(sandbox, connector):
    order = place(sandbox, T0)
    while len(order["line_items"]) < 2:
        order = place(sandbox, T0)
    first, *others = order["line_items"]

    partial = connector.create_fulfillment(
        order_id=str(order["id"]), tracking_number="1Z001985YW99744790", tracking_company="UPS",
        tracking_url="https://www.ups.com/track?tracknum=1Z001985YW99744790",
        line_items=[{"line_item_id": str(first["id"]), "quantity": first["quantity"]}])
    assert partial["status"] == "success" and partial["tracking_number"] == "1Z001985YW99744790"
    assert connector.map_order(connector.fetch_order(str(order["id"])).payload).status == "partially_shipped"

    rest = connector.create_fulfillment(order_id=str(order["id"]), tracking_number="1Z999", tracking_company="UPS")
    assert [line["id"] for line in rest["line_items"]] == [line["id"] for line in others]
    fetched = connector.fetch_order(str(order["id"]))
    assert fetched.payload["fulfillment_status"] == "fulfilled"
    assert fetched.updated_at > T0
    assert connector.map_order(fetched.payload).status == "shipped"

    ids = sandbox.variant(first["sku"])
    level = connector.set_inventory_level(inventory_item_id=ids["inventory_item_id"],
                                          location_id=ids["location_id"], available=42)
    assert level["available"] == 42

    assert [(p["kind"], p.get("order_id"), p.get("tracking_number")) for p in sandbox.pushed] == [
        ("fulfillment", str(order["id"]), "1Z001985YW99744790"), ("fulfillment", str(order["id"]), "1Z999"),
        ("inventory", None, None)]
    assert sandbox.pushed[0]["tracking_company"] == "UPS"
    assert sandbox.pushed[0]["line_items"] == [{"line_item_id": str(first["id"]), "sku": first["sku"],
                                                "quantity": first["quantity"]}]
    assert {(line["line_item_id"], line["quantity"]) for line in sandbox.pushed[1]["line_items"]} == {
        (str(line["id"]), line["quantity"]) for line in others}
    assert {k: sandbox.pushed[2][k] for k in ("inventory_item_id", "location_id", "available")} == {
        "inventory_item_id": ids["inventory_item_id"], "location_id": ids["location_id"], "available": 42}
    assert sandbox.inventory_levels == {(ids["inventory_item_id"], ids["location_id"]): 42}


def test_ship_and_set_stock_of_the_connector_interface(sandbox, connector):
    order = place(sandbox, T0)
    while len(order["line_items"]) < 2:
        order = place(sandbox, T0)
    first = order["line_items"][0]

    connector.ship(platform_order_id=str(order["id"]), tracking_number="SF1234567890", carrier_code="sf",
                   line_ids=[str(first["id"])])
    assert {k: sandbox.pushed[-1][k] for k in ("tracking_number", "tracking_company", "line_items")} == {
        "tracking_number": "SF1234567890", "tracking_company": "SF Express",
        "line_items": [{"line_item_id": str(first["id"]), "sku": first["sku"], "quantity": first["quantity"]}]}
    assert connector.map_order(connector.fetch_order(str(order["id"])).payload).status == "partially_shipped"
    connector.ship(platform_order_id=str(order["id"]), tracking_number="RM1", carrier_code="Royal Mail")
    assert sandbox.pushed[-1]["tracking_company"] == "Royal Mail"  # an unknown code passes through
    assert connector.map_order(connector.fetch_order(str(order["id"])).payload).status == "shipped"

    tea, mug = sandbox.variant("TEA-LJ-250G"), sandbox.variant("CUP-CER-350")
    connector.set_stock(platform_product_id=str(tea["product_id"]), platform_sku_id=str(tea["variant_id"]),
                        quantity=17)
    connector.set_stock(platform_product_id=str(mug["product_id"]), sku="CUP-CER-350", quantity=0)
    assert [(p["inventory_item_id"], p["location_id"], p["available"]) for p in sandbox.pushed[2:]] == [
        (tea["inventory_item_id"], sandbox.location_id, 17), (mug["inventory_item_id"], sandbox.location_id, 0)]
    with pytest.raises(PermanentError) as caught:
        connector.set_stock(platform_product_id=str(mug["product_id"]), sku="NOT-THIS-ONE", quantity=1)
    assert caught.value.code == "unknown_sku"
    assert len(sandbox.pushed) == 4


def test_set_stock_uses_the_configured_location(sandbox, client):
    tea = sandbox.variant("TEA-LJ-250G")
    configured = ShopifyConnector({**sandbox.connector_credentials(), "location_id": "777"}, client=client)
    with pytest.raises(PermanentError) as caught:
        configured.set_stock(platform_product_id=str(tea["product_id"]), platform_sku_id=str(tea["variant_id"]),
                             quantity=3)
    assert caught.value.code == "422"  # the sandbox stocks nothing at location 777
    assert sandbox.pushed == []


def test_fulfilling_again_returns_the_existing_fulfillment(sandbox, client):
    order = place(sandbox, T0)
    made = client.create_fulfillment(order_id=order["id"], tracking_number="SF100", tracking_company="SF Express")
    again = client.create_fulfillment(order_id=order["id"], tracking_number="SF100", tracking_company="SF Express")
    assert again["id"] == made["id"]
    assert len(sandbox.pushed) == 1
    with pytest.raises(PermanentError, match="nothing left to fulfil"):
        client.create_fulfillment(order_id=order["id"], tracking_number="OTHER", tracking_company="UPS")


def test_lost_fulfillment_response_does_not_ship_twice(waits):
    class LosesFirstFulfillmentResponse(ShopifySandbox):
        lost = False

        def handle_api(self, request):
            response = super().handle_api(request)
            if request.path.endswith("/fulfillments.json") and not self.lost:
                self.lost = True
                return Response(502, {"errors": "Bad Gateway"})  # processed, but the answer never arrives
            return response

    box = LosesFirstFulfillmentResponse(port=0)
    box.start()
    try:
        order = place(box, T0)
        lossy = ShopifyClient(box.connector_credentials(), timeout=5)
        lossy.sleep = waits.append
        made = lossy.create_fulfillment(order_id=order["id"], tracking_number="YT123",
                                        tracking_company="YunExpress")
        assert made["tracking_number"] == "YT123"
        assert [p["kind"] for p in box.pushed] == ["fulfillment"]
        assert len(waits) == 1
    finally:
        box.stop()


def test_fulfillment_errors_carry_shopify_text(sandbox, client):
    order = place(sandbox, T0)
    sandbox.update_order(order["id"], cancelled_at=T0 + timedelta(minutes=1))
    with pytest.raises(PermanentError, match="nothing left to fulfil"):
        client.create_fulfillment(order_id=order["id"], tracking_number="1Z", tracking_company="UPS")
    with pytest.raises(PermanentError) as caught:
        client.set_inventory_level(inventory_item_id=1, location_id=2, available=3)
    assert caught.value.code == "422"
    assert "Inventory item is not stocked at the location" in caught.value.message
    assert sandbox.pushed == []


# --- Webhooks from the sandbox ------------------------------------------------------------------------------


def test_sandbox_webhooks_verify_with_parse_webhook(sandbox, receiver):
    sandbox.webhook_url = receiver.url
    connector = ShopifyConnector(sandbox.connector_credentials())
    sandbox.set_clock(T0)
    order = sandbox.generate(1)[0]
    sandbox.set_clock(T0 + timedelta(minutes=3))
    sandbox.update_order(order["id"], financial_status="refunded")

    created, updated = receiver.wait_for(2)
    [first] = connector.parse_webhook(headers=created[0], body=created[1])
    [second] = connector.parse_webhook(headers=updated[0], body=updated[1])
    assert (first.topic, second.topic) == ("orders/create", "orders/updated")
    assert first.platform_order_id == second.platform_order_id == str(order["id"])
    assert (first.updated_at, second.updated_at) == (T0, T0 + timedelta(minutes=3))
    assert first.delivery_id == created[0]["X-Shopify-Event-Id"] != second.delivery_id
    assert connector.map_order(second.payload).status == "closed"
    assert created[0]["X-Shopify-Shop-Domain"] == "sandbox-shop.myshopify.com"
    assert created[0]["X-Shopify-API-Version"] == "2026-10"
    assert datetime.fromisoformat(created[0]["X-Shopify-Triggered-At"]).tzinfo is not None
    assert json.loads(created[1]) == order

    tampered = created[1].replace(b'"paid"', b'"voided"').replace(b'"pending"', b'"voided"')
    with pytest.raises(SignatureError):
        connector.parse_webhook(headers=created[0], body=tampered)


def test_fulfillment_through_the_api_pushes_orders_updated(sandbox, receiver, client):
    order = place(sandbox, T0)
    sandbox.webhook_url = receiver.url
    client.create_fulfillment(order_id=order["id"], tracking_number="1Z5", tracking_company="UPS")
    [(headers, body)] = receiver.wait_for(1)
    [delivery] = ShopifyConnector(sandbox.connector_credentials()).parse_webhook(headers=headers, body=body)
    assert delivery.topic == "orders/updated"
    assert delivery.payload["fulfillment_status"] == "fulfilled"
    assert delivery.updated_at > T0


def test_duplicate_webhooks_share_one_event_id(sandbox, receiver):
    sandbox.webhook_url = receiver.url
    set_faults(sandbox, duplicate_webhooks=True)
    sandbox.generate(1)
    sandbox.generate(1)
    deliveries = receiver.wait_for(4)
    connector = ShopifyConnector(sandbox.connector_credentials())
    parsed = [connector.parse_webhook(headers=h, body=b)[0] for h, b in deliveries]
    assert parsed[0].delivery_id == parsed[1].delivery_id != parsed[2].delivery_id == parsed[3].delivery_id
    assert deliveries[0][1] == deliveries[1][1]
    assert deliveries[0][0]["X-Shopify-Webhook-Id"] != deliveries[1][0]["X-Shopify-Webhook-Id"]


def test_out_of_order_webhooks_keep_their_event_ids(sandbox, receiver):
    sandbox.webhook_url = receiver.url
    set_faults(sandbox, out_of_order_webhooks=True)
    order = place(sandbox, T0)
    sandbox.update_order(order["id"], financial_status="paid")
    sandbox.update_order(order["id"], note="call first")
    assert receiver.deliveries == []
    set_faults(sandbox, out_of_order_webhooks=False)  # releases the held deliveries, newest first
    deliveries = receiver.wait_for(2)
    connector = ShopifyConnector(sandbox.connector_credentials())
    newest, oldest = (connector.parse_webhook(headers=h, body=b)[0] for h, b in deliveries)
    assert newest.updated_at > oldest.updated_at
    assert newest.payload["note"] == "call first"
    assert newest.delivery_id != oldest.delivery_id
