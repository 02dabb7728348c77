"""Shared fixtures: role users, stores, SKUs and an order factory that goes through the real services."""

import hashlib
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
import redis
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache
from django.db import connection
from django.http import HttpRequest
from django.test.client import ClientMixin
from rest_framework.test import APIClient

from connectors.services import store_create_with_channel, webhook_targets_forget
from inventory.models import SKU, Warehouse
from inventory.services import stock_receive
from oms import roles
from oms.celery import app
from orders.models import Platform, Store
from orders.services import BuyerInput, LineInput, OrderInput, ReceiverInput
from pipeline import orders as flows

PASSWORD = "test-pass-123!"
ROOT = Path(__file__).resolve().parents[1]
# The xdist worker running this process ("gw0", "gw1"...; "main" without xdist).
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "main")


class ScopedRedisCache(RedisCache):
    """The Redis cache of one test process: clear() deletes only this process's keys (its KEY_PREFIX).

    Django's RedisCache.clear() is FLUSHDB, which would wipe the throttle counters and cached values of every
    other xdist worker and of any other checkout's run on the same Redis database, and the Celery broker's
    lists with them.
    """

    def clear(self):
        client = self._cache.get_client(None, write=True)
        keys = list(client.scan_iter(match=f"{self.key_prefix}:*", count=1000))
        for start in range(0, len(keys), 1000):
            client.delete(*keys[start:start + 1000])
        return True


def pytest_configure(config):
    """Each test process gets cache keys of its own: xdist workers share the suite's Redis database (a Redis
    server has only 16), so the prefix names the checkout, the worker and the process. The test databases need
    nothing here: pytest-django suffixes settings' TEST NAME (derived from the checkout) with the worker id."""
    cache_settings = django_settings.CACHES["default"]
    if cache_settings["BACKEND"] != "django.core.cache.backends.redis.RedisCache":
        return
    checkout = hashlib.sha1(str(ROOT).encode()).hexdigest()[:8]
    cache_settings["BACKEND"] = f"{__name__}.ScopedRedisCache"
    cache_settings["KEY_PREFIX"] = f"test-{checkout}-{WORKER}-{os.getpid()}"
    # Nothing has opened the cache yet; drop the handler's copy of the settings in case something read them.
    caches.__dict__.pop("settings", None)
    caches._settings = None


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the xdist_group marks (--dist loadgroup)
def pytest_collection_modifyitems(config, items):
    """Under xdist the slow tests (soak, schemathesis, benchmarks, browsers) are handed out first, so the longest
    ones do not start last and keep one worker busy after the others are done. A serial run keeps the file order.

    No test is pinned to a worker (xdist_group) today: the stack tests pick free ports, scratch databases and
    queues of their own. Grouping the soak test with the benchmarks made that one worker the run's tail."""
    if WORKER == "main":
        return
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


def pytest_sessionfinish(session, exitstatus):
    """Empty the Celery default queue on the tests' Redis: tasks the tests enqueue after commit land there and no
    worker takes them (the tests' real workers listen on queues of their own), so without this they would pile up
    from run to run now that clearing the cache no longer flushes the whole database."""
    broker = getattr(django_settings, "CELERY_BROKER_URL", "")
    if django_settings.CACHES["default"]["BACKEND"].endswith("ScopedRedisCache") and broker.startswith("redis"):
        client = redis.Redis.from_url(broker, socket_connect_timeout=2)
        try:
            client.delete("celery")
            # The bindings of this process's own worker queues (worker-test-<pid>, health-test-<pid>).
            stale = list(client.scan_iter(match=f"_kombu.binding*-test-{os.getpid()}"))
            if stale:
                client.delete(*stale)
        except redis.RedisError:
            pass  # Redis gone already: nothing to tidy
        finally:
            client.close()


@pytest.fixture(autouse=True)
def fast_password_hasher(settings):
    # Real hashing costs ~0.3 s per user; the tests check permissions, not hashing strength.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def login_passes_a_request(monkeypatch):
    """The lockout backend (django-axes) refuses authenticate() without a request, and the test client's
    login() has none: give it a blank one, as axes' documentation advises. Lockout tests post to the real views."""
    login = ClientMixin.login

    def login_with_request(self, **credentials):
        credentials.setdefault("request", HttpRequest())
        return login(self, **credentials)

    monkeypatch.setattr(ClientMixin, "login", login_with_request)


@pytest.fixture(autouse=True)
def empty_cache():
    # API rate-limit counters live in the cache (Redis in tests): each test starts with none from another.
    cache.clear()
    # The webhook endpoint's process-local store cache: a store of an earlier test (rolled back) is gone.
    webhook_targets_forget()
    yield


@pytest.fixture
def role_users(db):
    """One user per role, keyed by role name."""
    groups = roles.roles_sync()
    users = {}
    for role in roles.ROLES:
        user = get_user_model().objects.create_user(username=f"u_{role}", password=PASSWORD,
                                                    is_staff=role == roles.ADMIN)
        user.groups.add(groups[role])
        users[role] = user
    return users


@pytest.fixture
def api_client_for(role_users):
    def make(role: str) -> APIClient:
        client = APIClient()
        client.force_authenticate(role_users[role])
        return client
    return make


@pytest.fixture
def manual_store(db) -> Store:
    return Store.objects.create(platform=Platform.MANUAL, code="wechat", name="微信订单")


@pytest.fixture
def taobao_store(db) -> Store:
    return channel_store(platform=Platform.TAOBAO, code="tb", name="淘宝店",
                                credentials={"app_key": "12345678", "app_secret": "top-secret-value"})


@pytest.fixture
def warehouse(db) -> Warehouse:
    return Warehouse.objects.create(code="SH", name="上海仓", provinces=["上海市"], priority=10)


@pytest.fixture
def skus(warehouse) -> dict[str, SKU]:
    """Three SKUs with 1,000 units each in the SH warehouse (so paid orders reserve and become ready)."""
    created = {
        code: SKU.objects.create(code=code, name=name, barcode=barcode, list_price=Decimal(price))
        for code, name, barcode, price in [
            ("TEA-LJ-250G", "西湖龙井 250g", "6901234567892", "188.00"),
            ("CUP-CER-350", "陶瓷马克杯 350ml", "6901234567908", "39.90"),
            ("GIFT-BAG", "礼品袋", "6901234567915", "0.00"),
        ]
    }
    for sku in created.values():
        stock_receive(warehouse_id=warehouse.pk, sku_id=sku.pk, quantity=1000, reference="opening")
    return created


def order_input(**overrides) -> OrderInput:
    values = dict(
        platform_order_id="P-1",
        lines=[LineInput(sku_code="TEA-LJ-250G", quantity=2, unit_price=Decimal("188.00")),
               LineInput(sku_code="CUP-CER-350", quantity=1, unit_price=Decimal("39.90"),
                         discount_amount=Decimal("5.00"))],
        receiver=ReceiverInput(name="王小贝", phone="13312343069", province="上海市", city="上海市",
                               district="浦东新区", address="张江路 88 号 3 楼"),
        buyer=BuyerInput(id="buyer-1", name="王小贝"),
        shipping_amount=Decimal("10.00"),
    )
    values.update(overrides)
    return OrderInput(**values)


@pytest.fixture
def make_order(taobao_store, skus):
    """Create an order through the real services; ``paid=True`` runs the pipeline (→ ready)."""
    counter = {"n": 0}

    def make(*, store=None, paid=True, **overrides):
        counter["n"] += 1
        overrides.setdefault("platform_order_id", f"TB-{counter['n']:06d}")
        return flows.order_create(store=store or taobao_store, data=order_input(paid=paid, **overrides),
                                     actor_label="test")
    return make


@pytest.fixture
def celery_worker_process():
    """A real worker on the test database and the Redis broker, on a queue of its own."""
    db = django_settings.DATABASES["default"]
    env = {**os.environ,
           "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{connection.settings_dict['NAME']}",
           # Mail the worker sends stays in its memory (the test reads the outbox row's status).
           "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend"}
    # A queue of its own, so no other worker on the same Redis takes these tasks.
    queue = f"worker-test-{os.getpid()}"
    from oms.celery import app as celery_app

    previous_queue = celery_app.conf.task_default_queue
    celery_app.conf.task_default_queue = queue
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "oms", "worker", "--pool=solo", "--loglevel=WARNING", "-Q", queue,
         f"--hostname=test-{os.getpid()}@%h"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    yield worker
    celery_app.conf.task_default_queue = previous_queue
    worker.terminate()
    try:
        worker.wait(timeout=15)
    except subprocess.TimeoutExpired:
        worker.kill()


# A store with its channel settings (credentials, stock push switch and formula…), which live on the
# store's ChannelSyncState (connectors) rather than on the platform-neutral Store.
channel_store = store_create_with_channel


@pytest.fixture
def celery_eager():
    """Celery runs queued tasks in this thread for the test. Set on the app itself: the app reads Django's
    settings once, so changing settings.CELERY_TASK_ALWAYS_EAGER later depends on test order."""
    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = previous
