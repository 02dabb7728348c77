"""Parcel pages: the filtered list, the parcel's page (customer tracking vs internal hand-over code, routing
decisions, timeline), its buttons with their permissions and refusals, the stale-tracking list, and the
parcels on the order page."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone, translation

from fulfillment import services
from fulfillment.models import (
    Carrier,
    CarrierKind,
    RoutingDecision,
    Shipment,
    ShipmentEvent,
    ShipmentEventType,
    ShipmentStatus,
)
from orders.models import OrderStatus
from orders.services import BuyerInput
from pipeline import shipping
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def login(role_users, role: str) -> Client:
    client = Client()
    assert client.login(username=role_users[role].username, password=PASSWORD)
    client.cookies["django_language"] = "en"
    return client


def parcel_of(order) -> Shipment:
    return Shipment.objects.filter(lines__order=order).distinct().get()


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


@pytest.fixture
def yto(db) -> Carrier:
    return Carrier.objects.create(
        code="YTO",
        name="圆通",
        kind=CarrierKind.MANUAL,
        cost_first_kg=Decimal("6"),
        cost_extra_kg=Decimal("2"),
    )


@pytest.fixture
def sf(db) -> Carrier:
    return Carrier.objects.create(
        code="SF",
        name="顺丰",
        kind=CarrierKind.SF,
        cost_first_kg=Decimal("12"),
        cost_extra_kg=Decimal("4"),
        services=["standard", "express", "next_morning"],
        config={"base_url": "http://127.0.0.1:9", "partner_id": "OMS_DEMO", "checkword": "do-not-show-me"},
    )


def test_list_filters_and_bad_filters(role_users, make_order, yto):
    first = parcel_of(make_order())
    second = parcel_of(make_order(buyer=BuyerInput(id="buyer-2", name="李雷")))
    shipping.shipment_start_picking(shipment_id=second.pk)
    services.shipment_set_tracking_number(shipment_id=second.pk, tracking_number="YT2000000002")
    client = login(role_users, "customer_service")

    def listed(query: str) -> set[str]:
        response = client.get(f"/fulfillment/shipments/{query}")
        assert response.status_code == 200
        return {row["shipment"].number for row in response.context["rows"]}

    assert listed("") == {first.number, second.number}
    assert listed("?status=picking") == {second.number}
    assert listed("?status=to_pick&status=picking") == {first.number, second.number}
    assert listed(f"?order={first.order_numbers}") == {first.number}
    assert listed("?order=TB-000002") == {second.number}  # by platform order id
    assert listed("?tracking=yt 2000-0000-02") == {second.number}
    assert listed(f"?tracking={first.number}") == {first.number}
    assert listed("?warehouse=SH&carrier=YTO") == {first.number, second.number}
    # Unknown values are form errors over the whole list, never a 500.
    bad = client.get("/fulfillment/shipments/?status=lost&warehouse=NOPE&page=abc")
    assert bad.status_code == 200 and bad.context["filter"].errors
    assert login(role_users, "finance").get("/fulfillment/shipments/").status_code == 403


def test_detail_shows_customer_tracking_apart_from_the_internal_handover_code(role_users, make_order, sf):
    with translation.override("en"):  # the routing reasons are written now, in this language
        order = make_order()
    shipment = parcel_of(order)
    assert shipment.carrier == sf
    Shipment.objects.filter(pk=shipment.pk).update(
        tracking_number="SF1234567890123", handover_code="755WE-021A"
    )
    response = login(role_users, "customer_service").get(f"/fulfillment/shipments/{shipment.pk}/")
    page = response.content.decode()
    assert response.status_code == 200
    customer = page.split('data-field="customer-tracking"', 1)[1].split("</dd>", 1)[0]
    assert "SF 1234 5678 9012 3" in customer
    assert "https://www.sf-express.com/chn/sc/waybill/waybill-detail/SF1234567890123" in customer
    assert "755WE-021A" not in customer
    internal = page.split('data-field="handover-code"', 1)[1].split("</dd>", 1)[0]
    assert "755WE-021A" in internal
    assert f'href="/orders/{order.pk}/"' in page
    assert "TEA-LJ-250G" in page and "CUP-CER-350" in page
    assert "顺丰" in page and "12.00" in page  # carrier and its cost for the parcel
    assert "do-not-show-me" not in page
    # The routing decisions with their reasons: the warehouse of the order and the parcel's carrier.
    assert page.count('data-kind="warehouse"') == 1 and page.count('data-kind="carrier"') == 1
    assert "No rule matched: 上海仓 serves 上海市." in page
    # Customer service sees the page but gets no warehouse buttons.
    assert 'data-action="start"' not in page and 'data-action="override-carrier"' not in page
    assert login(role_users, "customer_service").get("/fulfillment/shipments/999999/").status_code == 404


def test_override_carrier_records_the_decision_and_the_event(role_users, make_order, yto, sf):
    shipment = parcel_of(make_order())
    assert shipment.carrier == yto  # the cheapest
    client = login(role_users, "manager")
    response = client.post(
        f"/fulfillment/shipments/{shipment.pk}/override-carrier/",
        {"carrier": sf.pk, "service": "next_morning", "reason": "VIP asked for SF"},
        follow=True,
    )
    assert response.redirect_chain == [(f"/fulfillment/shipments/{shipment.pk}/", 302)]
    assert messages_of(response) == [f"Parcel {shipment.number} now goes with 顺丰."]
    shipment.refresh_from_db()
    assert (shipment.carrier, shipment.service_level, shipment.carrier_cost) == (
        sf,
        "next_morning",
        Decimal("12.00"),
    )
    decision = RoutingDecision.objects.get(shipment=shipment, overridden=True)
    assert (decision.carrier, decision.service, decision.reason, decision.actor) == (
        sf,
        "next_morning",
        "VIP asked for SF",
        role_users["manager"],
    )
    event = ShipmentEvent.objects.get(shipment=shipment, type=ShipmentEventType.ROUTING_OVERRIDDEN)
    assert event.data == {"what": "carrier", "before": "YTO standard", "after": "SF next_morning"}
    assert event.actor == role_users["manager"]
    page = response.content.decode()
    assert 'data-overridden="1"' in page and "Overridden by u_manager" in page


def test_override_bad_input_is_a_form_error_and_changes_nothing(role_users, make_order, yto, sf):
    shipment = parcel_of(make_order())
    client = login(role_users, "manager")
    url = f"/fulfillment/shipments/{shipment.pk}/override-carrier/"
    for data in (
        {"carrier": sf.pk, "service": "standard", "reason": ""},
        {"carrier": "999999", "service": "standard", "reason": "x"},
        {"carrier": "abc", "service": "standard", "reason": "x"},
        {"carrier": sf.pk, "service": "teleport", "reason": "x"},
    ):
        response = client.post(url, data)
        assert response.status_code == 400, data
        assert 'data-error-for="' in response.content.decode()
    assert (
        client.post(
            f"/fulfillment/shipments/{shipment.pk}/override-warehouse/",
            {"warehouse": "999999", "reason": "x"},
        ).status_code
        == 400
    )
    shipment.refresh_from_db()
    assert shipment.carrier == yto and not RoutingDecision.objects.filter(overridden=True).exists()
    assert (
        login(role_users, "customer_service")
        .post(url, {"carrier": sf.pk, "service": "standard", "reason": "x"})
        .status_code
        == 403
    )
    assert (
        client.post(
            "/fulfillment/shipments/999999/override-carrier/",
            {"carrier": sf.pk, "service": "standard", "reason": "x"},
        ).status_code
        == 404
    )


def test_override_warehouse_moves_the_parcel_and_its_stock(role_users, make_order, skus):
    from inventory.models import Reservation, Warehouse
    from inventory.services import stock_receive

    beijing = Warehouse.objects.create(code="BJ", name="北京仓", provinces=["北京市"], priority=20)
    for sku in skus.values():
        stock_receive(warehouse_id=beijing.pk, sku_id=sku.pk, quantity=50, reference="opening")
    order = make_order()
    shipment = parcel_of(order)
    response = login(role_users, "manager").post(
        f"/fulfillment/shipments/{shipment.pk}/override-warehouse/",
        {"warehouse": beijing.pk, "reason": "SH is closing"},
        follow=True,
    )
    assert messages_of(response) == [f"Parcel {shipment.number} now ships from 北京仓."]
    shipment.refresh_from_db()
    assert shipment.warehouse == beijing
    assert set(
        Reservation.objects.filter(order=order, status="active").values_list("warehouse__code", flat=True)
    ) == {"BJ"}
    assert (
        RoutingDecision.objects.filter(
            order=order, kind="warehouse", overridden=True, actor=role_users["manager"]
        ).count()
        == 1
    )


def test_buttons_walk_a_parcel_to_delivered_and_refusals_say_why(role_users, make_order, yto):
    order = make_order()
    shipment = parcel_of(order)
    client = login(role_users, "warehouse")
    base = f"/fulfillment/shipments/{shipment.pk}"
    page = client.get(f"{base}/").content.decode()
    assert 'data-action="start"' in page and 'data-action="override-carrier"' in page

    refused = client.post(f"{base}/deliver/", follow=True)
    assert messages_of(refused) and messages_of(refused)[0].startswith("Refused:")
    client.post(f"{base}/start/")
    shipment.refresh_from_db()
    order.refresh_from_db()
    assert shipment.status == ShipmentStatus.PICKING and order.status == OrderStatus.IN_FULFILMENT
    assert client.post(f"{base}/exception/", {"reason": ""}).status_code == 400  # a reason is required
    client.post(f"{base}/exception/", {"reason": "box damaged"})
    shipment.refresh_from_db()
    assert shipment.status == ShipmentStatus.EXCEPTION and shipment.exception_reason == "box damaged"
    assert "box damaged" in client.get(f"{base}/").content.decode()
    client.post(f"{base}/resolve/", {"reason": "repacked"})
    shipment.refresh_from_db()
    assert shipment.status == ShipmentStatus.TO_PICK
    client.post(f"{base}/start/")
    for line in shipment.lines.select_related("sku"):
        for _unit in range(line.quantity):
            services.shipment_scan_item(shipment_id=shipment.pk, barcode=line.sku.barcode)
    shipping.shipment_pack(shipment_id=shipment.pk)
    page = client.get(f"{base}/").content.decode()
    assert 'data-action="ship"' in page and 'name="tracking_number"' in page  # manual carrier: type it
    no_number = client.post(f"{base}/ship/", {"tracking_number": ""}, follow=True)
    assert "has no tracking number" in messages_of(no_number)[0]
    bad_number = client.post(f"{base}/ship/", {"tracking_number": "YT-12"}, follow=True)
    assert "6 to 40 letters and digits" in messages_of(bad_number)[0]
    shipped = client.post(f"{base}/ship/", {"tracking_number": "YT3000000003"}, follow=True)
    assert messages_of(shipped) == [f"Parcel {shipment.number} shipped."]
    shipment.refresh_from_db()
    order.refresh_from_db()
    assert shipment.status == ShipmentStatus.SHIPPED and shipment.tracking_number == "YT3000000003"
    assert order.status == OrderStatus.SHIPPED
    client.post(f"{base}/deliver/")
    shipment.refresh_from_db()
    order.refresh_from_db()
    assert shipment.status == ShipmentStatus.DELIVERED and order.status == OrderStatus.DELIVERED
    # Customer service may look but not move parcels.
    assert login(role_users, "customer_service").post(f"{base}/start/").status_code == 403
    assert client.get(f"{base}/start/").status_code == 405


def test_waybill_for_a_manual_carrier_or_a_broken_account_is_refused_not_a_500(role_users, make_order, yto):
    shipment = parcel_of(make_order())
    client = login(role_users, "warehouse")
    manual = client.post(f"/fulfillment/shipments/{shipment.pk}/waybill/", follow=True)
    assert "has no carrier with an API" in messages_of(manual)[0]
    broken = Carrier.objects.create(
        code="SF", name="顺丰", kind=CarrierKind.SF, config={"base_url": "http://x"}
    )
    Shipment.objects.filter(pk=shipment.pk).update(carrier=broken)
    response = client.post(f"/fulfillment/shipments/{shipment.pk}/waybill/", follow=True)
    assert response.status_code == 200 and messages_of(response)[0].startswith("Refused:")
    shipment.refresh_from_db()
    assert shipment.tracking_number == ""
    typed = client.post(
        f"/fulfillment/shipments/{shipment.pk}/tracking/",
        {"tracking_number": "sf 1111 2222 3333 4"},
        follow=True,
    )
    assert messages_of(typed) == ["Tracking number SF1111222233334 saved."]


def test_split_merge_and_unmerge_from_the_page(role_users, make_order, yto):
    first_order = make_order()
    second_order = make_order()  # same buyer and address: merged into the first parcel by rule
    merged = parcel_of(first_order)
    assert parcel_of(second_order) == merged
    client = login(role_users, "manager")
    base = f"/fulfillment/shipments/{merged.pk}"
    assert 'data-action="unmerge"' in client.get(f"{base}/").content.decode()
    client.post(f"{base}/unmerge/", {"reason": "ship apart"})
    other = parcel_of(second_order)
    assert other != merged and parcel_of(first_order) == merged

    page = client.get(f"{base}/").content.decode()
    assert f'name="shipments" value="{other.pk}"' in page
    assert client.post(f"{base}/merge/", {"shipments": ["999999"]}).status_code == 400
    assert client.post(f"{base}/merge/", {"shipments": ["abc"]}).status_code == 400
    assert client.post(f"{base}/merge/", {}).status_code == 400
    response = client.post(
        f"{base}/merge/", {"shipments": [str(other.pk)], "reason": "together"}, follow=True
    )
    assert messages_of(response) == [f"Parcels merged into {merged.number}."]
    other.refresh_from_db()
    assert other.status == ShipmentStatus.CANCELLED and parcel_of(second_order) == merged

    tea_line = merged.lines.get(order=first_order, sku__code="TEA-LJ-250G")
    for bad in ("abc", "-1", "99", "1.5"):
        response = client.post(f"{base}/split/", {f"qty_{tea_line.pk}": bad})
        assert response.status_code == 400, bad
        assert f'data-error-for="qty_{tea_line.pk}"' in response.content.decode()
    everything = {f"qty_{line.pk}": line.quantity for line in merged.lines.all()}
    refused = client.post(f"{base}/split/", everything, follow=True)
    assert "must move some units and leave some behind" in messages_of(refused)[0]
    split = client.post(f"{base}/split/", {f"qty_{tea_line.pk}": "1", "reason": "too heavy"}, follow=True)
    new = Shipment.objects.exclude(pk__in=[merged.pk, other.pk]).get()
    assert messages_of(split) == [f"Split: the units moved to the new parcel {new.number}."]
    assert [(line.sku.code, line.quantity) for line in new.lines.select_related("sku")] == [
        ("TEA-LJ-250G", 1)
    ]
    tea_line.refresh_from_db()
    assert tea_line.quantity == 1
    assert login(role_users, "customer_service").post(f"{base}/split/", {}).status_code == 403


def test_stale_list_shows_days_since_the_last_update(role_users, make_order, yto):
    shipment = parcel_of(make_order())
    shipping.shipment_start_picking(shipment_id=shipment.pk)
    for line in shipment.lines.select_related("sku"):
        for _unit in range(line.quantity):
            services.shipment_scan_item(shipment_id=shipment.pk, barcode=line.sku.barcode)
    shipping.shipment_pack(shipment_id=shipment.pk)
    shipping.shipment_ship(shipment_id=shipment.pk, tracking_number="YT4000000004")
    quiet = parcel_of(make_order(buyer=BuyerInput(id="buyer-9", name="韩梅梅")))
    now = timezone.now()
    Shipment.objects.filter(pk=shipment.pk).update(
        shipped_at=now - timedelta(days=12),
        last_tracking_at=now - timedelta(days=9, hours=1),
        tracking_stale_since=now - timedelta(days=9, hours=1),
    )
    response = login(role_users, "customer_service").get("/fulfillment/shipments/stale/")
    assert response.status_code == 200
    rows = response.context["rows"]
    assert [(row["shipment"].number, row["days"]) for row in rows] == [(shipment.number, 9)]
    page = response.content.decode()
    assert 'data-days="9"' in page and quiet.number not in page
    assert login(role_users, "finance").get("/fulfillment/shipments/stale/").status_code == 403


def test_order_page_lists_its_parcels_and_no_longer_offers_the_tracking_form(role_users, make_order, yto):
    order = make_order()
    shipment = parcel_of(order)
    shipping.shipment_start_picking(shipment_id=shipment.pk)
    services.shipment_set_tracking_number(shipment_id=shipment.pk, tracking_number="YT5000000005")
    page = login(role_users, "manager").get(f"/orders/{order.pk}/").content.decode()
    parcels = page.split('data-section="parcels"', 1)[1].split("</section>", 1)[0]
    assert f'href="/fulfillment/shipments/{shipment.pk}/"' in parcels
    assert "SH" in parcels and "圆通" in parcels and "YT 5000 0000 05" in parcels
    assert 'data-transition="shipment"' not in page  # ships through its parcel now
