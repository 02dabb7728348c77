"""Shared fixtures: role users, stores, SKUs and an order factory that goes through the real services."""

import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest
from django.test.client import ClientMixin
from rest_framework.test import APIClient

from inventory.models import SKU, Warehouse
from inventory.services import stock_receive
from oms import roles
from orders import services
from orders.models import Platform, Store
from orders.services import BuyerInput, LineInput, OrderInput, ReceiverInput

PASSWORD = "test-pass-123!"
ROOT = Path(__file__).resolve().parents[1]


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
    return Store.objects.create(platform=Platform.TAOBAO, code="tb", name="淘宝店",
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
        return services.order_create(store=store or taobao_store, data=order_input(paid=paid, **overrides),
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
