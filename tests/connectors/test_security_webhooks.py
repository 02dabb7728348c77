"""Webhooks under bad input: NUL bytes are refused or cleaned (never a 500, never a looping row), and refused
deliveries keep only a bounded record, are rate-limited per store and address, and are purged after a while."""

import hashlib
import io
import json
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.test import Client
from django.utils import timezone

from connectors import services, tasks
from connectors.models import ChannelSyncState, DeadReason, InboxKind, InboxMessage, InboxStatus
from connectors.sandbox.douyin import DouyinSandbox
from connectors.sandbox.shopify import ShopifySandbox
from connectors.shopify.connector import shopify_hmac
from orders.models import Order, Platform
from pipeline import channel
from tests.conftest import PASSWORD, channel_store

pytestmark = pytest.mark.django_db

MB = 1024 * 1024


@pytest.fixture(autouse=True)
def fresh_rate_limits():
    # The limits live in the shared cache (this run's own Redis db): start every test from empty windows.
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def shopify(skus):
    sandbox = ShopifySandbox(port=0, skus=[("TEA-LJ-250G", "37.99")], seed=11)  # never started: no HTTP here
    store = channel_store(platform=Platform.SHOPIFY, code="shop", name="Shopify US", default_currency="USD",
                                 credentials=sandbox.connector_credentials())
    ChannelSyncState.objects.get_or_create(store=store)
    return sandbox, store


@pytest.fixture
def douyin(db):
    sandbox = DouyinSandbox(port=0)
    store = channel_store(platform=Platform.DOUYIN, code="dy", name="抖店",
                                 credentials=sandbox.connector_credentials())
    ChannelSyncState.objects.get_or_create(store=store)
    return sandbox, store


def signed_post(sandbox, body: bytes, *, event_id: str, address: str = "203.0.113.9"):
    return Client().post("/webhooks/shopify/shop/", data=body, content_type="application/json",
                         HTTP_X_SHOPIFY_HMAC_SHA256=shopify_hmac(sandbox.api_secret, body),
                         HTTP_X_SHOPIFY_TOPIC="orders/create", HTTP_X_SHOPIFY_EVENT_ID=event_id, REMOTE_ADDR=address)


def unsigned_post(body: bytes, *, address: str):
    return Client().post("/webhooks/shopify/shop/", data=body, content_type="application/json",
                         HTTP_X_SHOPIFY_TOPIC="orders/create", HTTP_X_SHOPIFY_HMAC_SHA256="Zm9yZ2Vk",
                         REMOTE_ADDR=address)


# --- Item 1: NUL bytes ------------------------------------------------------------------------------------

def test_a_raw_nul_posted_anonymously_to_shopify_or_douyin_is_400_bad_input_and_stores_nothing(shopify, douyin):
    _sandbox, shop = shopify
    response = Client().post("/webhooks/shopify/shop/", data=b'{"a":"\x00"}', content_type="application/json")
    assert (response.status_code, response.json()["code"]) == (400, "bad_input")
    response = Client().post("/webhooks/douyin/dy/", data=b'[{"tag":"100","msg_id":"1","data":"\x00"}]',
                             content_type="application/json")
    assert (response.status_code, response.json()["code"]) == (400, "bad_input")
    # Whatever the declared type: a webhook body is text.
    response = Client().post("/webhooks/douyin/dy/", data=b"\x00", content_type="application/octet-stream")
    assert (response.status_code, response.json()["code"]) == (400, "bad_input")
    assert not InboxMessage.objects.exists()
    assert ChannelSyncState.objects.get(store=shop).signature_failures == 0


def test_a_signed_body_with_an_escaped_nul_is_stored_as_sent_and_becomes_an_order_without_it(shopify):
    sandbox, store = shopify
    order = sandbox.generate_order()
    order["shipping_address"]["name"] = "王\x00小贝"
    order["note"] = "请\x00尽快发货"
    body = json.dumps(order).encode()
    assert b"\\u0000" in body and b"\x00" not in body
    response = signed_post(sandbox, body, event_id="evt-nul")
    assert response.status_code == 200
    message = InboxMessage.objects.get(store=store)
    assert message.status == InboxStatus.PENDING
    assert "\\u0000" in message.body  # the raw record keeps the escape as the platform sent it

    assert channel.inbox_process_store(store_id=store.pk) == 1
    message.refresh_from_db()
    assert (message.status, message.dead_reason, message.attempts) == (InboxStatus.DONE, "", 1)
    imported = Order.objects.get(store=store)
    assert imported.receiver_name == "王小贝"
    assert imported.buyer_note == "请尽快发货"
    # Nothing is left to retry: a second drain finds no work and the row stays done.
    assert channel.inbox_process_store(store_id=store.pk) == 0
    assert services.inbox_overdue_store_ids(older_than=timedelta(0)) == []
    message.refresh_from_db()
    assert (message.status, message.attempts) == (InboxStatus.DONE, 1)


def test_a_nul_in_a_signed_push_identifier_is_cleaned_before_it_is_stored(shopify):
    sandbox, store = shopify
    order = sandbox.generate_order()
    order["id"] = f"{order['id']}\x00"
    assert signed_post(sandbox, json.dumps(order).encode(), event_id="evt-id-nul").status_code == 200
    message = InboxMessage.objects.get(store=store)
    assert "\x00" not in message.platform_order_id and message.platform_order_id


def test_a_multipart_post_to_a_webhook_is_read_as_raw_text_not_a_500(shopify):
    _sandbox, store = shopify
    upload = io.BytesIO(b"PK\x03\x04\x00\x00binary")
    upload.name = "junk.bin"
    response = Client().post("/webhooks/shopify/shop/", {"file": upload}, REMOTE_ADDR="198.51.100.7")
    assert (response.status_code, response.json()["code"]) == (400, "bad_input")
    response = Client().post("/webhooks/shopify/shop/", {"note": "hello"}, REMOTE_ADDR="198.51.100.7")
    assert (response.status_code, response.json()["code"]) == (401, "bad_signature")
    assert InboxMessage.objects.get(store=store).body.startswith("--BoUnDaRy")


# --- Item 3: refused deliveries ---------------------------------------------------------------------------

def test_twenty_unsigned_megabyte_posts_keep_only_bounded_records(shopify):
    _sandbox, store = shopify
    body = b'{"id": 1, "pad": "' + b"x" * (MB - 20) + b'"}'
    assert len(body) == MB
    for _ in range(20):
        response = unsigned_post(body, address="198.51.100.7")
        assert (response.status_code, response.json()["code"]) == (401, "bad_signature")
    records = list(InboxMessage.objects.filter(store=store))
    assert len(records) == 20
    for record in records:
        assert (record.status, record.dead_reason) == (InboxStatus.DEAD, DeadReason.SIGNATURE)
        assert record.body == body[:256].decode()
        assert len(record.body) == 256
        assert record.body_size == MB
        assert record.body_sha256 == hashlib.sha256(body).hexdigest()
        assert record.source_address == "198.51.100.7"
        stored = len(record.body) + len(json.dumps(record.headers)) + len(record.last_error) + len(record.delivery_key)
        assert stored < 1024
    assert ChannelSyncState.objects.get(store=store).signature_failures == 20


def test_over_the_limit_refused_posts_are_429_and_stored_nowhere_per_store_and_address(shopify, settings,
                                                                                        monkeypatch):
    sandbox, store = shopify
    settings.OMS_REFUSED_WEBHOOK_LIMIT_PER_MINUTE = 3
    monkeypatch.setattr(services, "_clock", lambda: 1_800_000_020.0)  # 20 s into a one-minute window
    for _ in range(3):
        assert unsigned_post(b'{"id": 1}', address="198.51.100.7").status_code == 401
    over = unsigned_post(b'{"id": 1}', address="198.51.100.7")
    assert over.status_code == 429
    assert over["Retry-After"] == "40"
    assert over.json()["code"] == "too_many_refused"
    assert InboxMessage.objects.filter(store=store).count() == 3
    assert ChannelSyncState.objects.get(store=store).signature_failures == 3

    # Another address is not limited by the first one.
    assert unsigned_post(b'{"id": 2}', address="192.0.2.44").status_code == 401
    assert InboxMessage.objects.filter(store=store, source_address="192.0.2.44").count() == 1
    # A correctly signed delivery from the limited address is never rate-limited.
    body = json.dumps(sandbox.generate_order()).encode()
    assert signed_post(sandbox, body, event_id="evt-ok", address="198.51.100.7").status_code == 200
    assert InboxMessage.objects.filter(store=store, status=InboxStatus.PENDING).count() == 1
    # The next minute is a new window.
    monkeypatch.setattr(services, "_clock", lambda: 1_800_000_061.0)
    assert unsigned_post(b'{"id": 3}', address="198.51.100.7").status_code == 401


def test_refused_records_stay_visible_to_operators(shopify, role_users):
    _sandbox, store = shopify
    unsigned_post(b'{"id": 1, "note": "probe"}', address="198.51.100.7")
    client = Client()
    assert client.login(username="u_manager", password=PASSWORD)
    page = client.get("/channels/dead-letters/").content.decode()
    record = InboxMessage.objects.get(store=store)
    assert "198.51.100.7" in page and record.body_sha256 in page and "probe" in page
    assert "来自 198.51.100.7 的被拒推送" in page


def test_the_purge_removes_old_refused_records_only(shopify, settings):
    _sandbox, store = shopify
    settings.OMS_REFUSED_WEBHOOK_RETENTION_DAYS = 7
    now = timezone.now()

    def row(key, *, status, reason="", age_days):
        message, _created = services.inbox_store(store=store, kind=InboxKind.WEBHOOK, delivery_key=key, body="{}",
                                                 status=status, dead_reason=reason)
        InboxMessage.objects.filter(pk=message.pk).update(received_at=now - timedelta(days=age_days))
        return message.pk

    old_refused = row("badsig:old", status=InboxStatus.DEAD, reason=DeadReason.SIGNATURE, age_days=8)
    old_refused_discarded = row("badsig:old2", status=InboxStatus.DISCARDED, reason=DeadReason.SIGNATURE,
                                age_days=30)
    new_refused = row("badsig:new", status=InboxStatus.DEAD, reason=DeadReason.SIGNATURE, age_days=6)
    old_accepted = row("wh:old", status=InboxStatus.DONE, age_days=90)
    old_dead_letter = row("bad:old", status=InboxStatus.DEAD, reason=DeadReason.BAD_PAYLOAD, age_days=90)

    assert tasks.purge_refused_deliveries_task() == 2  # the beat task calls the one service
    left = set(InboxMessage.objects.values_list("pk", flat=True))
    assert left == {new_refused, old_accepted, old_dead_letter}
    assert not {old_refused, old_refused_discarded} & left
    assert services.refused_deliveries_purge() == 0
    assert settings.CELERY_BEAT_SCHEDULE["purge-refused-deliveries"]["task"] == (
        "connectors.tasks.purge_refused_deliveries_task")
