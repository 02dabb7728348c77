"""The warehouse kanban pages: permissions, cards and counts, moves and refusals, filters, paging, query count."""

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from fulfillment.kanban import PAGE, start_of_today
from fulfillment.models import Carrier, Shipment, ShipmentEvent, ShipmentStatus
from fulfillment.services import shipment_override_carrier
from inventory.models import Warehouse
from orders.models import Order, OrderStatus
from orders.services import ReceiverInput
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db
SS = ShipmentStatus
HTMX = {"HTTP_HX_REQUEST": "true"}


def login(role_users, role: str) -> Client:
    client = Client()
    assert client.login(username=role_users[role].username, password=PASSWORD)
    client.cookies["django_language"] = "en"  # English msgids: assertions do not depend on the catalogue
    return client


@pytest.fixture
def parcel(make_order, warehouse):
    """A shipment built by the real services: a paid order (own buyer and address, so nothing merges) → ready."""
    counter = {"n": 0}

    def make(**overrides) -> Shipment:
        counter["n"] += 1
        n = counter["n"]
        overrides.setdefault(
            "receiver",
            ReceiverInput(
                name=f"买家{n}",
                phone="13312343069",
                province="上海市",
                city="上海市",
                district="浦东新区",
                address=f"张江路 {n} 号",
            ),
        )
        order = make_order(**overrides)
        order.refresh_from_db()
        assert order.status == OrderStatus.READY
        return Shipment.objects.filter(lines__order=order).distinct().get()

    return make


def bulk_parcels(warehouse, store, count: int, *, status: str = SS.TO_PICK, prefix: str = "B", **fields):
    """Read-only fixtures for paging and the shipped column (statuses set directly, as the bench does)."""
    now = timezone.now()
    Shipment.objects.bulk_create(
        [
            Shipment(
                number=f"{prefix}{n:05d}",
                store=store,
                warehouse=warehouse,
                status=status,
                platform=store.platform,
                order_numbers=f"O{prefix}{n:05d}",
                receiver_key=f"{prefix}{n}",
                sla_due_at=now + timedelta(minutes=n),
                **fields,
            )
            for n in range(count)
        ]
    )


def cards_in(html: str, status: str) -> list[str]:
    """Shipment numbers of the cards in one column of the board, top to bottom."""
    column = re.search(
        rf'<section class="kanban-column[^"]*" data-status="{status}".*?</section>', html, re.S
    )
    assert column, status
    return re.findall(r'<span class="mono kc-number">([^<]+)</span>', column.group(0))


def count_in(html: str, status: str) -> int:
    match = re.search(rf'data-count-for="{status}"[^>]*>(\d+)<', html)
    assert match, status
    return int(match.group(1))


def board_url(warehouse, query: str = "") -> str:
    return f"/fulfillment/kanban/{warehouse.code}/" + (f"?{query}" if query else "")


# --- Access --------------------------------------------------------------------------------------


def test_anonymous_is_sent_to_login(warehouse):
    for url in [
        "/fulfillment/kanban/",
        board_url(warehouse),
        f"/fulfillment/kanban/{warehouse.code}/counts/",
    ]:
        response = Client().get(url)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/"), url


def test_a_user_without_view_shipment_is_refused(role_users, warehouse):
    client = login(role_users, "finance")
    assert not role_users["finance"].has_perm("fulfillment.view_shipment")
    assert client.get(board_url(warehouse)).status_code == 403
    assert client.get("/fulfillment/kanban/").status_code == 403


def test_a_viewer_without_move_permission_sees_no_buttons_and_cannot_move(role_users, parcel, warehouse):
    shipment = parcel()
    client = login(role_users, "customer_service")
    page = client.get(board_url(warehouse)).content.decode()
    assert cards_in(page, SS.TO_PICK) == [shipment.number]
    assert 'name="to"' not in page and 'data-can-move="0"' in page
    response = client.post(f"/fulfillment/shipments/{shipment.pk}/move/", {"to": SS.PICKING}, **HTMX)
    assert response.status_code == 403
    shipment.refresh_from_db()
    assert shipment.status == SS.TO_PICK


def test_home_redirects_to_the_first_active_warehouse(role_users, warehouse):
    Warehouse.objects.create(code="AA", name="closed", priority=1, active=False)
    Warehouse.objects.create(code="BJ", name="北京仓", priority=20)
    response = login(role_users, "warehouse").get("/fulfillment/kanban/")
    assert response.status_code == 302 and response["Location"] == board_url(warehouse)


def test_home_without_an_active_warehouse_says_so(role_users, db):
    response = login(role_users, "warehouse").get("/fulfillment/kanban/")
    assert response.status_code == 200
    assert "There is no active warehouse yet" in response.content.decode()


def test_unknown_warehouse_and_unknown_column_are_404(role_users, warehouse):
    client = login(role_users, "warehouse")
    assert client.get("/fulfillment/kanban/NOPE/").status_code == 404
    assert client.get(f"/fulfillment/kanban/{warehouse.code}/column/delivered/").status_code == 404
    assert client.get(f"/fulfillment/kanban/{warehouse.code}/column/bogus/", **HTMX).status_code == 404


# --- The board -----------------------------------------------------------------------------------


def test_board_shows_cards_with_their_facts_and_the_counts(role_users, parcel, warehouse):
    urgent = parcel(priority=2)
    later = parcel()
    Shipment.objects.filter(pk=urgent.pk).update(sla_due_at=timezone.now() - timedelta(hours=1))  # overdue
    response = login(role_users, "warehouse").get(board_url(warehouse))
    assert response.status_code == 200
    html = response.content.decode()
    assert cards_in(html, SS.TO_PICK) == [urgent.number, later.number]  # most urgent first
    assert [
        count_in(html, status) for status in ("to_pick", "picking", "packed", "shipped", "exception")
    ] == [2, 0, 0, 0, 0]
    card = re.search(rf'<li class="kanban-card[^"]*"\s+id="shipment-{urgent.pk}".*?</li>', html, re.S).group(
        0
    )
    assert "is-overdue" in card and "is-vip" in card and ">VIP<" in card
    assert f'data-shipment-id="{urgent.pk}"' in card and 'data-status="to_pick"' in card
    assert urgent.order_numbers in card and "Taobao/Tmall" in card and "No carrier" in card
    assert f"{urgent.amount} CNY" in card and "overdue 1h 0m" in card
    assert 'value="picking"' in card and 'value="exception"' in card
    assert "due in " in re.search(rf'id="shipment-{later.pk}".*?</li>', html, re.S).group(0)
    # The page brings its own assets, served locally.
    assert "/static/vendor/sortablejs/Sortable.min.js" in html and "/static/js/kanban.js" in html
    assert "/static/css/kanban.css" in html and 'id="kanban-alert"' in html and 'role="alert"' in html


def test_shipped_column_shows_only_todays_hand_overs(role_users, warehouse, taobao_store):
    today = start_of_today()
    bulk_parcels(
        warehouse, taobao_store, 1, status=SS.SHIPPED, prefix="T", shipped_at=today + timedelta(minutes=1)
    )
    bulk_parcels(
        warehouse, taobao_store, 1, status=SS.SHIPPED, prefix="Y", shipped_at=today - timedelta(minutes=1)
    )
    bulk_parcels(warehouse, taobao_store, 1, status=SS.DELIVERED, prefix="D", shipped_at=today)
    html = login(role_users, "warehouse").get(board_url(warehouse)).content.decode()
    assert cards_in(html, SS.SHIPPED) == ["T00000"]
    assert count_in(html, SS.SHIPPED) == 1 and count_in(html, SS.TO_PICK) == 0


def test_other_warehouses_cards_stay_off_the_board(role_users, warehouse, taobao_store):
    beijing = Warehouse.objects.create(code="BJ", name="北京仓", priority=20)
    bulk_parcels(warehouse, taobao_store, 2, prefix="S")
    bulk_parcels(beijing, taobao_store, 3, prefix="J")
    client = login(role_users, "warehouse")
    assert cards_in(client.get(board_url(beijing)).content.decode(), SS.TO_PICK) == [
        "J00000",
        "J00001",
        "J00002",
    ]
    html = client.get(board_url(warehouse)).content.decode()
    assert count_in(html, SS.TO_PICK) == 2 and 'href="/fulfillment/kanban/BJ/"' in html  # the switcher


def test_filters_narrow_the_cards_and_the_counts(role_users, parcel, warehouse, manual_store):
    normal, vip, wechat = parcel(), parcel(priority=2), parcel(store=manual_store, priority=1)
    # Created after the parcels, so routing gave it to none of them; only the override does.
    sf = Carrier.objects.create(code="SF", name="顺丰速运")
    shipment_override_carrier(shipment_id=vip.pk, carrier_id=sf.pk, reason="test", actor=None)
    client = login(role_users, "warehouse")
    cases = {
        "": [normal.number, vip.number, wechat.number],
        "priority=1": [vip.number, wechat.number],
        "priority=2": [vip.number],
        "channel=manual": [wechat.number],
        "channel=taobao&priority=1": [vip.number],
        f"carrier={sf.pk}": [vip.number],
        "carrier=999999&priority=bogus": [normal.number, vip.number, wechat.number],  # invalid: ignored
    }
    for query, expected in cases.items():
        html = client.get(board_url(warehouse, query)).content.decode()
        assert sorted(cards_in(html, SS.TO_PICK)) == sorted(expected), query
        assert count_in(html, SS.TO_PICK) == len(expected), query
    counts = client.get(f"/fulfillment/kanban/{warehouse.code}/counts/?priority=2", **HTMX).content.decode()
    assert count_in(counts, SS.TO_PICK) == 1 and counts.count('hx-swap-oob="true"') == 6  # five columns and the held lane


def test_column_partial_pages_through_a_long_column(role_users, warehouse, taobao_store):
    bulk_parcels(warehouse, taobao_store, PAGE + 5, prefix="P")
    client = login(role_users, "warehouse")
    html = client.get(board_url(warehouse)).content.decode()
    assert cards_in(html, SS.TO_PICK) == [f"P{n:05d}" for n in range(PAGE)]
    assert count_in(html, SS.TO_PICK) == PAGE + 5
    more = re.search(r'hx-get="([^"]+page=2)"', html).group(1).replace("&amp;", "&")
    assert more == f"/fulfillment/kanban/{warehouse.code}/column/to_pick/?page=2"
    second = client.get(more, **HTMX).content.decode()
    assert re.findall(r'kc-number">([^<]+)<', second) == [f"P{n:05d}" for n in range(PAGE, PAGE + 5)]
    assert "page=3" not in second and "<html" not in second
    # Without JavaScript the link shows that column's page in the board layout.
    page = client.get(more).content.decode()
    assert "<html" in page and cards_in(page, SS.TO_PICK) == [f"P{n:05d}" for n in range(PAGE, PAGE + 5)]


def test_page_queries_do_not_grow_with_the_shipments(role_users, parcel, warehouse, taobao_store):
    sf = Carrier.objects.create(code="SF", name="顺丰速运")
    for _ in range(3):
        shipment_override_carrier(shipment_id=parcel().pk, carrier_id=sf.pk, reason="test")
    client = login(role_users, "warehouse")
    client.get(board_url(warehouse))  # warm up the session
    with CaptureQueriesContext(connection) as few:
        assert client.get(board_url(warehouse)).status_code == 200
    # 27 more in every column, each with a carrier, so select_related is what keeps rendering query-free.
    for status in (SS.TO_PICK, SS.PICKING, SS.PACKED, SS.EXCEPTION):
        bulk_parcels(warehouse, taobao_store, 27, status=status, prefix=f"Q{status[:2]}", carrier=sf)
    bulk_parcels(
        warehouse, taobao_store, 27, status=SS.SHIPPED, prefix="QS", carrier=sf, shipped_at=timezone.now()
    )
    with CaptureQueriesContext(connection) as many:
        response = client.get(board_url(warehouse))
    assert count_in(response.content.decode(), SS.TO_PICK) == 30
    assert len(many.captured_queries) == len(few.captured_queries), [q["sql"] for q in many.captured_queries]
    # And with a filter on: still constant (the carrier lookup of the form adds one).
    with CaptureQueriesContext(connection) as filtered:
        client.get(board_url(warehouse, f"carrier={sf.pk}&priority=1"))
    assert len(filtered.captured_queries) == len(few.captured_queries) + 1


# --- Moves ---------------------------------------------------------------------------------------


def test_move_to_picking_succeeds_and_returns_the_card(role_users, parcel):
    shipment = parcel()
    order = Order.objects.filter(shipment_lines__shipment=shipment).distinct().get()
    events_before = ShipmentEvent.objects.filter(shipment=shipment).count()
    client = login(role_users, "warehouse")
    response = client.post(f"/fulfillment/shipments/{shipment.pk}/move/", {"to": SS.PICKING}, **HTMX)
    assert response.status_code == 200
    assert response["HX-Trigger"] == "kanban-changed"
    html = response.content.decode()
    assert (
        f'data-shipment-id="{shipment.pk}"' in html
        and 'data-status="picking"' in html
        and "data-moved" in html
    )
    assert 'value="packed"' in html  # the next step's button
    shipment.refresh_from_db()
    order.refresh_from_db()
    assert shipment.status == SS.PICKING and shipment.picked_at is not None
    assert order.status == OrderStatus.IN_FULFILMENT
    event = ShipmentEvent.objects.filter(shipment=shipment).order_by("pk").last()
    assert ShipmentEvent.objects.filter(shipment=shipment).count() == events_before + 1
    assert (event.type, event.from_status, event.to_status, event.actor) == (
        "status_changed",
        SS.TO_PICK,
        SS.PICKING,
        role_users["warehouse"],
    )


def test_an_illegal_move_is_refused_with_the_reason_and_changes_nothing(role_users, parcel):
    shipment = parcel()
    order = Order.objects.filter(shipment_lines__shipment=shipment).distinct().get()
    events_before = ShipmentEvent.objects.count()
    client = login(role_users, "warehouse")
    response = client.post(f"/fulfillment/shipments/{shipment.pk}/move/", {"to": SS.SHIPPED}, **HTMX)
    assert response.status_code == 409
    assert response["X-Refusal-Code"] == "move_refused"
    assert "A parcel cannot go from “To pick” to “Shipped”." in response.content.decode()
    assert 'class="kanban-refusal"' in response.content.decode()
    shipment.refresh_from_db()
    order.refresh_from_db()
    assert (shipment.status, order.status, ShipmentEvent.objects.count()) == (
        SS.TO_PICK,
        OrderStatus.READY,
        events_before,
    )


def test_packing_is_refused_until_every_item_is_scanned(role_users, parcel):
    shipment = parcel()
    client = login(role_users, "warehouse")
    assert (
        client.post(f"/fulfillment/shipments/{shipment.pk}/move/", {"to": SS.PICKING}, **HTMX).status_code
        == 200
    )
    response = client.post(f"/fulfillment/shipments/{shipment.pk}/move/", {"to": SS.PACKED}, **HTMX)
    assert response.status_code == 409 and response["X-Refusal-Code"] == "items_missing"
    assert "Not every item is scanned" in response.content.decode()
    shipment.refresh_from_db()
    assert shipment.status == SS.PICKING


def test_exception_needs_no_javascript_and_keeps_the_reason(role_users, parcel, warehouse):
    shipment = parcel()
    client = login(role_users, "warehouse")
    response = client.post(
        f"/fulfillment/shipments/{shipment.pk}/move/",
        {"to": SS.EXCEPTION, "reason": "外箱破损", "next": board_url(warehouse, "priority=1")},
    )
    assert response.status_code == 302 and response["Location"] == board_url(warehouse, "priority=1")
    shipment.refresh_from_db()
    assert (shipment.status, shipment.exception_reason) == (SS.EXCEPTION, "外箱破损")
    page = client.get(response["Location"]).content.decode()
    assert f"Parcel {shipment.number} is now “Exception”." in page


def test_without_javascript_a_refusal_is_a_message_on_the_board(role_users, parcel, warehouse):
    shipment = parcel()
    client = login(role_users, "warehouse")
    response = client.post(
        f"/fulfillment/shipments/{shipment.pk}/move/",
        {"to": SS.PACKED, "next": "https://evil.example/"},
        follow=True,
    )
    assert response.redirect_chain[0] == ("/fulfillment/kanban/", 302)  # an outside "next" is not followed
    html = response.content.decode()
    assert "Refused: A parcel cannot go from “To pick” to “Packed”." in html
    assert cards_in(html, SS.TO_PICK) == [shipment.number]


@pytest.mark.parametrize("value", ["bogus", "", "TO_PICK", "x" * 500])
def test_a_bogus_target_is_a_400_message_not_a_500(role_users, parcel, value):
    shipment = parcel()
    response = login(role_users, "warehouse").post(
        f"/fulfillment/shipments/{shipment.pk}/move/", {"to": value}, **HTMX
    )
    assert response.status_code == 400 and response["X-Refusal-Code"] == "invalid_status"
    assert "is not a column of the kanban" in response.content.decode()
    shipment.refresh_from_db()
    assert shipment.status == SS.TO_PICK


def test_an_unknown_shipment_is_a_404_message(role_users, db):
    client = login(role_users, "warehouse")
    response = client.post("/fulfillment/shipments/987654/move/", {"to": SS.PICKING}, **HTMX)
    assert response.status_code == 404 and response["X-Refusal-Code"] == "shipment_not_found"
    assert "Shipment 987654 does not exist." in response.content.decode()
    assert client.get("/fulfillment/shipments/987654/move/").status_code == 405


def test_amount_is_the_orders_total(role_users, parcel, warehouse):
    shipment = parcel()
    assert shipment.amount == Decimal("420.90")  # 2 × 188 + 39.90 − 5 + 10 shipping
    assert "420.90 CNY" in login(role_users, "warehouse").get(board_url(warehouse)).content.decode()
