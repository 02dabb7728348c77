"""The batched, partitioned inbox: bad rows among good ones in one batch, versions of one order in one batch,
two workers draining one store at once, and a worker process killed in the middle of a batch."""

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.db import connection, connections
from django.db.models import Count

from connectors import services as channel_services
from connectors.base import RawOrder
from connectors.models import INBOX_PARTITIONS, DeadReason, InboxMessage, InboxStatus
from connectors.sandbox.shopify import ShopifySandbox
from connectors.shopify.mapping import parse_shopify_time
from fulfillment.models import Shipment, ShipmentStatus
from inventory.models import Reservation, ReservationStatus, StockLevel
from orders.models import Order, OrderEventType, OrderStatus, Platform
from pipeline import channel
from tests.conftest import channel_store

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[2]
SKUS = [("TEA-LJ-250G", "37.99"), ("CUP-CER-350", "9.99")]


@pytest.fixture
def shop(skus):
    sandbox = ShopifySandbox(port=0, skus=SKUS, seed=11)
    store = channel_store(platform=Platform.SHOPIFY, code="shop", name="Shopify US", default_currency="USD",
                          credentials=sandbox.connector_credentials())
    return sandbox, store


def store_orders(store, orders: list[dict]) -> None:
    channel_services.inbox_store_polled(store=store, raws=[
        RawOrder(platform_order_id=str(order["id"]), updated_at=parse_shopify_time(order["updated_at"]), payload=order)
        for order in orders])


def paid_orders(sandbox, n: int) -> list[dict]:
    orders = []
    for _ in range(n):
        order = sandbox.generate_order()
        order.update(financial_status="paid", fulfillment_status=None, cancelled_at=None, closed_at=None)
        orders.append(order)
    return orders


def test_one_batch_with_a_malformed_payload_and_an_unknown_sku_makes_the_good_ones_orders(shop):
    sandbox, store = shop
    good = paid_orders(sandbox, 6)
    unknown = paid_orders(sandbox, 1)[0]
    unknown["line_items"][0]["sku"] = "NO-SUCH-SKU"
    unknown["line_items"][0]["variant_id"] = 999999999
    store_orders(store, [*good, unknown])
    malformed, _created = channel_services.inbox_store(
        store=store, kind="webhook", delivery_key="wh:broken", platform_order_id="7001",
        platform_updated_at=datetime(2026, 11, 1, tzinfo=UTC), body='{"id": 7001, "line_items": "not a list"')
    not_an_order, _created = channel_services.inbox_store(
        store=store, kind="webhook", delivery_key="wh:odd", platform_order_id="7002",
        platform_updated_at=datetime(2026, 11, 1, tzinfo=UTC), body='{"id": 7002, "line_items": "not a list"}')

    statuses = channel.inbox_process_messages(store=store, message_ids=list(
        InboxMessage.objects.filter(store=store).values_list("pk", flat=True)))

    assert sorted(statuses.values()).count(InboxStatus.DONE) == 6
    assert Order.objects.filter(store=store).count() == 6
    assert set(Order.objects.filter(store=store).values_list("status", flat=True)) == {OrderStatus.READY}
    dead = dict(InboxMessage.objects.filter(store=store, status=InboxStatus.DEAD).values_list("pk", "dead_reason"))
    unknown_row = InboxMessage.objects.get(store=store, platform_order_id=str(unknown["id"]))
    assert dead == {malformed.pk: DeadReason.BAD_PAYLOAD, not_an_order.pk: DeadReason.BAD_PAYLOAD,
                    unknown_row.pk: DeadReason.UNMAPPED_SKU}
    # Nothing is left to be retried forever: no pending rows, and a second drain has nothing to do.
    assert not InboxMessage.objects.filter(store=store, status=InboxStatus.PENDING).exists()
    assert channel.inbox_process_store(store_id=store.pk) == 0
    # One entry per real change: created, paid, reserved, approved for each good order.
    for order in Order.objects.filter(store=store):
        assert list(order.events.order_by("id").values_list("type", flat=True)) == [
            OrderEventType.CREATED, OrderEventType.STATUS_CHANGED, OrderEventType.STOCK_RESERVED,
            OrderEventType.STATUS_CHANGED]


def test_two_versions_of_one_order_in_one_batch_are_applied_in_order(shop):
    sandbox, store = shop
    sandbox.set_clock(datetime(2026, 11, 20, 8, 0, tzinfo=UTC))
    order = sandbox.generate_order()
    order.update(financial_status="pending", fulfillment_status=None, cancelled_at=None, closed_at=None)
    first = dict(order)
    paid = {**order, "financial_status": "paid", "updated_at": "2026-11-20T08:05:00Z"}
    store_orders(store, [paid, first])  # newest stored first: the drain still applies the older one first

    channel.inbox_process_store(store_id=store.pk)

    hub = Order.objects.get(store=store, platform_order_id=str(order["id"]))
    assert hub.status == OrderStatus.READY
    assert list(InboxMessage.objects.filter(store=store).order_by("platform_updated_at")
                .values_list("status", flat=True)) == [InboxStatus.DONE, InboxStatus.DONE]


def test_an_older_version_arriving_after_the_newer_one_is_skipped(shop):
    sandbox, store = shop
    order = paid_orders(sandbox, 1)[0]
    store_orders(store, [order])
    channel.inbox_process_store(store_id=store.pk)
    older = {**order, "financial_status": "pending",
             "updated_at": (parse_shopify_time(order["updated_at"]) - timedelta(minutes=5)).isoformat()}
    store_orders(store, [older])

    channel.inbox_process_store(store_id=store.pk)

    assert Order.objects.get(store=store).status == OrderStatus.READY
    assert InboxMessage.objects.filter(store=store, status=InboxStatus.SKIPPED).count() == 1


def test_the_versions_of_one_order_share_a_partition_and_a_store_spreads_over_several(shop):
    sandbox, store = shop
    orders = paid_orders(sandbox, 40)
    store_orders(store, orders)
    store_orders(store, [{**orders[0], "updated_at": "2026-12-31T00:00:00Z"}])
    partitions = dict(InboxMessage.objects.filter(store=store).values_list("platform_order_id")
                      .annotate(n=Count("partition", distinct=True)))
    assert set(partitions.values()) == {1}
    used = set(InboxMessage.objects.filter(store=store).values_list("partition", flat=True))
    assert len(used) >= 5 and used <= set(range(INBOX_PARTITIONS))


@pytest.mark.skipif("postgresql" not in django_settings.DATABASES["default"]["ENGINE"],
                    reason="several workers on one store need PostgreSQL's row and advisory locks")
def test_two_workers_drain_one_store_at_once_and_import_every_order_once(shop):
    sandbox, store = shop
    orders = paid_orders(sandbox, 120)
    store_orders(store, orders)
    handled, errors = [], []

    def worker():
        try:
            handled.append(channel.inbox_process_store(store_id=store.pk, batch_size=20))
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert not errors
    assert sum(handled) == 120
    assert all(count > 0 for count in handled), handled  # both took part
    assert Order.objects.filter(store=store).count() == 120
    assert not Order.objects.values("store", "platform_order_id").annotate(n=Count("id")).filter(n__gt=1).exists()
    assert_stock_matches_reservations()


def assert_stock_matches_reservations():
    for level in StockLevel.objects.all():
        held = sum(Reservation.objects.filter(warehouse_id=level.warehouse_id, sku_id=level.sku_id,
                                              status=ReservationStatus.ACTIVE).values_list("quantity", flat=True))
        assert level.reserved == held
        assert level.on_hand >= level.reserved


# The worker: the real drain in a process of its own, stopped inside its first batch's transaction (after
# the orders are written, before the rows are marked and the transaction commits) until it is killed.
WORKER = """
import os, sys, time
import django
django.setup()
from connectors import inbox
from pipeline import channel
marker = sys.argv[2]
real = inbox.inbox_mark_applied_many
def stop_here(**kwargs):
    with open(marker, "w") as handle:
        handle.write(str(len(kwargs["outcomes"])))
    time.sleep(600)
inbox.inbox_mark_applied_many = stop_here
channel.inbox_process_store(store_id=int(sys.argv[1]))
"""


@pytest.mark.skipif("postgresql" not in django_settings.DATABASES["default"]["ENGINE"],
                    reason="the partition lock a dead worker drops is PostgreSQL's")
def test_a_worker_killed_mid_batch_loses_nothing_and_another_imports_every_order_once(shop, tmp_path):
    sandbox, store = shop
    orders = paid_orders(sandbox, 60)
    store_orders(store, orders)
    marker = tmp_path / "in-batch"
    db = connection.settings_dict
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "oms.settings",
           "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"}
    worker = subprocess.Popen([sys.executable, "-c", WORKER, str(store.pk), str(marker)], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert worker.poll() is None, worker.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "the worker never reached its batch"
            time.sleep(0.05)
        in_batch = int(marker.read_text() or 0)
        assert in_batch > 0
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)
    finally:
        if worker.poll() is None:
            worker.kill()
    # Its batch's orders were written but never committed: nothing of them is visible.
    assert Order.objects.filter(store=store).count() == 0

    deadline = time.monotonic() + 30
    while InboxMessage.objects.filter(store=store, status=InboxStatus.PENDING).exists():
        channel.inbox_process_store(store_id=store.pk)  # the server drops the dead worker's lock in a moment
        assert time.monotonic() < deadline, "another worker could not take over the dead worker's partition"
        time.sleep(0.1)

    assert Order.objects.filter(store=store).count() == 60
    assert set(Order.objects.values_list("platform_order_id", flat=True)) == {str(o["id"]) for o in orders}
    assert InboxMessage.objects.filter(store=store, status=InboxStatus.DONE).count() == 60
    assert set(Order.objects.values_list("status", flat=True)) == {OrderStatus.READY}
    assert_stock_matches_reservations()


def test_a_drain_asks_for_one_helper_per_further_busy_partition_up_to_the_setting(shop, settings, monkeypatch):
    sandbox, store = shop
    store_orders(store, paid_orders(sandbox, 40))
    busy = InboxMessage.objects.filter(store=store).values("partition").distinct().count()
    queued = []
    monkeypatch.setattr(channel, "task_after_commit", lambda name, **kwargs: queued.append((name, kwargs)))

    settings.OMS_INBOX_DRAIN_WORKERS = 3
    assert channel.inbox_drain_helpers_request(store_id=store.pk) == 2
    assert queued == [(channel.PROCESS_TASK, {"store_id": store.pk, "fan_out": False})] * 2

    settings.OMS_INBOX_DRAIN_WORKERS = 100
    assert channel.inbox_drain_helpers_request(store_id=store.pk) == busy - 1
    channel.inbox_process_store(store_id=store.pk)
    assert channel.inbox_drain_helpers_request(store_id=store.pk) == 0  # nothing waiting: nobody asked


def test_two_orders_of_one_buyer_in_one_batch_share_a_parcel_where_the_store_merges(shop):
    sandbox, store = shop
    store.merge_shipments = True
    store.save(update_fields=["merge_shipments"])
    first, second, other = paid_orders(sandbox, 3)
    second["customer"] = first["customer"]
    second["shipping_address"] = first["shipping_address"]
    store_orders(store, [first, second, other])

    channel.inbox_process_store(store_id=store.pk)

    assert set(Order.objects.filter(store=store).values_list("status", flat=True)) == {OrderStatus.READY}
    parcels = Shipment.objects.filter(store=store).exclude(status=ShipmentStatus.CANCELLED)
    assert parcels.count() == 2
    merged = parcels.get(lines__order__platform_order_id=str(first["id"]))
    assert set(merged.lines.values_list("order__platform_order_id", flat=True)) == {str(first["id"]),
                                                                                    str(second["id"])}
    assert_stock_matches_reservations()
