"""Channel stock no crash can lose: a process killed right after a stock change commits still gets the SKU
pushed, and a change made while a push is on its way is pushed again."""

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.cache import cache
from django.db import connection, connections

from connectors import stock_push
from connectors.models import ChannelStock
from connectors.sandbox.taobao import TaobaoSandbox
from inventory.models import ChannelStockDirty, PlatformSKUMapping
from inventory.services import stock_receive
from orders.models import Platform
from tests.conftest import channel_store

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not os.environ.get("DATABASE_URL", "").startswith("postgres"), reason="needs PostgreSQL"),
]

# Runs in a separate process on the test database. Its first after-commit hook kills the process the moment
# the commit is done, so nothing a stock service leaves for "after commit" (on the old code: marking the
# channel stock stale) ever runs, and no push can happen before the death.
CRASH_AFTER_COMMIT = """
import os, signal
import django
django.setup()
from django.db import transaction
from inventory.services import stock_receive

with transaction.atomic():
    transaction.on_commit(lambda: os.kill(os.getpid(), signal.SIGKILL))
    stock_receive(warehouse_id={warehouse_id}, sku_id={sku_id}, quantity=7, reference="PO-crash")
raise SystemExit("still alive after the commit")
"""


@pytest.fixture
def taobao(skus):
    sandbox = TaobaoSandbox(port=0, skus=[("TEA-LJ-250G", "268.00")], seed=2)
    sandbox.start()
    store = channel_store(platform=Platform.TAOBAO, code="tb-crash", name="淘宝",
                                 credentials=sandbox.connector_credentials())
    item = TaobaoSandbox._catalog_entry("TEA-LJ-250G", "268.00")
    PlatformSKUMapping.objects.create(store=store, sku=skus["TEA-LJ-250G"], platform_sku_id=item["sku_id"],
                                      platform_product_id=str(item["num_iid"]))
    cache.delete(stock_push.FLUSH_LOCK)  # a flush of an earlier run that died holding it
    yield sandbox, store, skus["TEA-LJ-250G"]
    sandbox.stop()


def pushed_quantities(sandbox) -> list[int]:
    return [int(record["quantity"]) for record in sandbox.pushed if record["kind"] == "stock"]


def test_a_process_killed_right_after_the_stock_change_commits_still_gets_the_sku_pushed(taobao, warehouse):
    sandbox, store, tea = taobao
    db = django_settings.DATABASES["default"]
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "oms.settings",
           "DATABASE_URL": f"postgres://{db['USER']}{password}@{db['HOST']}:{db['PORT']}/"
                           f"{connection.settings_dict['NAME']}"}
    crashed = subprocess.run([sys.executable, "-c", CRASH_AFTER_COMMIT.format(warehouse_id=warehouse.pk,
                                                                             sku_id=tea.pk)],
                             cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr[-2000:]
    assert tea.stock_levels.get(warehouse=warehouse).on_hand == 1007  # the change itself committed
    assert pushed_quantities(sandbox) == []  # and nothing was pushed before the process died

    counts = stock_push.channel_stock_flush()

    assert counts == {"calls": 1, "unchanged": 0, "errors": 0}
    assert pushed_quantities(sandbox) == [1007]  # over real HTTP, to the platform sandbox
    row = ChannelStock.objects.get(store=store, sku=tea)
    assert (row.last_pushed_quantity, row.pushes, row.last_error) == (1007, 1, "")
    assert not ChannelStockDirty.objects.exists()
    assert stock_push.channel_stock_flush() == {"calls": 0, "unchanged": 0, "errors": 0}


def test_a_change_made_while_a_push_is_in_flight_is_pushed_again(taobao, warehouse):
    sandbox, store, tea = taobao
    stock_push.stock_changed({tea.pk})
    sandbox.faults.latency_ms = 1500  # the platform answers slowly: time for a change during the push
    requests_before = sandbox.request_count
    results = {}

    def flush() -> None:
        try:
            results["counts"] = stock_push.channel_stock_flush()
        finally:
            connections.close_all()  # this thread's connection only

    pushing = threading.Thread(target=flush)
    pushing.start()
    deadline = time.monotonic() + 30
    while sandbox.request_count == requests_before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sandbox.request_count > requests_before, "the flush never called the platform"
    stock_receive(warehouse_id=warehouse.pk, sku_id=tea.pk, quantity=5)  # commits while the push waits
    pushing.join(timeout=60)

    assert results["counts"] == {"calls": 1, "unchanged": 0, "errors": 0}
    assert pushed_quantities(sandbox) == [1000]  # the quantity read before the change
    mark = ChannelStockDirty.objects.get(store=store, sku=tea)
    assert mark.version == 2  # the flush pushed version 1; the receipt's 2 is not removed with it
    row = ChannelStock.objects.get(store=store, sku=tea)
    assert row.last_pushed_quantity == 1000

    sandbox.faults.latency_ms = 0
    assert stock_push.channel_stock_flush() == {"calls": 1, "unchanged": 0, "errors": 0}
    assert pushed_quantities(sandbox) == [1000, 1005]
    assert not ChannelStockDirty.objects.exists()
    row.refresh_from_db()
    assert (row.last_pushed_quantity, row.pushes, row.change_seq == row.pushed_seq) == (1005, 2, True)
