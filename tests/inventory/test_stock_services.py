"""Stock services: receipts, adjustments, stock takes, reservations, releases, shipments, bundles, reconcile."""

from decimal import Decimal

import pytest
from django.db.models import Sum

from inventory import services as stock
from inventory.exceptions import (
    SKUNotFound,
    StockConflict,
    StockInvalid,
    WarehouseInactive,
    WarehouseNotFound,
)
from inventory.models import (
    SKU,
    BundleComponent,
    MovementKind,
    Reservation,
    ReservationStatus,
    StockLevel,
    StockMovement,
    Warehouse,
)
from orders import services
from orders.models import OrderEventType, OrderStatus
from orders.services import LineInput
from pipeline import orders as flows
from pipeline import stock as pipeline_stock

pytestmark = pytest.mark.django_db


def level(warehouse, sku) -> tuple[int, int]:
    row = StockLevel.objects.get(warehouse=warehouse, sku=sku)
    return row.on_hand, row.reserved


def ledger(warehouse, sku) -> tuple[int, int]:
    sums = StockMovement.objects.filter(warehouse=warehouse, sku=sku).aggregate(
        on_hand=Sum("on_hand_delta"), reserved=Sum("reserved_delta"))
    return sums["on_hand"] or 0, sums["reserved"] or 0


def assert_counters_equal_ledger():
    for row in StockLevel.objects.all():
        assert (row.on_hand, row.reserved) == ledger(row.warehouse, row.sku), row
        active = Reservation.objects.filter(warehouse=row.warehouse, sku=row.sku,
                                            status=ReservationStatus.ACTIVE).aggregate(q=Sum("quantity"))["q"] or 0
        assert active == row.reserved, row


@pytest.fixture
def tea(skus):
    return skus["TEA-LJ-250G"]


def test_receive_adds_on_hand_with_a_ledger_row(warehouse, tea):
    stock.stock_receive(warehouse_id=warehouse.pk, sku_id=tea.pk, quantity=25, reference="PO-1", note="到货")
    assert level(warehouse, tea) == (1025, 0)
    movement = StockMovement.objects.filter(sku=tea).order_by("-id").first()
    assert (movement.kind, movement.on_hand_delta, movement.reference) == (MovementKind.RECEIPT, 25, "PO-1")
    assert_counters_equal_ledger()


@pytest.mark.parametrize("call, error", [
    (lambda w, s: stock.stock_receive(warehouse_id=w.pk, sku_id=s.pk, quantity=0), StockInvalid),
    (lambda w, s: stock.stock_receive(warehouse_id=w.pk, sku_id=s.pk, quantity=-5), StockInvalid),
    (lambda w, s: stock.stock_receive(warehouse_id=w.pk, sku_id=s.pk, quantity=1.5), StockInvalid),
    (lambda w, s: stock.stock_receive(warehouse_id=w.pk, sku_id=999999, quantity=1), SKUNotFound),
    (lambda w, s: stock.stock_receive(warehouse_id=999999, sku_id=s.pk, quantity=1), WarehouseNotFound),
    (lambda w, s: stock.stock_adjust(warehouse_id=w.pk, sku_id=s.pk, delta=0, reason="x"), StockInvalid),
    (lambda w, s: stock.stock_adjust(warehouse_id=w.pk, sku_id=s.pk, delta=-1, reason=" "), StockInvalid),
    (lambda w, s: stock.stock_take(warehouse_id=w.pk, sku_id=s.pk, counted=-1), StockInvalid),
])
def test_bad_input_is_refused_and_changes_nothing(warehouse, tea, call, error):
    before = (level(warehouse, tea), StockMovement.objects.count())
    with pytest.raises(error):
        call(warehouse, tea)
    assert (level(warehouse, tea), StockMovement.objects.count()) == before


def test_receipt_to_inactive_warehouse_is_refused(warehouse, tea):
    closed = Warehouse.objects.create(code="OLD", name="旧仓", active=False)
    with pytest.raises(WarehouseInactive):
        stock.stock_receive(warehouse_id=closed.pk, sku_id=tea.pk, quantity=5)
    assert not StockLevel.objects.filter(warehouse=closed).exists()


def test_stock_take_below_reserved_is_refused(warehouse, tea, make_order):
    make_order(lines=[LineInput(sku_code="TEA-LJ-250G", quantity=600, unit_price=Decimal("1"))])
    assert level(warehouse, tea) == (1000, 600)
    with pytest.raises(StockConflict):
        stock.stock_take(warehouse_id=warehouse.pk, sku_id=tea.pk, counted=599)
    assert level(warehouse, tea) == (1000, 600)
    stock.stock_take(warehouse_id=warehouse.pk, sku_id=tea.pk, counted=700)
    assert level(warehouse, tea) == (700, 600)
    assert StockMovement.objects.filter(sku=tea, kind=MovementKind.STOCK_TAKE).get().on_hand_delta == -300
    with pytest.raises(StockConflict):
        stock.stock_adjust(warehouse_id=warehouse.pk, sku_id=tea.pk, delta=-101, reason="破损")
    stock.stock_adjust(warehouse_id=warehouse.pk, sku_id=tea.pk, delta=-100, reason="破损")
    assert level(warehouse, tea) == (600, 600)
    assert_counters_equal_ledger()


def test_paid_order_reserves_each_line_and_the_ledger_shows_it(warehouse, skus, make_order):
    order = make_order()
    assert order.status == OrderStatus.READY
    rows = Reservation.objects.filter(order=order).order_by("order_line__line_no")
    assert [(r.sku.code, r.quantity, r.status) for r in rows] == [
        ("TEA-LJ-250G", 2, "active"), ("CUP-CER-350", 1, "active")]
    assert level(warehouse, skus["TEA-LJ-250G"]) == (1000, 2)
    assert order.events.filter(type=OrderEventType.STOCK_RESERVED).count() == 1
    assert_counters_equal_ledger()


def test_cancel_releases_stock_and_the_ledger_shows_it(warehouse, skus, make_order):
    order = make_order()
    flows.order_cancel(order_id=order.pk, reason="买家取消")
    assert level(warehouse, skus["TEA-LJ-250G"]) == (1000, 0)
    releases = StockMovement.objects.filter(order=order, kind=MovementKind.RELEASE)
    assert sorted((m.sku.code, m.reserved_delta) for m in releases) == [("CUP-CER-350", -1), ("TEA-LJ-250G", -2)]
    assert set(Reservation.objects.filter(order=order).values_list("status", flat=True)) == {"released"}
    assert order.events.filter(type=OrderEventType.STOCK_RELEASED).count() == 1
    # Releasing twice changes nothing.
    assert stock.stock_release_for_order(order_id=order.pk) == 0
    assert_counters_equal_ledger()


def test_ship_takes_stock_out_of_on_hand_and_reserved(warehouse, skus, make_order):
    order = make_order()
    services.order_start_fulfilment(order_id=order.pk)
    flows.order_ship(order_id=order.pk)
    assert level(warehouse, skus["TEA-LJ-250G"]) == (998, 0)
    assert level(warehouse, skus["CUP-CER-350"]) == (999, 0)
    assert set(Reservation.objects.filter(order=order).values_list("status", flat=True)) == {"shipped"}
    assert_counters_equal_ledger()


def test_short_order_awaits_stock_with_shortages_then_goes_ready_on_receipt(warehouse, skus, make_order,
                                                                          django_capture_on_commit_callbacks,
                                                                          celery_eager):
    order = make_order(lines=[LineInput(sku_code="TEA-LJ-250G", quantity=1200, unit_price=Decimal("1"))])
    assert order.status == OrderStatus.AWAITING_STOCK
    assert order.stock_shortages == [{"sku": "TEA-LJ-250G", "needed": 1200, "available": 1000, "short": 200}]
    assert level(warehouse, skus["TEA-LJ-250G"]) == (1000, 0)  # nothing held while waiting
    with django_capture_on_commit_callbacks(execute=True):
        pipeline_stock.stock_receive(warehouse_id=warehouse.pk, sku_id=skus["TEA-LJ-250G"].pk, quantity=199)
    order.refresh_from_db()
    assert order.status == OrderStatus.AWAITING_STOCK and order.stock_shortages[0]["short"] == 1
    with django_capture_on_commit_callbacks(execute=True):
        pipeline_stock.stock_receive(warehouse_id=warehouse.pk, sku_id=skus["TEA-LJ-250G"].pk, quantity=1)
    order.refresh_from_db()
    assert order.status == OrderStatus.READY and order.stock_shortages == []
    assert level(warehouse, skus["TEA-LJ-250G"]) == (1200, 1200)
    assert_counters_equal_ledger()


def test_retry_serves_highest_priority_then_oldest_first(warehouse, skus, make_order):
    tea = skus["TEA-LJ-250G"]
    stock.stock_take(warehouse_id=warehouse.pk, sku_id=tea.pk, counted=0)
    one = [LineInput(sku_code="TEA-LJ-250G", quantity=1, unit_price=Decimal("1"))]
    old_normal = make_order(lines=one)
    new_vip = make_order(lines=one, priority=2)
    newer_normal = make_order(lines=one)
    assert {o.status for o in (old_normal, new_vip, newer_normal)} == {OrderStatus.AWAITING_STOCK}
    stock.stock_receive(warehouse_id=warehouse.pk, sku_id=tea.pk, quantity=2)
    flows.orders_retry_awaiting_stock(sku_ids=[tea.pk])
    statuses = {o.pk: o.status for o in [old_normal, new_vip, newer_normal] if not o.refresh_from_db()}
    assert statuses == {new_vip.pk: "ready", old_normal.pk: "ready", newer_normal.pk: "awaiting_stock"}


def test_warehouse_choice_prefers_province_then_priority(skus, make_order):
    tea = skus["TEA-LJ-250G"]
    guangzhou = Warehouse.objects.create(code="GZ", name="广州仓", provinces=["广东省"], priority=20)
    stock.stock_receive(warehouse_id=guangzhou.pk, sku_id=tea.pk, quantity=10)
    line = [LineInput(sku_code="TEA-LJ-250G", quantity=1, unit_price=Decimal("1"))]
    to_shanghai = make_order(lines=line)
    from orders.services import ReceiverInput
    to_guangdong = make_order(lines=line, receiver=ReceiverInput(name="李娜", phone="13800138000", province="广东省",
                                                                city="深圳市", address="科技园 1 栋"))
    assert Reservation.objects.get(order=to_shanghai).warehouse.code == "SH"
    assert Reservation.objects.get(order=to_guangdong).warehouse.code == "GZ"


def test_all_or_nothing_per_warehouse_and_split_when_allowed(warehouse, skus, make_order, taobao_store):
    tea, cup = skus["TEA-LJ-250G"], skus["CUP-CER-350"]
    guangzhou = Warehouse.objects.create(code="GZ", name="广州仓", priority=20)
    stock.stock_take(warehouse_id=warehouse.pk, sku_id=cup.pk, counted=0)  # SH: tea only
    stock.stock_receive(warehouse_id=guangzhou.pk, sku_id=cup.pk, quantity=5)  # GZ: cups only
    lines = [LineInput(sku_code="TEA-LJ-250G", quantity=1, unit_price=Decimal("1")),
             LineInput(sku_code="CUP-CER-350", quantity=2, unit_price=Decimal("1"))]
    waiting = make_order(lines=lines)
    assert waiting.status == OrderStatus.AWAITING_STOCK
    assert level(warehouse, tea)[1] == 0 and level(guangzhou, cup)[1] == 0  # nothing half-reserved
    taobao_store.allow_split = True
    taobao_store.save()
    split = make_order(lines=lines)
    assert split.status == OrderStatus.READY
    assert sorted((r.warehouse.code, r.sku.code, r.quantity) for r in Reservation.objects.filter(order=split)) == [
        ("GZ", "CUP-CER-350", 2), ("SH", "TEA-LJ-250G", 1)]
    assert_counters_equal_ledger()


def test_bundle_reserves_its_components(warehouse, skus, make_order):
    kit = SKU.objects.create(code="KIT-TEA-CUP", name="茶杯礼盒", list_price=Decimal("199"))
    BundleComponent.objects.create(bundle=kit, component=skus["TEA-LJ-250G"], quantity=1)
    BundleComponent.objects.create(bundle=kit, component=skus["CUP-CER-350"], quantity=2)
    order = make_order(lines=[LineInput(sku_code="KIT-TEA-CUP", quantity=3, unit_price=Decimal("199"))])
    assert order.status == OrderStatus.READY
    assert sorted((r.sku.code, r.quantity) for r in Reservation.objects.filter(order=order)) == [
        ("CUP-CER-350", 6), ("TEA-LJ-250G", 3)]
    with pytest.raises(StockInvalid):
        stock.stock_receive(warehouse_id=warehouse.pk, sku_id=kit.pk, quantity=1)


def test_safety_stock_is_kept_back(warehouse, skus, make_order):
    tea = skus["TEA-LJ-250G"]
    stock.sku_set_safety_stock(sku_id=tea.pk, safety_stock=995)
    order = make_order(lines=[LineInput(sku_code="TEA-LJ-250G", quantity=6, unit_price=Decimal("1"))])
    assert order.status == OrderStatus.AWAITING_STOCK
    assert order.stock_shortages == [{"sku": "TEA-LJ-250G", "needed": 6, "available": 5, "short": 1}]


def test_reserve_on_creation_and_unpaid_timeout_cancels_and_releases(warehouse, skus, make_order, taobao_store):
    from datetime import timedelta

    from django.utils import timezone
    taobao_store.reserve_on = "creation"
    taobao_store.unpaid_timeout_minutes = 30
    taobao_store.save()
    order = make_order(paid=False)
    assert order.status == OrderStatus.PENDING_PAYMENT
    assert level(warehouse, skus["TEA-LJ-250G"]) == (1000, 2)
    paid_later = flows.order_pay(order_id=order.pk)
    assert paid_later.status == OrderStatus.READY
    assert Reservation.objects.filter(order=order).count() == 2  # not reserved twice
    unpaid = make_order(paid=False)
    assert flows.orders_cancel_expired_unpaid(now=timezone.now() + timedelta(minutes=29)) == 0
    assert flows.orders_cancel_expired_unpaid(now=timezone.now() + timedelta(minutes=31)) == 1
    unpaid.refresh_from_db()
    assert unpaid.status == OrderStatus.CANCELLED
    assert level(warehouse, skus["TEA-LJ-250G"]) == (1000, 2)  # only the paid order holds stock
    assert_counters_equal_ledger()


def test_stale_reservations_are_released_by_the_sweeper(warehouse, skus, make_order):
    order = make_order()
    # Simulate a cancel that lost its inline release (e.g. an older code path): the sweeper catches it.
    from orders.models import Order
    Order.objects.filter(pk=order.pk).update(status=OrderStatus.CANCELLED)
    assert flows.orders_release_stale_reservations() == 3
    assert level(warehouse, skus["TEA-LJ-250G"]) == (1000, 0)
    assert flows.orders_release_stale_reservations() == 0


def test_reconcile_reports_and_repairs_drift(warehouse, skus, make_order):
    make_order()
    assert stock.stock_reconcile() == []
    tea = skus["TEA-LJ-250G"]
    StockLevel.objects.filter(warehouse=warehouse, sku=tea).update(on_hand=990, reserved=5)  # corrupt counters
    drifts = stock.stock_reconcile()
    assert [(d.sku_id, d.on_hand, d.ledger_on_hand, d.reserved, d.ledger_reserved) for d in drifts] == [
        (tea.pk, 990, 1000, 5, 2)]
    assert level(warehouse, tea) == (990, 5)  # reporting alone changes nothing
    stock.stock_reconcile(repair=True)
    assert level(warehouse, tea) == (1000, 2)
    assert StockMovement.objects.filter(kind=MovementKind.RECONCILE, sku=tea).count() == 1
    assert stock.stock_reconcile() == []
    assert_counters_equal_ledger()


def test_bundle_definitions_that_strand_stock_or_nest_are_refused(warehouse, skus):
    kit = SKU.objects.create(code="KIT-1", name="礼盒", list_price=Decimal("1"))
    BundleComponent.objects.create(bundle=kit, component=skus["CUP-CER-350"], quantity=1)
    tea, cup = skus["TEA-LJ-250G"], skus["CUP-CER-350"]
    with pytest.raises(StockInvalid):  # tea holds stock
        stock.bundle_components_check(bundle_id=tea.pk, component_ids=[cup.pk])
    empty = SKU.objects.create(code="KIT-2", name="礼盒2", list_price=Decimal("1"))
    with pytest.raises(StockInvalid):  # a bundle inside a bundle
        stock.bundle_components_check(bundle_id=empty.pk, component_ids=[kit.pk])
    with pytest.raises(StockInvalid):
        stock.bundle_components_check(bundle_id=empty.pk, component_ids=[empty.pk])
    stock.bundle_components_check(bundle_id=empty.pk, component_ids=[tea.pk, cup.pk])  # fine


def test_quantities_beyond_the_cap_are_refused(warehouse, tea):
    with pytest.raises(StockInvalid):
        stock.stock_receive(warehouse_id=warehouse.pk, sku_id=tea.pk, quantity=10**10)
    with pytest.raises(StockInvalid):
        stock.stock_take(warehouse_id=warehouse.pk, sku_id=tea.pk, counted=10**10)
    assert level(warehouse, tea) == (1000, 0)


def test_lowering_safety_stock_retries_waiting_orders(warehouse, skus, make_order, celery_eager,
                                                      django_capture_on_commit_callbacks):
    tea = skus["TEA-LJ-250G"]
    stock.sku_set_safety_stock(sku_id=tea.pk, safety_stock=999)
    order = make_order(lines=[LineInput(sku_code="TEA-LJ-250G", quantity=5, unit_price=Decimal("1"))])
    assert order.status == OrderStatus.AWAITING_STOCK
    with django_capture_on_commit_callbacks(execute=True):
        pipeline_stock.sku_set_safety_stock(sku_id=tea.pk, safety_stock=10)
    order.refresh_from_db()
    assert order.status == OrderStatus.READY
    with pytest.raises(SKUNotFound):
        stock.sku_set_safety_stock(sku_id=999999, safety_stock=1)
