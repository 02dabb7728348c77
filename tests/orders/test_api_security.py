"""Issue 11 on the order API: amount limits, who may apply which transition, idempotency keys, 405s."""

import json
from datetime import timedelta
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from oms.exceptions import DomainError
from orders import services
from orders.models import IdempotencyRecord, Order, OrderEvent, OrderStatus, Store
from orders.services import LineInput
from orders.tasks import purge_idempotency_records_task
from pipeline import orders as flows
from tests.conftest import PASSWORD, order_input

pytestmark = pytest.mark.django_db

LINE = {"sku_code": "TEA-LJ-250G", "quantity": 1, "unit_price": "188.00"}
ORDER = {
    "store": "wechat",
    "lines": [LINE],
    "receiver": {"name": "李娜", "phone": "13800138000", "province": "广东省", "city": "深圳市",
                 "district": "南山区", "address": "科技园南区 1 栋"},
}


def create(client: APIClient, body: dict, **headers):
    return client.post("/api/v1/orders/", body, format="json", headers=headers)


# --- 2. Amount and quantity limits ------------------------------------------------------------------

@pytest.mark.parametrize(("line", "extra", "field"), [
    ({"quantity": 2, "unit_price": "600000000000.00"}, {}, "unit_price"),  # the reported 500
    ({"quantity": 10_001}, {}, "quantity"),
    ({"unit_price": "400000.01"}, {}, "unit_price"),
    ({"unit_price": "1e3"}, {}, "unit_price"),  # Decimal() would take it; the schema's pattern does not
    ({}, {"shipping_amount": "1000000.01"}, "shipping_amount"),
    ({}, {"tax_amount": "999999999999.99"}, "tax_amount"),
])
def test_amounts_out_of_range_are_400_and_store_nothing(api_client_for, manual_store, skus, line, extra, field):
    response = create(api_client_for("manager"), {**ORDER, "lines": [{**LINE, **line}], **extra})
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"
    errors = body["errors"]["lines"]["0"] if field in ("quantity", "unit_price") else body["errors"]
    assert field in errors
    assert Order.objects.count() == 0


def test_more_than_200_lines_is_400(api_client_for, manual_store, skus):
    response = create(api_client_for("manager"), {**ORDER, "lines": [LINE] * 201})
    assert response.status_code == 400 and response.json()["code"] == "invalid"
    assert "lines" in response.json()["errors"]
    assert Order.objects.count() == 0


def test_the_largest_allowed_order_fits_its_columns(api_client_for, manual_store, skus):
    body = {**ORDER, "lines": [{**LINE, "quantity": 10_000, "unit_price": "400000.00"}],
            "shipping_amount": "1000000.00", "tax_amount": "1000000.00"}
    response = create(api_client_for("manager"), body)
    assert response.status_code == 201, response.json()
    assert response.json()["total_amount"] == "4002000000.00"


def test_the_service_refuses_out_of_range_amounts_for_every_caller(taobao_store, skus):
    """Connectors and imports do not pass the serializer: the service checks the same limits."""
    huge = order_input(lines=[LineInput(sku_code="TEA-LJ-250G", quantity=2, unit_price=Decimal("600000000000.00"))])
    with pytest.raises(DomainError) as refused:
        flows.order_create(store=taobao_store, data=huge, actor_label="test")
    assert refused.value.code == "amount_out_of_range" and refused.value.http_status == 400
    assert "lines[0].unit_price" in refused.value.data
    many = order_input(lines=[LineInput(sku_code="GIFT-BAG", quantity=10_001, unit_price=Decimal("0"))] * 201,
                       shipping_amount=Decimal("1000000.01"))
    with pytest.raises(DomainError) as refused:
        flows.order_create(store=taobao_store, data=many, actor_label="test")
    assert refused.value.code == "amount_out_of_range"
    assert {"lines", "lines[0].quantity", "shipping_amount"} <= set(refused.value.data)
    assert Order.objects.count() == 0


def test_the_schema_states_the_limits():
    schema = json.loads(APIClient().get("/api/schema/?format=json").content)["components"]["schemas"]
    line = schema["LineInputRequest"]["properties"]
    assert line["quantity"]["minimum"] == 1 and line["quantity"]["maximum"] == 10_000
    assert "400000" in line["unit_price"]["pattern"] and "400000" in line["unit_price"]["description"]
    assert schema["ManualOrderCreateRequest"]["properties"]["lines"]["maxItems"] == 200


# --- 5. One permission per transition --------------------------------------------------------------

@pytest.fixture
def order_in(manual_store, skus):
    """An order of the manual store in the source state of a transition, reached through the services."""
    manual_store.auto_approve = False
    manual_store.save(update_fields=["auto_approve"])
    counter = {"n": 0}

    def make(status: str) -> Order:
        counter["n"] += 1
        order = flows.order_create(store=manual_store, data=order_input(
            platform_order_id=f"WX-{counter['n']}", paid=status != "pending_payment"), actor_label="test")
        steps = {"paid": [], "pending_payment": [], "ready": [flows.order_approve],
                 "in_fulfilment": [flows.order_approve, services.order_start_fulfilment],
                 # order_ship cancels the open parcels, so later steps are plain order transitions.
                 "shipped": [flows.order_approve, services.order_start_fulfilment, flows.order_ship]}[status]
        for step in steps:
            order = step(order_id=order.pk, actor_label="test")
        assert order.status == status
        return order
    return make


W, CS, FIN, MGR = "warehouse", "customer_service", "finance", "manager"
# transition, source state, expected status per role. 409 follows_shipments: the role may ship, but this
# order ships through its parcels at the packing bench. CS may not move parcels (fulfillment.move_shipment).
TABLE = [
    ("pay", "pending_payment", {W: 403, CS: 200, FIN: 200, MGR: 200}),
    ("approve", "paid", {W: 403, CS: 200, FIN: 403, MGR: 200}),
    ("start_fulfilment", "ready", {W: 200, CS: 403, FIN: 403, MGR: 200}),
    ("ship_partially", "in_fulfilment", {W: 409, CS: 409, FIN: 403, MGR: 409}),
    ("ship", "in_fulfilment", {W: 409, CS: 409, FIN: 403, MGR: 409}),
    ("deliver", "shipped", {W: 200, CS: 200, FIN: 403, MGR: 200}),
    ("complete", "shipped", {W: 403, CS: 200, FIN: 403, MGR: 200}),
    ("cancel", "ready", {W: 403, CS: 200, FIN: 403, MGR: 200}),
    ("close", "shipped", {W: 403, CS: 200, FIN: 403, MGR: 200}),
]


@pytest.mark.parametrize(("name", "source", "expected"), TABLE, ids=[row[0] for row in TABLE])
def test_role_by_transition_table(api_client_for, order_in, name, source, expected):
    for role, status_code in expected.items():
        order = order_in(source)
        events = OrderEvent.objects.filter(order=order).count()
        response = api_client_for(role).post(f"/api/v1/orders/{order.pk}/transition/", {"transition": name},
                                             format="json")
        assert response.status_code == status_code, (role, response.json())
        order.refresh_from_db()
        if status_code == 200:
            assert response.json()["status"] == order.status != source
        else:
            code = {403: "permission_denied", 409: "follows_shipments"}[status_code]
            assert response.json()["code"] == code, role
            assert order.status == source and OrderEvent.objects.filter(order=order).count() == events


def test_pay_is_refused_on_a_platform_store_even_for_finance(api_client_for, make_order):
    order = make_order(paid=False)
    for role in (FIN, MGR):
        response = api_client_for(role).post(f"/api/v1/orders/{order.pk}/transition/", {"transition": "pay"},
                                             format="json")
        assert response.status_code == 409
        assert response.json()["code"] == "paid_by_platform" and order.number in response.json()["message"]
    order.refresh_from_db()
    assert order.status == OrderStatus.PENDING_PAYMENT and order.paid_at is None
    assert not OrderEvent.objects.filter(order=order, to_status=OrderStatus.PAID).exists()


def login(role_users, role: str) -> Client:
    client = Client()
    assert client.login(username=role_users[role].username, password=PASSWORD)
    return client


def test_order_page_shows_only_the_buttons_the_user_may_use(role_users, order_in, make_order):
    unpaid, shipped, platform_unpaid = order_in("pending_payment"), order_in("shipped"), make_order(paid=False)
    warehouse = login(role_users, W)
    page = warehouse.get(f"/orders/{unpaid.pk}/").content.decode()
    assert 'data-transition="pay"' not in page
    page = warehouse.get(f"/orders/{shipped.pk}/").content.decode()
    assert 'data-transition="complete"' not in page and 'data-transition="deliver"' in page
    assert 'data-transition="close"' not in page
    service = login(role_users, CS)
    assert 'data-transition="pay"' in service.get(f"/orders/{unpaid.pk}/").content.decode()
    assert 'data-transition="complete"' in service.get(f"/orders/{shipped.pk}/").content.decode()
    # A platform reports its payments: no "Mark paid" button, whoever looks.
    assert 'data-transition="pay"' not in login(role_users, MGR).get(f"/orders/{platform_unpaid.pk}/").content.decode()


def test_warehouse_posting_pay_on_the_page_is_refused_and_changes_nothing(role_users, order_in):
    order = order_in("pending_payment")
    response = login(role_users, W).post(f"/orders/{order.pk}/transition/pay/", follow=True)
    assert [str(m) for m in response.context["messages"]] == ["操作被拒绝：您无权执行此操作。"]
    order.refresh_from_db()
    assert order.status == OrderStatus.PENDING_PAYMENT


# --- 9. Idempotency keys ------------------------------------------------------------------------------

def test_an_over_long_idempotency_key_is_refused_not_cut(api_client_for, manual_store, skus):
    client = api_client_for("manager")
    prefix = "k" * 128
    first = create(client, ORDER, **{"Idempotency-Key": prefix})
    assert first.status_code == 201
    # Cut to 128 characters, this key used to replay the first order's answer for a different request.
    longer = create(client, {**ORDER, "lines": [{**LINE, "quantity": 3}]}, **{"Idempotency-Key": prefix + "X"})
    assert longer.status_code == 400 and longer.json()["code"] == "idempotency_key_too_long"
    assert Order.objects.count() == 1 and IdempotencyRecord.objects.count() == 1


def test_an_expired_idempotency_key_is_treated_as_new(api_client_for, manual_store, skus, settings):
    settings.IDEMPOTENCY_KEY_TTL_HOURS = 2
    client = api_client_for("manager")
    first = create(client, ORDER, **{"Idempotency-Key": "retry-1"})
    assert first.status_code == 201
    IdempotencyRecord.objects.update(created_at=timezone.now() - timedelta(hours=2, minutes=1))
    again = create(client, ORDER, **{"Idempotency-Key": "retry-1"})
    assert again.status_code == 201 and "Idempotent-Replayed" not in again.headers
    assert again.json()["number"] != first.json()["number"]
    # A different body with the expired key is a new request too, not a 422 reuse.
    IdempotencyRecord.objects.update(created_at=timezone.now() - timedelta(hours=3))
    other = create(client, {**ORDER, "lines": [{**LINE, "quantity": 2}]}, **{"Idempotency-Key": "retry-1"})
    assert other.status_code == 201
    assert Order.objects.count() == 3 and IdempotencyRecord.objects.count() == 1
    # Within the TTL the answer is replayed as before.
    replay = create(client, {**ORDER, "lines": [{**LINE, "quantity": 2}]}, **{"Idempotency-Key": "retry-1"})
    assert replay.status_code == 201 and replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json()["number"] == other.json()["number"] and Order.objects.count() == 3


def test_the_purge_task_deletes_records_older_than_the_ttl(api_client_for, manual_store, skus, settings):
    settings.IDEMPOTENCY_KEY_TTL_HOURS = 48
    client = api_client_for("manager")
    for key in ("old", "fresh"):
        assert create(client, ORDER, **{"Idempotency-Key": key}).status_code == 201
    IdempotencyRecord.objects.filter(key="old").update(created_at=timezone.now() - timedelta(hours=49))
    assert purge_idempotency_records_task() == 1
    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["fresh"]
    assert Order.objects.count() == 2  # the orders stay; only the remembered answers go
    from django.conf import settings as live

    assert live.CELERY_BEAT_SCHEDULE["purge-idempotency-records"]["task"] == \
        "orders.tasks.purge_idempotency_records_task"


# --- 10. Methods and the schema -------------------------------------------------------------------------

def test_put_patch_delete_on_orders_answer_405_with_allow(api_client_for, make_order):
    order = make_order()
    client = api_client_for("manager")
    for method in ("put", "patch", "delete"):
        for url in ("/api/v1/orders/", f"/api/v1/orders/{order.pk}/"):
            response = getattr(client, method)(url, {}, format="json")
            assert response.status_code == 405, (method, url)
            assert response.json()["code"] == "method_not_allowed" and "GET" in response["Allow"]
    assert Order.objects.filter(pk=order.pk, status=OrderStatus.READY).exists()
    assert APIClient().delete(f"/api/v1/orders/{order.pk}/").status_code == 401  # anonymous: still 401


def test_schema_is_public_and_documents_errors_and_masked_phones():
    response = APIClient().get("/api/schema/?format=json")
    assert response.status_code == 200
    schema = json.loads(response.content)
    transition = schema["paths"]["/api/v1/orders/{id}/transition/"]["post"]["responses"]
    assert {"200", "400", "401", "403", "404", "409", "429"} <= set(transition)
    assert transition["409"]["content"]["application/json"]["schema"]["$ref"].endswith("/ApiError")
    phone = schema["components"]["schemas"]["ReceiverOut"]["properties"]["phone"]
    assert "133****3069" in phone["description"] and "pattern" not in phone
    assert Store.objects.count() == 0
