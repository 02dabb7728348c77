"""The webhook intake path: one statement for a new delivery, repeats counted once and stored once, the
process cache of stores and secrets, and the debounced wake of the inbox drain."""

import json
import time
from types import SimpleNamespace

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from connectors import services, wake
from connectors.douyin.connector import event_sign
from connectors.models import ChannelSyncState, DeadReason, InboxKind, InboxMessage, InboxStatus
from connectors.sandbox.douyin import DouyinSandbox
from connectors.sandbox.shopify import ShopifySandbox
from connectors.selectors import sync_status_rows
from connectors.shopify.connector import shopify_hmac
from oms import effects
from orders.models import Platform, Store
from tests.conftest import channel_store

pytestmark = pytest.mark.django_db

PROCESS_TASK = "connectors.tasks.process_inbox_task"


@pytest.fixture
def shopify(db):
    sandbox = ShopifySandbox(port=0, skus=[("TEA-LJ-250G", "37.99")], seed=29)  # never started: no HTTP here
    store = channel_store(platform=Platform.SHOPIFY, code="shop", name="Shopify US", default_currency="USD",
                          credentials=sandbox.connector_credentials())
    return sandbox, store


@pytest.fixture
def queued(monkeypatch):
    """The drain tasks the wake queues, as (task name, countdown, kwargs), instead of queueing them."""
    calls = []
    monkeypatch.setattr(wake, "task_after_commit",
                        lambda name, *, countdown=None, **kwargs: calls.append((name, countdown, kwargs)))
    return calls


def order_body(sandbox) -> bytes:
    return json.dumps(sandbox.generate_order()).encode()


def post(body: bytes, *, secret: str, event_id: str, store_code: str = "shop", platform: str = "shopify"):
    return Client().post(f"/webhooks/{platform}/{store_code}/", data=body, content_type="application/json",
                         HTTP_X_SHOPIFY_HMAC_SHA256=shopify_hmac(secret, body), HTTP_X_SHOPIFY_TOPIC="orders/create",
                         HTTP_X_SHOPIFY_EVENT_ID=event_id, REMOTE_ADDR="203.0.113.9")


# --- One statement on the happy path --------------------------------------------------------------------------

def test_a_new_delivery_with_the_store_cached_costs_exactly_one_sql_statement(shopify, queued):
    sandbox, store = shopify
    assert post(order_body(sandbox), secret=sandbox.api_secret, event_id="warm").status_code == 200  # fills the cache
    body = order_body(sandbox)
    with CaptureQueriesContext(connection) as queries:
        response = post(body, secret=sandbox.api_secret, event_id="evt-1")
    assert response.status_code == 200
    assert len(queries) == 1, [query["sql"] for query in queries]
    assert queries[0]["sql"].startswith("INSERT INTO") and "ON CONFLICT" in queries[0]["sql"]
    row = InboxMessage.objects.get(store=store, delivery_key="wh:evt-1")
    payload = json.loads(body)
    assert (row.kind, row.status, row.topic, row.platform_order_id) == (
        InboxKind.WEBHOOK, InboxStatus.PENDING, "orders/create", str(payload["id"]))
    assert json.loads(row.body) == payload and row.next_attempt_at is not None and row.received_at is not None
    assert row.headers["x-shopify-event-id"] == "evt-1" and "x-shopify-hmac-sha256" not in row.headers
    assert (row.duplicates, row.attempts, row.body_size, row.source_address) == (0, 0, None, None)
    # No counter is touched on the request path: the status page counts webhooks from the inbox.
    state = ChannelSyncState.objects.get(store=store)
    assert (state.webhooks_received, state.duplicates) == (0, 0)
    assert next(row for row in sync_status_rows() if row["store"].pk == store.pk)["webhooks"] == 2


def test_a_cold_cache_adds_only_the_store_and_secret_lookups(shopify, queued):
    sandbox, _store = shopify
    with CaptureQueriesContext(connection) as queries:
        assert post(order_body(sandbox), secret=sandbox.api_secret, event_id="evt-cold").status_code == 200
    assert len(queries) == 3, [query["sql"] for query in queries]  # store, its credentials, the insert


# --- Repeats ------------------------------------------------------------------------------------------------

def test_a_repeated_delivery_is_stored_once_and_counted_once(shopify, queued):
    sandbox, store = shopify
    body = order_body(sandbox)
    assert post(body, secret=sandbox.api_secret, event_id="evt-dup").status_code == 200
    with CaptureQueriesContext(connection) as queries:
        assert post(body, secret=sandbox.api_secret, event_id="evt-dup").status_code == 200
    assert len(queries) == 3  # the insert that found the row, the row's count, the store's count
    row = InboxMessage.objects.get(store=store)
    assert row.delivery_key == "wh:evt-dup" and row.duplicates == 1
    assert ChannelSyncState.objects.get(store=store).duplicates == 1
    assert next(row for row in sync_status_rows() if row["store"].pk == store.pk)["webhooks"] == 1
    # A repeat stores nothing new, so it wakes nothing either.
    assert queued == [(PROCESS_TASK, None, {"store_id": store.pk})]


def test_a_push_carrying_one_message_twice_stores_it_once_and_counts_the_repeat(db, queued):
    sandbox = DouyinSandbox(port=0)
    store = channel_store(platform=Platform.DOUYIN, code="dy", name="抖店", credentials=sandbox.connector_credentials())
    captured = []
    sandbox.post_webhook = lambda **delivery: captured.append(delivery)
    sandbox.deliver_webhook("100", sandbox.generate_order())
    message = json.loads(captured[0]["body"])[0]
    other = dict(message, msg_id=str(int(message["msg_id"]) + 1))
    body = json.dumps([message, message, other]).encode()
    headers = {"HTTP_APP_ID": sandbox.app_key, "HTTP_EVENT_SIGN": event_sign(sandbox.app_key, body, sandbox.app_secret)}
    response = Client().post("/webhooks/douyin/dy/", data=body, content_type="application/json", **headers)
    assert response.status_code == 200
    rows = InboxMessage.objects.filter(store=store).order_by("delivery_key")
    assert [(row.delivery_key, row.duplicates) for row in rows] == [
        (f"wh:{message['msg_id']}", 1), (f"wh:{other['msg_id']}", 0)]
    assert ChannelSyncState.objects.get(store=store).duplicates == 1
    assert queued == [(PROCESS_TASK, None, {"store_id": store.pk})]


# --- The store cache ----------------------------------------------------------------------------------------

def test_a_store_deactivated_elsewhere_is_refused_once_the_cache_runs_out(shopify, queued, monkeypatch):
    sandbox, store = shopify
    clock = [1000.0]
    monkeypatch.setattr(services, "_monotonic", lambda: clock[0])
    assert post(order_body(sandbox), secret=sandbox.api_secret, event_id="a").status_code == 200
    Store.objects.filter(pk=store.pk).update(active=False)  # as another process would: this cache is not told
    clock[0] += services.WEBHOOK_STORE_CACHE_SECONDS - 1
    assert post(order_body(sandbox), secret=sandbox.api_secret, event_id="b").status_code == 200  # still cached
    clock[0] += 2
    response = post(order_body(sandbox), secret=sandbox.api_secret, event_id="c")
    assert (response.status_code, response.json()["code"]) == (404, "unknown_store")
    assert sorted(InboxMessage.objects.filter(store=store).values_list("delivery_key", flat=True)) == ["wh:a", "wh:b"]


def test_a_store_deactivated_by_the_setup_service_is_refused_at_once_in_this_process(shopify, queued):
    sandbox, store = shopify
    assert post(order_body(sandbox), secret=sandbox.api_secret, event_id="a").status_code == 200
    services.store_setup(store=store, platform=store.platform, code=store.code, name=store.name, active=False,
                         default_currency=store.default_currency, reserve_on=store.reserve_on,
                         allow_split=store.allow_split, credentials=sandbox.connector_credentials(),
                         sync_enabled=True, poll_interval_seconds=60)
    assert post(order_body(sandbox), secret=sandbox.api_secret, event_id="b").status_code == 404


def test_a_changed_secret_is_used_once_the_cache_runs_out_and_a_forged_body_stays_refused(shopify, queued,
                                                                                         monkeypatch):
    sandbox, store = shopify
    clock = [1000.0]
    monkeypatch.setattr(services, "_monotonic", lambda: clock[0])
    assert post(order_body(sandbox), secret=sandbox.api_secret, event_id="a").status_code == 200
    response = post(order_body(sandbox), secret="not-the-secret", event_id="forged")
    assert (response.status_code, response.json()["code"]) == (401, "bad_signature")  # cached or not
    ChannelSyncState.objects.filter(store=store).update(credentials={"api_secret": "rotated"})
    clock[0] += services.WEBHOOK_STORE_CACHE_SECONDS + 1
    assert post(order_body(sandbox), secret=sandbox.api_secret, event_id="old").status_code == 401
    assert post(order_body(sandbox), secret="rotated", event_id="new").status_code == 200
    accepted = InboxMessage.objects.filter(store=store).exclude(dead_reason=DeadReason.SIGNATURE)
    assert sorted(accepted.values_list("delivery_key", flat=True)) == ["wh:a", "wh:new"]
    assert ChannelSyncState.objects.get(store=store).signature_failures == 2


def test_unknown_and_manual_stores_are_404_and_not_kept_in_the_cache(shopify, queued):
    sandbox, _store = shopify
    Store.objects.create(platform=Platform.MANUAL, code="counter", name="Counter sales")
    for platform, code in (("shopify", "nope"), ("manual", "counter")):
        response = post(order_body(sandbox), secret=sandbox.api_secret, event_id="x", platform=platform,
                        store_code=code)
        assert (response.status_code, response.json()["code"]) == (404, "unknown_store")
    assert set(services._webhook_targets) <= {("shopify", "shop")}


# --- The wake -----------------------------------------------------------------------------------------------

def test_wakes_within_the_window_queue_one_drain_now_and_one_at_the_window_end(queued):
    wake.inbox_wake(7)
    wake.inbox_wake(7)
    wake.inbox_wake(7)
    wake.inbox_wake(8)  # another store has its own window
    assert queued == [(PROCESS_TASK, None, {"store_id": 7}),
                      (PROCESS_TASK, wake.WAKE_WINDOW_SECONDS, {"store_id": 7}),
                      (PROCESS_TASK, None, {"store_id": 8})]
    time.sleep(wake.WAKE_WINDOW_SECONDS + 0.2)  # the keys expire in Redis (or the local cache) on their own
    queued.clear()
    wake.inbox_wake(7)
    assert queued == [(PROCESS_TASK, None, {"store_id": 7})]


def test_two_deliveries_in_one_window_queue_one_drain_between_them_not_two(shopify, queued):
    sandbox, store = shopify
    for event_id in ("one", "two", "three"):
        assert post(order_body(sandbox), secret=sandbox.api_secret, event_id=event_id).status_code == 200
    # The first queues the drain; the second the one at the window's end that covers it and the third.
    assert queued == [(PROCESS_TASK, None, {"store_id": store.pk}),
                      (PROCESS_TASK, wake.WAKE_WINDOW_SECONDS, {"store_id": store.pk})]
    assert InboxMessage.objects.filter(store=store, status=InboxStatus.PENDING).count() == 3


def test_the_wake_queues_its_drain_only_after_commit(django_capture_on_commit_callbacks, monkeypatch):
    sent = []

    class Task:
        def delay(self, **kwargs):
            sent.append((kwargs, None))

        def apply_async(self, *, kwargs, countdown):
            sent.append((kwargs, countdown))

    monkeypatch.setattr(effects, "current_app", SimpleNamespace(tasks={PROCESS_TASK: Task()}))
    with django_capture_on_commit_callbacks(execute=True):
        wake.inbox_wake(9)
        wake.inbox_wake(9)
        assert sent == []
    assert sent == [({"store_id": 9}, None), ({"store_id": 9}, wake.WAKE_WINDOW_SECONDS)]
