"""End to end: a manual order via the API waits for stock, and a real Celery worker makes it ready on receipt."""

import os
import time

import pytest
from django.test import Client

from inventory import services as stock
from orders.models import Order, OrderStatus
from pipeline import stock as pipeline_stock
from tests.conftest import PASSWORD

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs Redis (make test sets REDIS_URL)"),
]


def test_api_order_waits_for_stock_and_becomes_ready_when_stock_is_received(
        role_users, manual_store, skus, warehouse, celery_worker_process):
    tea = skus["TEA-LJ-250G"]
    stock.stock_take(warehouse_id=warehouse.pk, sku_id=tea.pk, counted=3)
    client = Client()
    assert client.login(username="u_customer_service", password=PASSWORD)
    response = client.post("/api/v1/orders/", content_type="application/json", data={
        "store": "wechat", "paid": True,
        "lines": [{"sku_code": "TEA-LJ-250G", "quantity": 5, "unit_price": "188.00"}],
        "receiver": {"name": "陈静", "phone": "13916882345", "province": "上海市", "address": "漕溪北路 398 号"}})
    assert response.status_code == 201, response.json()
    order_id = response.json()["id"]
    assert response.json()["status"] == "awaiting_stock"

    page = client.get(f"/orders/{order_id}/").content.decode()
    assert 'data-section="shortages"' in page and "TEA-LJ-250G" in page
    assert Order.objects.get(pk=order_id).stock_shortages == [
        {"sku": "TEA-LJ-250G", "needed": 5, "available": 3, "short": 2}]

    pipeline_stock.stock_receive(warehouse_id=warehouse.pk, sku_id=tea.pk, quantity=2, reference="PO-9")  # → worker
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and Order.objects.get(pk=order_id).status != OrderStatus.READY:
        time.sleep(0.3)
    order = Order.objects.get(pk=order_id)
    assert order.status == OrderStatus.READY, "the worker did not retry the waiting order"
    assert order.stock_shortages == []
    assert 'data-section="shortages"' not in client.get(f"/orders/{order_id}/").content.decode()
