"""Staff scopes on the fulfilment pages: a user tied to one warehouse (or store) neither sees nor moves another's
parcels and waves; unscoped users, managers and admins keep seeing everything."""

import re
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client

from demo.loader import demo_load
from fulfillment import services
from fulfillment.models import Shipment, ShipmentEvent, ShipmentStatus, Wave
from inventory.models import StaffScope, Warehouse
from inventory.selectors import warehouse_ids_for_user
from orders.models import OrderStatus, Platform, Store
from orders.services import ReceiverInput
from pipeline import shipping
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db
SS = ShipmentStatus
HTMX = {"HTTP_HX_REQUEST": "true"}


def login(user) -> Client:
    client = Client()
    assert client.login(username=user.username, password=PASSWORD)
    client.cookies["django_language"] = "en"
    return client


def scope(user, *, warehouses=(), stores=()) -> None:
    row = StaffScope.objects.create(user=user)
    row.warehouses.set(warehouses)
    row.stores.set(stores)


@pytest.fixture
def parcel(make_order, warehouse):
    """A parcel waiting to be picked in SH (the conftest's warehouse), made by the real services."""
    order = make_order(
        receiver=ReceiverInput(
            name="买家", phone="13312343069", province="上海市", city="上海市", district="浦东新区",
            address="张江路 1 号",
        )
    )
    order.refresh_from_db()
    assert order.status == OrderStatus.READY
    shipment = Shipment.objects.filter(lines__order=order).distinct().get()
    assert (shipment.warehouse_id, shipment.status) == (warehouse.pk, SS.TO_PICK)
    return shipment


@pytest.fixture
def bj(db) -> Warehouse:
    return Warehouse.objects.create(code="BJ", name="北京仓", provinces=["北京市"], priority=20)


@pytest.fixture
def bj_clerk(role_users, bj):
    """The warehouse-role user, limited to the Beijing warehouse: SH is another warehouse to them."""
    user = role_users["warehouse"]
    scope(user, warehouses=[bj])
    return user


def picker_codes(html: str, name: str) -> list[str]:
    select = re.search(rf'<select name="{name}"[^>]*>(.*?)</select>', html, re.S)
    assert select, name
    return [code for code in re.findall(r'<option value="([^"]*)"', select.group(1)) if code]


def test_the_selector_reads_the_scope_and_lets_managers_and_admins_see_all(role_users, bj, warehouse):
    clerk, manager, admin = role_users["warehouse"], role_users["manager"], role_users["admin"]
    assert warehouse_ids_for_user(clerk) is None  # no scope row: every warehouse, as before
    for user in (clerk, manager, admin):
        scope(user, warehouses=[bj])
    assert warehouse_ids_for_user(type(clerk).objects.get(pk=clerk.pk)) == frozenset({bj.pk})
    assert warehouse_ids_for_user(type(manager).objects.get(pk=manager.pk)) is None
    assert warehouse_ids_for_user(type(admin).objects.get(pk=admin.pk)) is None
    # A scope row with nothing ticked also means every warehouse.
    StaffScope.objects.get(user=clerk).warehouses.clear()
    assert warehouse_ids_for_user(type(clerk).objects.get(pk=clerk.pk)) is None


def test_a_scoped_user_cannot_open_or_work_another_warehouses_parcels(bj_clerk, parcel, warehouse, bj):
    client = login(bj_clerk)
    events = ShipmentEvent.objects.count()

    # The board of another warehouse is a 403 (its code is no secret); their own board opens.
    assert client.get(f"/fulfillment/kanban/{warehouse.code}/").status_code == 403
    assert client.get(f"/fulfillment/kanban/{warehouse.code}/counts/").status_code == 403
    assert client.get(f"/fulfillment/kanban/{warehouse.code}/column/to_pick/").status_code == 403
    assert client.get(f"/fulfillment/kanban/{bj.code}/").status_code == 200
    assert client.get("/fulfillment/kanban/")["Location"] == f"/fulfillment/kanban/{bj.code}/"

    # A parcel by id is a 404, as if it did not exist: ids cannot be probed.
    assert client.get(f"/fulfillment/shipments/{parcel.pk}/").status_code == 404
    for action, data in [
        ("start", {}),
        ("tracking", {"tracking_number": "YT1234567890"}),
        ("waybill", {}),
        ("exception", {"reason": "破损"}),
        ("override-warehouse", {"warehouse": bj.pk, "reason": "就近"}),
        ("split", {"reason": "拆"}),
    ]:
        assert client.post(f"/fulfillment/shipments/{parcel.pk}/{action}/", data).status_code == 404, action

    # The card move answers like a parcel that does not exist, and changes nothing.
    response = client.post(f"/fulfillment/shipments/{parcel.pk}/move/", {"to": SS.PICKING}, **HTMX)
    assert response.status_code == 404
    assert response["X-Refusal-Code"] == "shipment_not_found"
    unknown = client.post("/fulfillment/shipments/99999999/move/", {"to": SS.PICKING}, **HTMX)
    assert (unknown.status_code, unknown["X-Refusal-Code"]) == (404, "shipment_not_found")

    parcel.refresh_from_db()
    assert (parcel.status, parcel.warehouse_id, parcel.tracking_number) == (SS.TO_PICK, warehouse.pk, "")
    assert ShipmentEvent.objects.count() == events

    # The lists leave it out.
    assert parcel.number not in client.get("/fulfillment/shipments/").content.decode()
    listed = client.get(f"/fulfillment/shipments/?warehouse={warehouse.code}").content.decode()
    assert parcel.number not in listed


def test_the_packing_station_refuses_another_warehouses_label_like_an_unknown_one(bj_clerk, parcel):
    client = login(bj_clerk)
    shipping.shipment_start_picking(shipment_id=parcel.pk)
    response = client.post("/fulfillment/pack/scan/", {"code": parcel.number}, **HTMX)
    assert response.status_code == 400
    assert f"No parcel has the number {parcel.number}." in response.content.decode()
    assert client.get(f"/fulfillment/pack/{parcel.pk}/").status_code == 404
    line = parcel.lines.select_related("sku").first()
    response = client.post(f"/fulfillment/pack/{parcel.pk}/scan/", {"code": line.sku.barcode}, **HTMX)
    assert response.status_code == 404
    assert client.post(f"/fulfillment/pack/{parcel.pk}/pack/", {"weight_grams": "500"}).status_code == 404
    assert client.post(f"/fulfillment/pack/{parcel.pk}/reset/").status_code == 404
    assert client.post(f"/fulfillment/pack/{parcel.pk}/start/").status_code == 404
    assert sum(line.verified_quantity for line in parcel.lines.all()) == 0
    parcel.refresh_from_db()
    assert parcel.status == SS.PICKING


def test_waves_of_another_warehouse_are_hidden_and_cannot_start(bj_clerk, parcel, warehouse):
    wave = services.wave_create(shipment_ids=[parcel.pk], actor=None)
    client = login(bj_clerk)
    assert wave.number not in client.get("/fulfillment/waves/").content.decode()
    assert client.get(f"/fulfillment/waves/{wave.pk}/").status_code == 404
    assert client.post(f"/fulfillment/waves/{wave.pk}/start/").status_code == 404
    parcel.refresh_from_db()
    assert parcel.status == SS.TO_PICK
    wave.refresh_from_db()
    assert wave.started_at is None


def test_a_wave_cannot_be_made_in_another_warehouse(bj_clerk, parcel, warehouse):
    client = login(bj_clerk)
    waves = Wave.objects.count()
    response = client.post(
        "/fulfillment/waves/new/", {"warehouse": warehouse.code, "shipments": [parcel.pk]}
    )
    assert response.status_code == 400
    response = client.post("/fulfillment/waves/new-by-rule/", {"warehouse": warehouse.code, "limit": "10"})
    assert response.status_code == 400
    assert "warehouse" in response.context["rule_form"].errors
    assert Wave.objects.count() == waves
    parcel.refresh_from_db()
    assert parcel.wave_id is None


def test_pickers_offer_only_the_users_warehouses(bj_clerk, parcel, warehouse, bj):
    client = login(bj_clerk)
    board = client.get(f"/fulfillment/kanban/{bj.code}/")
    assert [w.code for w in board.context["warehouses"]] == [bj.code]
    waves = client.get("/fulfillment/waves/")
    assert [w.code for w in waves.context["warehouses"]] == [bj.code]
    assert picker_codes(waves.content.decode(), "warehouse") == [bj.code]
    shipments = client.get("/fulfillment/shipments/").content.decode()
    assert picker_codes(shipments, "warehouse") == [bj.code]


def test_unscoped_staff_and_managers_see_every_warehouse(role_users, parcel, warehouse, bj):
    scope(role_users["manager"], warehouses=[bj])  # a manager's scope row is ignored: they oversee all
    for role in ("warehouse", "manager"):
        client = login(role_users[role])
        assert client.get(f"/fulfillment/kanban/{warehouse.code}/").status_code == 200, role
        assert client.get(f"/fulfillment/shipments/{parcel.pk}/").status_code == 200, role
        board = client.get(f"/fulfillment/kanban/{bj.code}/")
        assert [w.code for w in board.context["warehouses"]] == [warehouse.code, bj.code], role
        assert parcel.number in client.get("/fulfillment/shipments/").content.decode()
    # And the unscoped warehouse user still moves the card.
    client = login(role_users["warehouse"])
    response = client.post(f"/fulfillment/shipments/{parcel.pk}/move/", {"to": SS.PICKING}, **HTMX)
    assert response.status_code == 200
    parcel.refresh_from_db()
    assert parcel.status == SS.PICKING


def test_a_store_scope_hides_other_stores_parcels(role_users, parcel, warehouse):
    other = Store.objects.create(platform=Platform.MANUAL, code="wx", name="微信")
    clerk = role_users["warehouse"]
    scope(clerk, stores=[other])
    client = login(clerk)
    assert client.get(f"/fulfillment/kanban/{warehouse.code}/").status_code == 200  # the warehouse is theirs
    board = client.get(f"/fulfillment/kanban/{warehouse.code}/").content.decode()
    assert parcel.number not in board
    assert client.get(f"/fulfillment/shipments/{parcel.pk}/").status_code == 404
    assert parcel.number not in client.get("/fulfillment/shipments/").content.decode()
    response = client.post(f"/fulfillment/shipments/{parcel.pk}/move/", {"to": SS.PICKING}, **HTMX)
    assert response.status_code == 404
    parcel.refresh_from_db()
    assert parcel.status == SS.TO_PICK


def test_the_demo_warehouse_user_works_in_shanghai_and_demo_logins_says_so():
    demo_load(orders=3)
    users = {u.username: u for u in get_user_model().objects.filter(username__in=["warehouse", "manager"])}
    sh = Warehouse.objects.get(code="SH")
    assert warehouse_ids_for_user(users["warehouse"]) == frozenset({sh.pk})
    assert warehouse_ids_for_user(users["manager"]) is None
    out = StringIO()
    call_command("demo_logins", stdout=out)
    lines = {line.split()[0]: line for line in out.getvalue().splitlines() if line.startswith("  ") and line.split()}
    assert lines["warehouse"].rstrip().endswith(" SH")
    assert lines["manager"].rstrip().endswith(" all")


def test_the_scope_is_edited_inline_on_the_users_admin_page(role_users, bj):
    clerk = role_users["warehouse"]
    scope(clerk, warehouses=[bj])
    client = login(role_users["admin"])
    page = client.get(f"/admin/auth/user/{clerk.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'name="staff_scope-0-warehouses"' in html and 'name="staff_scope-0-stores"' in html
    listing = client.get("/admin/inventory/staffscope/")
    assert listing.status_code == 200 and "BJ" in listing.content.decode()
