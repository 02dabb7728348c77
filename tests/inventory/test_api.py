"""REST API v1 for stock: stock level list, filters and detail, receipts, errors and role permissions."""

import pytest
from rest_framework.test import APIClient

from inventory.models import SKU, BundleComponent, MovementKind, StockLevel, StockMovement, Warehouse
from inventory.services import sku_set_safety_stock, stock_receive

pytestmark = pytest.mark.django_db


def state() -> tuple[int, int, list]:
    levels = list(StockLevel.objects.order_by("pk").values_list("pk", "on_hand", "reserved"))
    return StockLevel.objects.count(), StockMovement.objects.count(), levels


@pytest.fixture
def beijing(db) -> Warehouse:
    return Warehouse.objects.create(code="BJ", name="北京仓", priority=20)


@pytest.fixture
def english(api_client_for):
    def make(role: str) -> APIClient:
        client = api_client_for(role)
        client.credentials(HTTP_ACCEPT_LANGUAGE="en")
        return client
    return make


def test_list_filters_and_detail(english, skus, beijing):
    tea = skus["TEA-LJ-250G"]
    stock_receive(warehouse_id=beijing.pk, sku_id=tea.pk, quantity=7)
    sku_set_safety_stock(sku_id=tea.pk, safety_stock=10)
    client = english("warehouse")

    body = client.get("/api/v1/stock-levels/").json()
    assert body["count"] == 4
    assert [(r["warehouse"], r["sku"], r["available"]) for r in body["results"]] == [
        ("SH", "CUP-CER-350", 1000), ("SH", "GIFT-BAG", 1000), ("SH", "TEA-LJ-250G", 990), ("BJ", "TEA-LJ-250G", -3)]
    bj_tea = StockLevel.objects.get(warehouse=beijing, sku=tea)
    assert body["results"][3] == {"id": bj_tea.pk, "warehouse": "BJ", "sku": "TEA-LJ-250G", "sku_name": "西湖龙井 250g",
                                  "on_hand": 7, "reserved": 0, "safety_stock": 10, "available": -3}
    assert client.get(f"/api/v1/stock-levels/{bj_tea.pk}/").json() == body["results"][3]

    def listed(query: str) -> list[tuple[str, str]]:
        return [(r["warehouse"], r["sku"]) for r in client.get(f"/api/v1/stock-levels/?{query}").json()["results"]]

    assert listed("warehouse=BJ") == [("BJ", "TEA-LJ-250G")]
    assert listed("sku=TEA-LJ-250G") == [("SH", "TEA-LJ-250G"), ("BJ", "TEA-LJ-250G")]
    assert listed("low=true") == [("BJ", "TEA-LJ-250G")]
    assert listed("low=false") == listed("")
    assert listed("warehouse=SH&low=true") == []
    assert listed("warehouse=NOPE") == []
    bad = client.get("/api/v1/stock-levels/?low=maybe")
    assert bad.status_code == 400 and bad.json()["code"] == "invalid" and "low" in bad.json()["errors"]
    assert client.get("/api/v1/stock-levels/999999/").status_code == 404


def test_receipt_adds_stock_and_answers_201_with_the_level(english, role_users, skus, warehouse):
    response = english("warehouse").post("/api/v1/stock-receipts/", {
        "warehouse": "SH", "sku": "CUP-CER-350", "quantity": 40, "reference": "PO-7", "note": "补货"}, format="json")
    assert response.status_code == 201
    level = StockLevel.objects.get(warehouse=warehouse, sku__code="CUP-CER-350")
    assert response.json() == {"id": level.pk, "warehouse": "SH", "sku": "CUP-CER-350", "sku_name": "陶瓷马克杯 350ml",
                               "on_hand": 1040, "reserved": 0, "safety_stock": 0, "available": 1040}
    movement = StockMovement.objects.order_by("-id").first()
    assert (movement.kind, movement.sku_id, movement.on_hand_delta, movement.reference, movement.note,
            movement.actor) == (MovementKind.RECEIPT, level.sku_id, 40, "PO-7", "补货", role_users["warehouse"])


def test_receipt_into_a_new_warehouse_creates_the_level(english, skus, beijing):
    response = english("manager").post("/api/v1/stock-receipts/",
                                       {"warehouse": "BJ", "sku": "GIFT-BAG", "quantity": "3"}, format="json")
    assert response.status_code == 201 and response.json()["on_hand"] == 3 and response.json()["warehouse"] == "BJ"


@pytest.mark.parametrize("changes, field, message", [
    ({"quantity": 0}, "quantity", "Ensure this value is greater than or equal to 1."),
    ({"quantity": -5}, "quantity", "Ensure this value is greater than or equal to 1."),
    ({"quantity": 2.5}, "quantity", "A valid integer is required."),
    ({"quantity": "many"}, "quantity", "A valid integer is required."),
    ({"quantity": 10**12}, "quantity", "Ensure this value is less than or equal to 1000000."),
    ({"quantity": None}, "quantity", "This field may not be null."),
    ({"sku": "NOPE"}, "sku", "Object with code=NOPE does not exist."),
    ({"warehouse": "NOPE"}, "warehouse", "Object with code=NOPE does not exist."),
    ({"reference": "x" * 101}, "reference", "Ensure this field has no more than 100 characters."),
])
def test_bad_receipts_are_400_with_field_errors_and_change_nothing(english, skus, changes, field, message):
    before = state()
    response = english("warehouse").post("/api/v1/stock-receipts/",
                                         {"warehouse": "SH", "sku": "TEA-LJ-250G", "quantity": 5, **changes},
                                         format="json")
    assert response.status_code == 400
    assert response.json() == {"code": "invalid", "message": "Invalid input.", "errors": {field: [message]}}
    assert state() == before


def test_missing_fields_are_400(english, skus):
    response = english("warehouse").post("/api/v1/stock-receipts/", {}, format="json")
    assert response.status_code == 400
    assert sorted(response.json()["errors"]) == ["quantity", "sku", "warehouse"]


def test_inactive_warehouse_is_400_warehouse_inactive(english, skus):
    Warehouse.objects.create(code="GZ", name="广州仓", active=False)
    before = state()
    response = english("warehouse").post("/api/v1/stock-receipts/",
                                         {"warehouse": "GZ", "sku": "TEA-LJ-250G", "quantity": 5}, format="json")
    assert response.status_code == 400
    assert response.json() == {"code": "warehouse_inactive", "message": "Warehouse GZ is not active.",
                               "errors": {"warehouse": ["Inactive warehouse."]}}
    assert state() == before


def test_receipt_of_a_bundle_is_400_stock_invalid(english, skus):
    box = SKU.objects.create(code="BOX", name="礼盒")
    BundleComponent.objects.create(bundle=box, component=skus["GIFT-BAG"], quantity=2)
    before = state()
    response = english("warehouse").post("/api/v1/stock-receipts/",
                                         {"warehouse": "SH", "sku": "BOX", "quantity": 5}, format="json")
    assert response.status_code == 400 and response.json()["code"] == "stock_invalid"
    assert state() == before


def test_anonymous_is_401_and_roles_without_permission_are_403(api_client_for, skus):
    receipt = {"warehouse": "SH", "sku": "TEA-LJ-250G", "quantity": 5}
    level = StockLevel.objects.get(sku__code="TEA-LJ-250G")
    anonymous = APIClient()
    for response in (anonymous.get("/api/v1/stock-levels/"), anonymous.get(f"/api/v1/stock-levels/{level.pk}/"),
                     anonymous.post("/api/v1/stock-receipts/", receipt, format="json")):
        assert response.status_code == 401 and response.json()["code"] == "not_authenticated"
    finance = api_client_for("finance")
    for response in (finance.get("/api/v1/stock-levels/"), finance.get(f"/api/v1/stock-levels/{level.pk}/"),
                     finance.post("/api/v1/stock-receipts/", receipt, format="json")):
        assert response.status_code == 403 and response.json()["code"] == "permission_denied"
    service = api_client_for("customer_service")
    assert service.get("/api/v1/stock-levels/").status_code == 200
    assert service.post("/api/v1/stock-receipts/", receipt, format="json").status_code == 403
    assert StockLevel.objects.get(pk=level.pk).on_hand == 1000
    assert api_client_for("admin").post("/api/v1/stock-receipts/", receipt, format="json").status_code == 201


def test_schema_lists_the_stock_endpoints(api_client_for):
    schema = api_client_for("manager").get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    assert {"/api/v1/stock-levels/", "/api/v1/stock-levels/{id}/", "/api/v1/stock-receipts/"} <= set(schema["paths"])
    params = {p["name"] for p in schema["paths"]["/api/v1/stock-levels/"]["get"]["parameters"]}
    assert {"warehouse", "sku", "low", "page"} <= params
    assert set(schema["paths"]["/api/v1/stock-receipts/"]["post"]["responses"]) == {
        "201", "400", "401", "403", "405", "415", "429"}
