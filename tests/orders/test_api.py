"""REST API v1 for orders: auth, role permissions, PII masking, errors, transitions and idempotency."""

import json

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from orders.models import Order, OrderEvent, OrderStatus

pytestmark = pytest.mark.django_db

MANUAL_ORDER = {
    "store": "wechat",
    "lines": [{"sku_code": "TEA-LJ-250G", "quantity": 2, "unit_price": "188.00"},
              {"sku_code": "CUP-CER-350", "quantity": 1, "unit_price": "39.90", "discount_amount": "5.00"}],
    "receiver": {"name": "李娜", "phone": "13800138000", "province": "广东省", "city": "深圳市",
                 "district": "南山区", "address": "科技园南区 1 栋"},
    "shipping_amount": "10.00",
    "total_amount": "420.90",
    "paid": True,
}


def test_anonymous_calls_are_refused_with_401_and_a_code(manual_store):
    response = APIClient().get("/api/v1/orders/")
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
    assert APIClient().post("/api/v1/orders/", MANUAL_ORDER, format="json").status_code == 401


def test_token_authentication_works(role_users, make_order):
    make_order()
    token = Token.objects.create(user=role_users["customer_service"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    assert client.get("/api/v1/orders/").json()["count"] == 1
    client.credentials(HTTP_AUTHORIZATION="Token wrong")
    assert client.get("/api/v1/orders/").status_code == 401


def test_warehouse_sees_masked_receiver_and_cs_sees_it_in_full(api_client_for, make_order):
    order = make_order()
    masked = api_client_for("warehouse").get(f"/api/v1/orders/{order.pk}/").json()["receiver"]
    assert masked["phone"] == "133****3069" and masked["name"] == "王**" and masked["masked"] is True
    assert "张江路" not in masked["address"]
    full = api_client_for("customer_service").get(f"/api/v1/orders/{order.pk}/").json()["receiver"]
    assert full["phone"] == "13312343069" and full["name"] == "王小贝" and full["masked"] is False
    listed = api_client_for("warehouse").get("/api/v1/orders/").json()["results"][0]
    assert listed["receiver"]["phone"] == "133****3069"


def test_detail_has_lines_amounts_and_events(api_client_for, make_order):
    order = make_order()
    body = api_client_for("manager").get(f"/api/v1/orders/{order.pk}/").json()
    assert body["number"] == order.number and body["status"] == "ready"
    assert body["total_amount"] == "420.90"
    assert [line["sku_code"] for line in body["lines"]] == ["TEA-LJ-250G", "CUP-CER-350"]
    assert [e["type"] for e in body["events"]] == ["created", "status_changed", "stock_reserved", "status_changed"]


def test_list_filters_by_status_store_and_search(api_client_for, make_order):
    ready = make_order(platform_order_id="FIND-ME")
    make_order(paid=False)
    client = api_client_for("manager")
    assert client.get("/api/v1/orders/?status=ready").json()["count"] == 1
    assert client.get("/api/v1/orders/?status=ready&status=pending_payment").json()["count"] == 2
    assert client.get("/api/v1/orders/?store=tb").json()["count"] == 2
    assert client.get("/api/v1/orders/?q=FIND-ME").json()["results"][0]["id"] == ready.pk
    assert client.get(f"/api/v1/orders/?q={ready.number}").json()["count"] == 1
    bad = client.get("/api/v1/orders/?status=bogus")
    assert bad.status_code == 400 and bad.json()["code"] == "invalid"


def test_missing_order_is_a_json_404(api_client_for):
    client = api_client_for("manager")
    for url in ("/api/v1/orders/999999/", "/api/v1/orders/abc/", "/api/v1/nothing-here/"):
        response = client.get(url)
        assert response.status_code == 404, url
        assert response.json()["code"] == "not_found"


def test_create_manual_order(api_client_for, manual_store, skus):
    response = api_client_for("customer_service").post("/api/v1/orders/", MANUAL_ORDER, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["status"] == "ready" and body["total_amount"] == "420.90"
    assert body["platform_order_id"] == body["number"]
    order = Order.objects.get(pk=body["id"])
    assert order.events.first().actor.username == "u_customer_service"


def test_malformed_json_answers_400_with_a_code(api_client_for, manual_store):
    response = api_client_for("customer_service").post("/api/v1/orders/", data='{"store": "wechat", "lines": [',
                                                       content_type="application/json")
    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"
    assert Order.objects.count() == 0


def test_invalid_order_answers_400_with_field_errors(api_client_for, manual_store, skus):
    payload = {**MANUAL_ORDER, "lines": [{"sku_code": "TEA-LJ-250G", "quantity": 0, "unit_price": "-1"}],
               "receiver": {"name": "", "phone": "abc"}}
    response = api_client_for("customer_service").post("/api/v1/orders/", payload, format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"
    assert {"quantity", "unit_price"} <= set(body["errors"]["lines"]["0"])
    assert {"name", "phone", "address"} <= set(body["errors"]["receiver"])
    assert Order.objects.count() == 0


@pytest.mark.parametrize("payload", [[], "text", 42, {"lines": "x"}, {"store": "nope", **{k: v for k, v in MANUAL_ORDER.items() if k != "store"}}])
def test_wrong_shapes_answer_400(api_client_for, manual_store, skus, payload):
    response = api_client_for("customer_service").post("/api/v1/orders/", data=json.dumps(payload),
                                                       content_type="application/json")
    assert response.status_code == 400 and response.json()["code"] in {"invalid", "parse_error"}


def test_unknown_sku_and_wrong_total_are_business_errors(api_client_for, manual_store, skus):
    client = api_client_for("customer_service")
    unknown = client.post("/api/v1/orders/", {**MANUAL_ORDER, "lines": [
        {"sku_code": "NOPE", "quantity": 1, "unit_price": "1.00"}], "total_amount": "11.00"}, format="json")
    assert unknown.status_code == 400 and unknown.json()["code"] == "order_invalid"
    assert "lines[0].sku_code" in unknown.json()["errors"]
    wrong_total = client.post("/api/v1/orders/", {**MANUAL_ORDER, "total_amount": "1.00"}, format="json")
    assert wrong_total.status_code == 400 and "total_amount" in wrong_total.json()["errors"]
    assert Order.objects.count() == 0


def test_roles_without_add_permission_cannot_create(api_client_for, manual_store, skus):
    for role in ("warehouse", "finance"):
        response = api_client_for(role).post("/api/v1/orders/", MANUAL_ORDER, format="json")
        assert response.status_code == 403 and response.json()["code"] == "permission_denied"
    assert Order.objects.count() == 0


def test_same_idempotency_key_creates_one_order(api_client_for, manual_store, skus):
    client = api_client_for("customer_service")
    first = client.post("/api/v1/orders/", MANUAL_ORDER, format="json", HTTP_IDEMPOTENCY_KEY="k-123")
    second = client.post("/api/v1/orders/", MANUAL_ORDER, format="json", HTTP_IDEMPOTENCY_KEY="k-123")
    assert first.status_code == second.status_code == 201
    assert first.json()["id"] == second.json()["id"]
    assert second["Idempotent-Replayed"] == "true"
    assert Order.objects.count() == 1
    other = client.post("/api/v1/orders/", MANUAL_ORDER, format="json", HTTP_IDEMPOTENCY_KEY="k-456")
    assert other.status_code == 201 and Order.objects.count() == 2


def test_idempotency_key_with_a_different_body_is_refused(api_client_for, manual_store, skus):
    client = api_client_for("customer_service")
    client.post("/api/v1/orders/", MANUAL_ORDER, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    changed = client.post("/api/v1/orders/", {**MANUAL_ORDER, "shipping_amount": "0.00", "total_amount": "410.90"},
                          format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert changed.status_code == 422 and changed.json()["code"] == "idempotency_key_reused"
    assert Order.objects.count() == 1


def test_failed_create_does_not_burn_the_idempotency_key(api_client_for, manual_store, skus):
    client = api_client_for("customer_service")
    bad = client.post("/api/v1/orders/", {**MANUAL_ORDER, "total_amount": "1.00"}, format="json",
                      HTTP_IDEMPOTENCY_KEY="k-retry")
    assert bad.status_code == 400
    # A different (corrected) body with the same key is a new attempt, since nothing was stored.
    good = client.post("/api/v1/orders/", MANUAL_ORDER, format="json", HTTP_IDEMPOTENCY_KEY="k-retry")
    assert good.status_code == 201 and Order.objects.count() == 1


def test_transition_not_allowed_answers_409_and_changes_nothing(api_client_for, make_order):
    order = make_order()
    services_events = OrderEvent.objects.filter(order=order).count()
    client = api_client_for("manager")
    started = client.post(f"/api/v1/orders/{order.pk}/transition/", {"transition": "start_fulfilment"}, format="json")
    assert started.status_code == 200
    order.refresh_from_db()
    events_before = OrderEvent.objects.filter(order=order).count()
    assert events_before == services_events + 1
    response = client.post(f"/api/v1/orders/{order.pk}/cancel/", {"reason": "too late"}, format="json")
    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "transition_not_allowed" and order.number in body["message"]
    assert body["errors"] == {"status": "in_fulfilment", "transition": "cancel"}
    order.refresh_from_db()
    assert order.status == OrderStatus.IN_FULFILMENT
    assert OrderEvent.objects.filter(order=order).count() == events_before


def test_cancel_hold_release_endpoints(api_client_for, make_order):
    order = make_order()
    client = api_client_for("customer_service")
    held = client.post(f"/api/v1/orders/{order.pk}/hold/", {"reason": "risk", "note": "核实地址"}, format="json")
    assert held.status_code == 200 and held.json()["status"] == "held" and held.json()["hold_reasons"] == ["risk"]
    again = client.post(f"/api/v1/orders/{order.pk}/hold/", {"reason": "risk"}, format="json")
    assert again.status_code == 409 and again.json()["code"] == "hold_conflict"
    bad = client.post(f"/api/v1/orders/{order.pk}/hold/", {"reason": "whatever"}, format="json")
    assert bad.status_code == 400 and "reason" in bad.json()["errors"]
    released = client.post(f"/api/v1/orders/{order.pk}/release/", {"reason": "risk"}, format="json")
    assert released.status_code == 200 and released.json()["status"] == "ready"
    cancelled = client.post(f"/api/v1/orders/{order.pk}/cancel/", {"reason": "买家取消"}, format="json")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["events"][-1]["reason"] == "买家取消"


def test_warehouse_cannot_cancel_or_hold(api_client_for, make_order):
    order = make_order()
    client = api_client_for("warehouse")
    assert client.post(f"/api/v1/orders/{order.pk}/cancel/", {}, format="json").status_code == 403
    assert client.post(f"/api/v1/orders/{order.pk}/hold/", {"reason": "risk"}, format="json").status_code == 403
    refused = client.post(f"/api/v1/orders/{order.pk}/transition/", {"transition": "cancel"}, format="json")
    assert refused.status_code == 403 and refused.json()["code"] == "permission_denied"
    order.refresh_from_db()
    assert order.status == OrderStatus.READY


def test_unknown_transition_name_is_400(api_client_for, make_order):
    order = make_order()
    response = api_client_for("manager").post(f"/api/v1/orders/{order.pk}/transition/", {"transition": "explode"},
                                              format="json")
    assert response.status_code == 400 and response.json()["code"] == "unknown_transition"


def test_openapi_schema_and_docs_are_served(api_client_for):
    client = api_client_for("manager")
    schema = client.get("/api/schema/?format=json")
    assert schema.status_code == 200
    paths = json.loads(schema.content)["paths"]
    assert "/api/v1/orders/" in paths and "/api/v1/orders/{id}/cancel/" in paths
    assert client.get("/api/docs/").status_code == 200
