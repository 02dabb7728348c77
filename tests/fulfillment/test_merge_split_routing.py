"""Merge and split keep stock and lines exact; routing decisions carry their reason; overrides are events;
the dry run shows what a rule change would do."""

import pytest
from django.utils import translation

from fulfillment import services
from fulfillment.exceptions import MoveRefused, RoutingInvalid
from fulfillment.models import (
    Carrier,
    CarrierKind,
    CarrierRule,
    DecisionKind,
    RoutingDecision,
    Shipment,
    ShipmentEventType,
    ShipmentStatus,
    WarehouseRule,
)
from fulfillment.routing import routing_dry_run
from inventory.models import Reservation, StockLevel
from inventory.services import stock_reconcile
from orders.models import Order, OrderLine, OrderStatus
from orders.services import ReceiverInput
from pipeline import shipping
from tests.fulfillment.helpers import parcel_of, ship_parcel, stock_picture

pytestmark = pytest.mark.django_db


def lines_exact(*orders) -> None:
    """Every unit of every order is in exactly one open or shipped parcel, no more, no less."""
    for order in orders:
        for line in OrderLine.objects.filter(order=order):
            in_parcels = sum(line.shipment_lines.exclude(shipment__status=ShipmentStatus.CANCELLED)
                             .values_list("quantity", flat=True))
            assert in_parcels == line.quantity, (order.number, line.sku_code, in_parcels)


def test_orders_of_the_same_buyer_and_address_merge_by_rule_into_one_parcel(make_order):
    first, second = make_order(), make_order()
    assert parcel_of(first) == parcel_of(second)
    parcel = parcel_of(first)
    assert parcel.order_numbers == f"{first.number}, {second.number}"
    assert parcel.lines.count() == 4 and parcel.amount == first.total_amount + second.total_amount
    assert parcel.events.filter(type=ShipmentEventType.MERGED).count() == 1
    lines_exact(first, second)


def test_a_different_address_is_not_merged(make_order):
    first = make_order()
    other = make_order(receiver=ReceiverInput(name="王小贝", phone="13312343069", province="上海市", city="上海市",
                                              district="徐汇区", address="漕溪北路 1 号"))
    assert parcel_of(first) != parcel_of(other)


def test_merge_and_unmerge_by_hand_keep_stock_and_lines_exact(make_order, taobao_store):
    taobao_store.merge_shipments = False
    taobao_store.save()
    first, second = make_order(), make_order()
    a, b = parcel_of(first), parcel_of(second)
    assert a != b
    before = stock_picture()
    merged = services.shipments_merge(shipment_ids=[a.pk, b.pk], reason="same buyer")
    assert merged.pk == a.pk and Shipment.objects.get(pk=b.pk).status == ShipmentStatus.CANCELLED
    assert set(merged.lines.values_list("order_id", flat=True)) == {first.pk, second.pk}
    assert stock_picture() == before
    lines_exact(first, second)
    created = services.shipment_unmerge(shipment_id=merged.pk)
    assert len(created) == 1 and set(created[0].lines.values_list("order_id", flat=True)) == {second.pk}
    assert set(Shipment.objects.get(pk=a.pk).lines.values_list("order_id", flat=True)) == {first.pk}
    assert stock_picture() == before
    lines_exact(first, second)


def test_merge_refuses_parcels_already_being_picked(make_order, taobao_store):
    taobao_store.merge_shipments = False
    taobao_store.save()
    a, b = parcel_of(make_order()), parcel_of(make_order())
    shipping.shipment_start_picking(shipment_id=b.pk)
    with pytest.raises(MoveRefused):
        services.shipments_merge(shipment_ids=[a.pk, b.pk])
    assert Shipment.objects.get(pk=a.pk).lines.count() == 2


def test_split_by_hand_keeps_stock_exact_and_each_part_ships_on_its_own(make_order, manual_carrier):
    order = make_order()
    parcel = parcel_of(order)
    tea = parcel.lines.get(sku__code="TEA-LJ-250G")
    before = stock_picture()
    new = services.shipment_split(shipment_id=parcel.pk, quantities={tea.pk: 1}, reason="one box is enough")
    assert stock_picture() == before  # counters, ledger and reserved units untouched
    assert Reservation.objects.filter(order=order, status="active").count() == 3  # the tea reservation is in two
    lines_exact(order)
    assert {(line.sku.code, line.quantity) for line in new.lines.select_related("sku")} == {("TEA-LJ-250G", 1)}
    ship_parcel(new, tracking="YT2000000001")
    assert Order.objects.get(pk=order.pk).status == OrderStatus.PARTIALLY_SHIPPED
    ship_parcel(Shipment.objects.get(pk=parcel.pk), tracking="YT2000000002")
    assert Order.objects.get(pk=order.pk).status == OrderStatus.SHIPPED
    level = StockLevel.objects.get(sku__code="TEA-LJ-250G")
    assert (level.on_hand, level.reserved) == (998, 0)
    assert stock_reconcile() == []


def test_a_split_must_move_some_units_and_leave_some(make_order):
    parcel = parcel_of(make_order())
    all_units = {line.pk: line.quantity for line in parcel.lines.all()}
    with pytest.raises(RoutingInvalid):
        services.shipment_split(shipment_id=parcel.pk, quantities=all_units)
    with pytest.raises(RoutingInvalid):
        services.shipment_split(shipment_id=parcel.pk, quantities={next(iter(all_units)): 99})


# --- Routing ----------------------------------------------------------------------------------------

def test_a_warehouse_rule_routes_the_order_and_the_decision_names_it(make_order, beijing):
    WarehouseRule.objects.create(name="华东 VIP 走北京", position=1, priorities=[2], warehouse=beijing)
    vip = make_order(priority=2)
    normal = make_order(platform_order_id="TB-N")
    assert parcel_of(vip).warehouse == beijing and parcel_of(normal).warehouse.code == "SH"
    decision = RoutingDecision.objects.get(order=vip, kind=DecisionKind.WAREHOUSE)
    assert decision.rule_name == "华东 VIP 走北京" and "华东 VIP 走北京" in decision.reason
    assert RoutingDecision.objects.get(order=normal, kind=DecisionKind.WAREHOUSE).rule_name == ""


def test_stock_has_the_last_word_and_the_reason_says_so(make_order, beijing, skus):
    WarehouseRule.objects.create(name="all to Beijing", position=1, warehouse=beijing)
    StockLevel.objects.filter(warehouse=beijing, sku=skus["TEA-LJ-250G"]).update(on_hand=0)  # no tea in Beijing
    order = make_order()
    assert parcel_of(order).warehouse.code == "SH"
    decision = RoutingDecision.objects.get(order=order, kind=DecisionKind.WAREHOUSE)
    assert decision.preferred_warehouse == beijing and "北京仓" in decision.reason and "上海仓" in decision.reason


def test_carrier_rules_and_the_cheapest_fallback(make_order, manual_carrier):
    sf = Carrier.objects.create(code="SF", name="顺丰", kind=CarrierKind.MANUAL, services=["standard", "next_morning"],
                                cost_first_kg=12, cost_extra_kg=2)
    CarrierRule.objects.create(name="VIP 顺丰次晨", position=1, priorities=[2], carrier=sf, service="next_morning")
    vip = make_order(priority=2)
    normal = make_order(platform_order_id="TB-N2", receiver=ReceiverInput(name="韩梅梅", phone="13900001111",
                                                                           province="上海市", address="淮海路 1 号"))
    assert (parcel_of(vip).carrier, parcel_of(vip).service_level) == (sf, "next_morning")
    assert "VIP 顺丰次晨" in RoutingDecision.objects.get(order=vip, kind=DecisionKind.CARRIER).reason
    assert parcel_of(normal).carrier == manual_carrier  # the cheaper one when no rule matches


def test_an_override_is_recorded_as_a_decision_and_an_event(make_order, manual_carrier, role_users):
    sf = Carrier.objects.create(code="SF", name="顺丰", kind=CarrierKind.MANUAL, cost_first_kg=20)
    parcel = parcel_of(make_order())
    with pytest.raises(RoutingInvalid):
        services.shipment_override_carrier(shipment_id=parcel.pk, carrier_id=sf.pk, reason=" ")
    services.shipment_override_carrier(shipment_id=parcel.pk, carrier_id=sf.pk, reason="buyer paid for SF",
                                       actor=role_users["manager"])
    parcel.refresh_from_db()
    assert parcel.carrier == sf
    decision = RoutingDecision.objects.filter(shipment=parcel, kind=DecisionKind.CARRIER).latest("id")
    assert decision.overridden and decision.actor == role_users["manager"] and decision.reason == "buyer paid for SF"
    event = parcel.events.get(type=ShipmentEventType.ROUTING_OVERRIDDEN)
    assert event.data == {"what": "carrier", "before": "YTO standard", "after": "SF standard"}
    assert event.actor == role_users["manager"]


def test_a_warehouse_override_moves_the_reservation_and_keeps_the_ledger_true(make_order, beijing, skus):
    order = make_order()
    parcel = parcel_of(order)
    services.shipment_override_warehouse(shipment_id=parcel.pk, warehouse_id=beijing.pk, reason="SH is flooded")
    parcel.refresh_from_db()
    assert parcel.warehouse == beijing
    assert StockLevel.objects.get(warehouse__code="SH", sku__code="TEA-LJ-250G").reserved == 0
    assert StockLevel.objects.get(warehouse=beijing, sku__code="TEA-LJ-250G").reserved == 2
    assert set(parcel.lines.values_list("reservation__warehouse_id", flat=True)) == {beijing.pk}
    assert stock_reconcile() == []
    assert parcel.events.filter(type=ShipmentEventType.ROUTING_OVERRIDDEN, data__what="warehouse").exists()
    # Short in the target: refused and nothing moves.
    StockLevel.objects.filter(warehouse__code="SH", sku=skus["TEA-LJ-250G"]).update(on_hand=1)
    with pytest.raises(RoutingInvalid) as short:
        services.shipment_override_warehouse(shipment_id=parcel.pk, warehouse_id=StockLevel.objects.filter(
            warehouse__code="SH").first().warehouse_id, reason="back")
    assert short.value.code == "warehouse_short"
    assert Shipment.objects.get(pk=parcel.pk).warehouse == beijing


def test_the_dry_run_shows_the_difference_after_a_rule_change(make_order, beijing):
    orders = [make_order(platform_order_id=f"TB-D{i}") for i in range(3)]
    assert not any(row.differs for row in routing_dry_run(limit=10))
    WarehouseRule.objects.create(name="上海 → 北京", position=1, provinces=["上海市"], warehouse=beijing)
    rows = {row.order_number: row for row in routing_dry_run(limit=10)}
    for order in orders:
        row = rows[order.number]
        assert row.differs and row.decided_warehouse == "SH" and row.would_warehouse == "BJ"
        assert row.would_warehouse_rule == "上海 → 北京"


def test_bad_split_quantities_are_a_clear_error(make_order):
    parcel = parcel_of(make_order())
    with pytest.raises(RoutingInvalid) as bad:
        services.shipment_split(shipment_id=parcel.pk, quantities={"x": "one"})
    assert bad.value.code == "split_invalid"


def test_the_dry_run_does_not_count_a_hand_override_as_a_rule_difference(make_order, beijing):
    order = make_order()
    services.shipment_override_warehouse(shipment_id=parcel_of(order).pk, warehouse_id=beijing.pk, reason="flood")
    row = next(r for r in routing_dry_run(limit=10) if r.order_number == order.number)
    assert not row.differs and row.decided_first_choice == "SH"


def test_an_order_split_across_warehouses_ships_in_one_parcel_per_warehouse(make_order, taobao_store, beijing,
                                                                             skus, manual_carrier):
    taobao_store.allow_split = True
    taobao_store.save()
    # Shanghai has no cups left, Beijing no tea: no single warehouse holds every line.
    StockLevel.objects.filter(warehouse__code="SH", sku=skus["CUP-CER-350"]).update(on_hand=0)
    StockLevel.objects.filter(warehouse=beijing, sku=skus["TEA-LJ-250G"]).update(on_hand=0)
    with translation.override("en"):  # the routing reason is written now, in this language
        order = make_order()
    parcels = {p.warehouse.code: p for p in Shipment.objects.filter(lines__order=order).distinct()}
    assert set(parcels) == {"SH", "BJ"}
    assert {line.sku.code for line in parcels["SH"].lines.all()} == {"TEA-LJ-250G"}
    assert {line.sku.code for line in parcels["BJ"].lines.all()} == {"CUP-CER-350"}
    lines_exact(order)
    decision = RoutingDecision.objects.get(order=order, kind=DecisionKind.WAREHOUSE)
    assert sorted(decision.warehouse_ids) == sorted(p.warehouse_id for p in parcels.values())
    assert "No single warehouse holds every line: split across 上海仓, 北京仓." in decision.reason
    ship_parcel(parcels["BJ"], tracking="YT3000000001")
    assert Order.objects.get(pk=order.pk).status == OrderStatus.PARTIALLY_SHIPPED
    ship_parcel(parcels["SH"], tracking="YT3000000002")
    assert Order.objects.get(pk=order.pk).status == OrderStatus.SHIPPED
