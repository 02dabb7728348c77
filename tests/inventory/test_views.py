"""The stock pages: permissions, the filtered list and low stock, a SKU's ledger, and the movement forms."""

import datetime

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import translation

from inventory.models import SKU, BundleComponent, MovementKind, StockLevel, StockMovement, Warehouse
from inventory.services import sku_set_safety_stock, stock_receive
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

PAGES = ["/inventory/", "/inventory/low/", "/inventory/receive/", "/inventory/stocktake/", "/inventory/adjust/",
         "/inventory/import/", "/inventory/export.xlsx"]


def login(role_users, role: str) -> Client:
    client = Client()
    assert client.login(username=role_users[role].username, password=PASSWORD)
    # English msgids: the assertions must not depend on the state of the Chinese catalogue.
    client.cookies["django_language"] = "en"
    return client


def form_errors(response) -> dict[str, list[str]]:
    # Error messages are lazy: read them in English, as the page was rendered.
    with translation.override("en"):
        return {field: [str(message) for message in messages]
                for field, messages in response.context["form"].errors.items()}


def counts() -> tuple[int, int, list]:
    """Everything a refused form must leave as it was."""
    levels = list(StockLevel.objects.order_by("pk").values_list("pk", "on_hand", "reserved", "safety_stock"))
    return StockLevel.objects.count(), StockMovement.objects.count(), levels


@pytest.fixture
def tea(skus) -> SKU:
    return skus["TEA-LJ-250G"]


@pytest.fixture
def beijing(db) -> Warehouse:
    return Warehouse.objects.create(code="BJ", name="北京仓", priority=20)


@pytest.fixture
def closed(db) -> Warehouse:
    return Warehouse.objects.create(code="GZ", name="广州仓", priority=30, active=False)


def rows_of(response) -> list[tuple[str, str, int, int, int, int]]:
    """(warehouse, sku, on hand, reserved, safety stock, available) of each row the page lists."""
    return [(level.warehouse.code, level.sku.code, level.on_hand, level.reserved, level.safety_stock, level.free)
            for level in response.context["page"].object_list]


def test_pages_need_login(skus, tea):
    for url in [*PAGES, f"/inventory/sku/{tea.pk}/"]:
        response = Client().get(url)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/"), url


def test_pages_render_for_warehouse_and_manager_and_are_403_for_finance(role_users, skus, tea):
    for role in ("warehouse", "manager"):
        client = login(role_users, role)
        for url in [*PAGES, f"/inventory/sku/{tea.pk}/"]:
            assert client.get(url).status_code == 200, (role, url)
    finance = login(role_users, "finance")
    for url in [*PAGES, f"/inventory/sku/{tea.pk}/"]:
        assert finance.get(url).status_code == 403, url
    assert finance.post("/inventory/receive/", {"warehouse": "SH", "sku": tea.code, "quantity": 5}).status_code == 403
    assert StockLevel.objects.get(sku=tea).on_hand == 1000


def test_customer_service_sees_stock_but_not_the_ledger_and_cannot_move_stock(role_users, skus, tea):
    client = login(role_users, "customer_service")
    assert client.get("/inventory/").status_code == 200
    sku_page = client.get(f"/inventory/sku/{tea.pk}/")
    assert sku_page.status_code == 200 and sku_page.context["page"] is None
    assert "Stock ledger" not in sku_page.content.decode()
    assert "/inventory/receive/" not in client.get("/inventory/").content.decode()
    for url in ("/inventory/receive/", "/inventory/stocktake/", "/inventory/adjust/", "/inventory/import/"):
        assert client.get(url).status_code == 403
    before = counts()
    assert client.post("/inventory/receive/", {"warehouse": "SH", "sku": tea.code, "quantity": 5}).status_code == 403
    assert counts() == before


def test_nav_link_only_for_roles_that_see_stock(role_users, skus):
    assert 'href="/inventory/"' in login(role_users, "warehouse").get("/orders/").content.decode()
    assert 'href="/inventory/"' in login(role_users, "customer_service").get("/orders/").content.decode()
    assert 'href="/inventory/"' not in login(role_users, "finance").get("/orders/").content.decode()


def test_list_shows_the_counters_and_filters(role_users, skus, tea, beijing):
    tea.category = "tea"
    tea.save(update_fields=["category"])
    stock_receive(warehouse_id=beijing.pk, sku_id=tea.pk, quantity=7)
    sku_set_safety_stock(sku_id=tea.pk, safety_stock=10)  # BJ: 7 on hand < 10 safety stock → low
    client = login(role_users, "warehouse")

    page = client.get("/inventory/")
    assert rows_of(page) == [
        ("SH", "CUP-CER-350", 1000, 0, 0, 1000),
        ("SH", "GIFT-BAG", 1000, 0, 0, 1000),
        ("SH", "TEA-LJ-250G", 1000, 0, 10, 990),
        ("BJ", "TEA-LJ-250G", 7, 0, 10, -3),
    ]
    html = page.content.decode()
    assert 'data-low-count="1"' in html and "1 stock level is below its safety stock." in html
    assert '<tr class="low" data-sku="TEA-LJ-250G" data-warehouse="BJ">' in html
    assert '<tr class="low" data-sku="TEA-LJ-250G" data-warehouse="SH">' not in html

    assert rows_of(client.get("/inventory/?warehouse=BJ")) == [("BJ", "TEA-LJ-250G", 7, 0, 10, -3)]
    assert [r[:2] for r in rows_of(client.get("/inventory/?q=cup"))] == [("SH", "CUP-CER-350")]
    assert [r[:2] for r in rows_of(client.get("/inventory/?q=马克杯"))] == [("SH", "CUP-CER-350")]
    assert [r[:2] for r in rows_of(client.get("/inventory/?q=6901234567915"))] == [("SH", "GIFT-BAG")]
    assert [r[:2] for r in rows_of(client.get("/inventory/?category=tea"))] == [("SH", "TEA-LJ-250G"),
                                                                                ("BJ", "TEA-LJ-250G")]
    assert rows_of(client.get("/inventory/?low=on")) == [("BJ", "TEA-LJ-250G", 7, 0, 10, -3)]
    assert rows_of(client.get("/inventory/?warehouse=SH&low=on")) == []
    unknown = client.get("/inventory/?warehouse=NOPE")  # a filter error, shown over all rows, not a 500
    assert unknown.status_code == 200 and unknown.context["filter"].errors and len(rows_of(unknown)) == 4


def test_list_is_paginated(role_users, warehouse):
    for number in range(55):
        sku = SKU.objects.create(code=f"S-{number:03d}", name=f"商品 {number}")
        stock_receive(warehouse_id=warehouse.pk, sku_id=sku.pk, quantity=number + 1)
    client = login(role_users, "warehouse")
    first, second = client.get("/inventory/"), client.get("/inventory/?page=2")
    assert [r[1] for r in rows_of(first)] == [f"S-{n:03d}" for n in range(50)]
    assert [r[1] for r in rows_of(second)] == [f"S-{n:03d}" for n in range(50, 55)]
    assert "55 stock levels" in first.content.decode()


def test_list_queries_do_not_grow_with_the_rows(role_users, warehouse, django_assert_max_num_queries):
    client = login(role_users, "warehouse")
    for number in range(3):
        stock_receive(warehouse_id=warehouse.pk, sku_id=SKU.objects.create(code=f"A-{number}", name="a").pk,
                      quantity=1)
    client.get("/inventory/")  # warm up session and permission caches
    with CaptureQueriesContext(connection) as few:
        client.get("/inventory/")
    for number in range(30):
        stock_receive(warehouse_id=warehouse.pk, sku_id=SKU.objects.create(code=f"B-{number}", name="b").pk,
                      quantity=1)
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = client.get("/inventory/")
    assert len(rows_of(response)) == 33


def test_low_page_lists_only_rows_below_safety_stock_with_the_count(role_users, skus, tea, beijing):
    stock_receive(warehouse_id=beijing.pk, sku_id=tea.pk, quantity=4)
    sku_set_safety_stock(sku_id=tea.pk, safety_stock=5)
    sku_set_safety_stock(sku_id=skus["GIFT-BAG"].pk, safety_stock=1000)  # exactly at safety stock: not low
    client = login(role_users, "warehouse")
    page = client.get("/inventory/low/")
    assert rows_of(page) == [("BJ", "TEA-LJ-250G", 4, 0, 5, -1)]
    assert 'data-low-count="1"' in page.content.decode()
    sku_set_safety_stock(sku_id=tea.pk, safety_stock=1001)
    assert rows_of(client.get("/inventory/low/")) == [("BJ", "TEA-LJ-250G", 4, 0, 1001, -997),  # lowest first
                                                      ("SH", "TEA-LJ-250G", 1000, 0, 1001, -1)]


def test_sku_page_shows_stock_per_warehouse_and_the_ledger(role_users, tea, beijing, make_order):
    order = make_order()  # reserves 2 × TEA in SH
    stock_receive(warehouse_id=beijing.pk, sku_id=tea.pk, quantity=30, reference="PO-9", note="到货",
                  actor=role_users["warehouse"])
    receipt = StockMovement.objects.get(sku=tea, reference="PO-9")
    StockMovement.objects.filter(pk=receipt.pk).update(
        created_at=datetime.datetime(2020, 1, 1, 23, 30, tzinfo=datetime.UTC))
    client = login(role_users, "warehouse")
    response = client.get(f"/inventory/sku/{tea.pk}/")
    html = response.content.decode()
    assert [(lv.warehouse.code, lv.on_hand, lv.reserved, lv.free) for lv in response.context["levels"]] == [
        ("SH", 1000, 2, 998), ("BJ", 30, 0, 30)]
    ledger = [(m.kind, m.warehouse.code, m.on_hand_delta, m.reserved_delta, m.order_id)
              for m in response.context["page"].object_list]
    assert ledger == [  # newest first; the BJ receipt was moved back to 2020
        (MovementKind.RESERVATION, "SH", 0, 2, order.pk),
        (MovementKind.RECEIPT, "SH", 1000, 0, None),
        (MovementKind.RECEIPT, "BJ", 30, 0, None),
    ]
    assert "2020-01-02 07:30:00" in html  # 23:30 UTC shown in Asia/Shanghai
    assert f'<a href="/orders/{order.pk}/">{order.number}</a>' in html
    assert "+30" in html and "PO-9" in html and "到货" in html and "u_warehouse" in html
    assert client.get("/inventory/sku/999999/").status_code == 404


def test_receipt_form_adds_on_hand_and_writes_a_ledger_row(role_users, skus, tea, warehouse):
    client = login(role_users, "warehouse")
    response = client.post("/inventory/receive/", {"warehouse": "SH", "sku": f" {tea.code} ", "quantity": "25",
                                                   "reference": "PO-1", "note": "到货"})
    assert response.status_code == 302 and response["Location"] == f"/inventory/sku/{tea.pk}/"
    assert StockLevel.objects.get(sku=tea, warehouse=warehouse).on_hand == 1025
    movement = StockMovement.objects.order_by("-id").first()
    assert (movement.kind, movement.sku_id, movement.warehouse_id, movement.on_hand_delta, movement.reserved_delta,
            movement.reference, movement.note, movement.actor) == (
        MovementKind.RECEIPT, tea.pk, warehouse.pk, 25, 0, "PO-1", "到货", role_users["warehouse"])
    page = client.get(response["Location"]).content.decode()
    assert "Received 25 × TEA-LJ-250G into SH; on hand is now 1025." in page


@pytest.mark.parametrize("changes, field, message", [
    ({"quantity": "0"}, "quantity", "Ensure this value is greater than or equal to 1."),
    ({"quantity": "-3"}, "quantity", "Ensure this value is greater than or equal to 1."),
    ({"quantity": "2.5"}, "quantity", "Enter a whole number."),
    ({"quantity": "99999999999"}, "quantity", "Ensure this value is less than or equal to 1000000."),
    ({"sku": "NO-SUCH-SKU"}, "sku", "No SKU has the code NO-SUCH-SKU."),
    ({"warehouse": "GZ"}, "warehouse", "Select a valid choice. That choice is not one of the available choices."),
    ({"warehouse": "NOPE"}, "warehouse", "Select a valid choice. That choice is not one of the available choices."),
])
def test_bad_receipt_is_a_form_error_and_changes_nothing(role_users, skus, tea, closed, changes, field, message):
    client = login(role_users, "warehouse")
    before = counts()
    response = client.post("/inventory/receive/", {"warehouse": "SH", "sku": tea.code, "quantity": "5", **changes})
    assert response.status_code == 200
    assert form_errors(response) == {field: [message]}
    assert f'data-error-for="{field}"' in response.content.decode()
    assert counts() == before


def test_inactive_warehouse_is_not_offered(role_users, skus, closed):
    html = login(role_users, "warehouse").get("/inventory/receive/").content.decode()
    assert '<option value="SH"' in html and '<option value="GZ"' not in html


def test_receipt_of_a_bundle_shows_the_service_refusal(role_users, skus, tea):
    gift_box = SKU.objects.create(code="BOX", name="礼盒")
    BundleComponent.objects.create(bundle=gift_box, component=tea, quantity=2)
    before = counts()
    response = login(role_users, "warehouse").post("/inventory/receive/",
                                                   {"warehouse": "SH", "sku": "BOX", "quantity": "5"})
    assert response.status_code == 200
    assert form_errors(response) == {"sku": ["BOX is a bundle; stock is kept for its components."]}
    assert counts() == before


def test_stock_take_sets_on_hand_and_ledgers_the_difference(role_users, skus, tea, warehouse):
    client = login(role_users, "warehouse")
    response = client.post("/inventory/stocktake/", {"warehouse": "SH", "sku": tea.code, "counted": "990",
                                                     "reference": "ST-1"})
    assert response.status_code == 302
    assert StockLevel.objects.get(sku=tea, warehouse=warehouse).on_hand == 990
    movement = StockMovement.objects.order_by("-id").first()
    assert (movement.kind, movement.on_hand_delta, movement.reference, movement.actor) == (
        MovementKind.STOCK_TAKE, -10, "ST-1", role_users["warehouse"])


def test_stock_take_below_reserved_is_a_form_error_and_changes_nothing(role_users, tea, make_order):
    make_order()  # reserves 2 × TEA in SH
    before = counts()
    response = login(role_users, "warehouse").post("/inventory/stocktake/",
                                                   {"warehouse": "SH", "sku": tea.code, "counted": "1"})
    assert response.status_code == 200
    assert form_errors(response) == {"counted": [
        "Counted 1 of TEA-LJ-250G, but 2 are reserved for orders; recount or release orders first."]}
    assert counts() == before


def test_adjustment_form(role_users, tea, warehouse, make_order):
    make_order()  # reserves 2 × TEA in SH
    client = login(role_users, "warehouse")
    response = client.post("/inventory/adjust/", {"warehouse": "SH", "sku": tea.code, "delta": "-5",
                                                  "reason": "破损"})
    assert response.status_code == 302
    assert StockLevel.objects.get(sku=tea, warehouse=warehouse).on_hand == 995
    movement = StockMovement.objects.order_by("-id").first()
    assert (movement.kind, movement.on_hand_delta, movement.note) == (MovementKind.ADJUSTMENT, -5, "破损")

    before = counts()
    zero = client.post("/inventory/adjust/", {"warehouse": "SH", "sku": tea.code, "delta": "0", "reason": "x"})
    assert form_errors(zero) == {"delta": ["The adjustment must be a non-zero whole number of at most 1000000."]}
    below = client.post("/inventory/adjust/", {"warehouse": "SH", "sku": tea.code, "delta": "-994", "reason": "x"})
    assert form_errors(below) == {"delta": [
        "Adjusting TEA-LJ-250G by -994 would leave less than the 2 units reserved."]}
    no_reason = client.post("/inventory/adjust/", {"warehouse": "SH", "sku": tea.code, "delta": "3", "reason": " "})
    assert form_errors(no_reason) == {"reason": ["This field is required."]}
    assert counts() == before


def test_forms_are_prefilled_from_the_query_string(role_users, skus, tea):
    html = login(role_users, "warehouse").get(f"/inventory/receive/?warehouse=SH&sku={tea.code}").content.decode()
    assert f'value="{tea.code}"' in html and '<option value="SH" selected>' in html
