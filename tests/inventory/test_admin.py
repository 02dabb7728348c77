"""Inventory admin: SKU safety stock goes through the service, bundle inline, mappings, read-only stock pages."""

import pytest
from django.test import Client
from django.utils import translation

from inventory.models import (
    SKU,
    BundleComponent,
    PlatformSKUMapping,
    Reservation,
    StockLevel,
    StockMovement,
    Warehouse,
)
from inventory.services import stock_receive
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(role_users) -> Client:
    client = Client()
    assert client.login(username=role_users["admin"].username, password=PASSWORD)
    return client


def sku_form(sku: SKU, **changes) -> dict:
    data = {"code": sku.code, "name": sku.name, "barcode": sku.barcode, "weight_grams": sku.weight_grams,
            "category": sku.category, "safety_stock": sku.safety_stock, "list_price": sku.list_price,
            "active": "on" if sku.active else "",
            "components-TOTAL_FORMS": "0", "components-INITIAL_FORMS": "0",
            "components-MIN_NUM_FORMS": "0", "components-MAX_NUM_FORMS": "1000"}
    data.update(changes)
    return {key: value for key, value in data.items() if value != ""}


def test_safety_stock_change_is_copied_to_every_stock_row(admin_client, skus, warehouse):
    tea = skus["TEA-LJ-250G"]
    beijing = Warehouse.objects.create(code="BJ", name="北京仓")
    stock_receive(warehouse_id=beijing.pk, sku_id=tea.pk, quantity=5)
    response = admin_client.post(f"/admin/inventory/sku/{tea.pk}/change/",
                                 sku_form(tea, safety_stock="15", name="西湖龙井 250g 新包装"))
    assert response.status_code == 302
    tea.refresh_from_db()
    assert (tea.safety_stock, tea.name) == (15, "西湖龙井 250g 新包装")
    assert sorted(StockLevel.objects.filter(sku=tea).values_list("safety_stock", flat=True)) == [15, 15]
    assert StockLevel.objects.exclude(sku=tea).filter(safety_stock__gt=0).count() == 0


def test_other_changes_leave_the_stock_rows_alone(admin_client, skus):
    cup = skus["CUP-CER-350"]
    response = admin_client.post(f"/admin/inventory/sku/{cup.pk}/change/", sku_form(cup, category="cups"))
    assert response.status_code == 302
    assert SKU.objects.get(pk=cup.pk).category == "cups"
    assert list(StockLevel.objects.filter(sku=cup).values_list("safety_stock", flat=True)) == [0]


def test_bundle_components_are_edited_inline(admin_client, skus):
    box = SKU.objects.create(code="BOX", name="礼盒")
    response = admin_client.post(f"/admin/inventory/sku/{box.pk}/change/", sku_form(box, **{
        "components-TOTAL_FORMS": "2",
        "components-0-component": skus["TEA-LJ-250G"].pk, "components-0-quantity": "2",
        "components-1-component": skus["GIFT-BAG"].pk, "components-1-quantity": "1",
    }))
    assert response.status_code == 302
    assert sorted(BundleComponent.objects.filter(bundle=box).values_list("component__code", "quantity")) == [
        ("GIFT-BAG", 1), ("TEA-LJ-250G", 2)]
    own = admin_client.post(f"/admin/inventory/sku/{box.pk}/change/", sku_form(box, **{
        "components-TOTAL_FORMS": "1", "components-0-component": box.pk, "components-0-quantity": "1"}))
    assert own.status_code == 200  # a bundle cannot contain itself: a form error, not a 500
    with translation.override("en"):
        errors = own.context["inline_admin_formsets"][0].formset.errors
        assert [{field: [str(m) for m in messages] for field, messages in form.items()} for form in errors] == [
            {"component": ["A bundle cannot be its own component."]}]
    assert BundleComponent.objects.filter(bundle=box).count() == 2


def test_platform_sku_mapping_admin(admin_client, skus, taobao_store):
    response = admin_client.post("/admin/inventory/platformskumapping/add/", {
        "store": taobao_store.pk, "platform_sku_id": "TB-SKU-1", "sku": skus["TEA-LJ-250G"].pk})
    assert response.status_code == 302
    assert PlatformSKUMapping.objects.get().sku == skus["TEA-LJ-250G"]
    assert admin_client.get("/admin/inventory/platformskumapping/").status_code == 200


@pytest.mark.parametrize("model", [StockLevel, StockMovement, Reservation])
def test_stock_admin_pages_are_read_only(admin_client, make_order, model):
    make_order()  # so there are reservations too
    name = model._meta.model_name
    row = model.objects.order_by("pk").first()
    assert admin_client.get(f"/admin/inventory/{name}/").status_code == 200
    assert admin_client.get(f"/admin/inventory/{name}/add/").status_code == 403
    view = admin_client.get(f"/admin/inventory/{name}/{row.pk}/change/")
    assert view.status_code == 200 and 'name="_save"' not in view.content.decode()
    assert admin_client.post(f"/admin/inventory/{name}/{row.pk}/change/", {}).status_code == 403
    assert admin_client.post(f"/admin/inventory/{name}/{row.pk}/delete/", {"post": "yes"}).status_code == 403
    assert model.objects.filter(pk=row.pk).exists()
