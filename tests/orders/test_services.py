"""The order services: creation, amounts, every transition, holds, events and refusals."""

from decimal import Decimal

import pytest

from finance.models import PaymentSnapshot
from orders import services
from orders.exceptions import HoldConflict, OrderInvalid, TransitionNotAllowed
from orders.models import HoldReason, Order, OrderEvent, OrderEventType, OrderStatus
from orders.services import LineInput
from pipeline import orders as flows
from tests.conftest import order_input

pytestmark = pytest.mark.django_db


def status_events(order) -> list[tuple[str, str, str]]:
    return [(e.from_status, e.to_status, e.data["transition"])
            for e in OrderEvent.objects.filter(order=order, type=OrderEventType.STATUS_CHANGED).order_by("id")]


def test_create_unpaid_order_computes_amounts_and_writes_created_event(make_order):
    order = make_order(paid=False)
    assert order.status == OrderStatus.PENDING_PAYMENT
    assert order.number.startswith("SO") and len(order.number) == 10
    assert order.goods_amount == Decimal("415.90")  # 2 × 188.00 + 39.90
    assert order.discount_amount == Decimal("5.00")
    assert order.total_amount == Decimal("420.90")  # 415.90 − 5.00 + 10.00 shipping
    assert [line.line_no for line in order.lines.all()] == [1, 2]
    assert order.lines.get(line_no=1).title == "西湖龙井 250g"  # title filled from the SKU
    events = list(order.events.all())
    assert [e.type for e in events] == [OrderEventType.CREATED]
    assert events[0].actor_label == "test"


def test_paid_order_is_approved_by_the_pipeline_and_snapshotted(make_order):
    order = make_order(paid=True)
    assert order.status == OrderStatus.READY
    assert order.paid_amount == order.total_amount
    assert status_events(order) == [("pending_payment", "paid", "pay"), ("paid", "ready", "approve")]
    snapshot = PaymentSnapshot.objects.get(order=order)
    assert snapshot.paid_amount == Decimal("420.90")
    assert snapshot.data["lines"][0]["sku_code"] == "TEA-LJ-250G"


def test_store_without_auto_approve_leaves_order_paid(make_order, taobao_store):
    taobao_store.auto_approve = False
    taobao_store.save()
    assert make_order(paid=True).status == OrderStatus.PAID


def test_currency_defaults_to_the_store_currency(make_order, taobao_store):
    assert make_order().currency == "CNY"
    taobao_store.default_currency = "USD"
    taobao_store.save()
    assert make_order().currency == "USD"
    assert make_order(currency="eur").currency == "EUR"


def test_numbers_are_unique_and_increasing(make_order):
    numbers = [make_order(paid=False).number for _ in range(5)]
    assert len(set(numbers)) == 5
    assert numbers == sorted(numbers)


def test_full_happy_path_writes_one_event_per_transition(make_order):
    order = make_order(paid=True)
    for step in (services.order_start_fulfilment, services.order_ship_partially, flows.order_ship,
                 services.order_deliver, services.order_complete):
        order = step(order_id=order.pk, actor_label="test")
    assert order.status == OrderStatus.COMPLETED
    assert [t for _f, _t, t in status_events(order)] == [
        "pay", "approve", "start_fulfilment", "ship_partially", "ship", "deliver", "complete"]


@pytest.mark.parametrize("service, from_status", [
    (flows.order_ship, OrderStatus.READY),
    (services.order_deliver, OrderStatus.READY),
    (flows.order_pay, OrderStatus.READY),
    (flows.order_close, OrderStatus.READY),
])
def test_refused_transition_changes_nothing(make_order, service, from_status):
    order = make_order(paid=True)
    before_events = order.events.count()
    with pytest.raises(TransitionNotAllowed) as refused:
        service(order_id=order.pk, actor_label="test")
    assert refused.value.code == "transition_not_allowed"
    assert refused.value.http_status == 409
    order.refresh_from_db()
    assert order.status == from_status
    assert order.events.count() == before_events


def test_cancel_after_fulfilment_started_is_refused_but_close_works(make_order):
    order = make_order(paid=True)
    services.order_start_fulfilment(order_id=order.pk)
    with pytest.raises(TransitionNotAllowed):
        flows.order_cancel(order_id=order.pk, reason="buyer asked")
    order = flows.order_close(order_id=order.pk, reason="refunded in full")
    assert order.status == OrderStatus.CLOSED


def test_hold_with_two_reasons_releases_only_after_both(make_order):
    order = make_order(paid=True)
    order = services.order_hold(order_id=order.pk, hold_reason=HoldReason.RISK, note="新疆 > 500")
    assert order.status == OrderStatus.HELD and order.status_before_hold == OrderStatus.READY
    order = services.order_hold(order_id=order.pk, hold_reason=HoldReason.ADDRESS, note="门牌号缺失")
    assert order.hold_reasons == ["risk", "address"]
    with pytest.raises(HoldConflict):
        services.order_hold(order_id=order.pk, hold_reason=HoldReason.RISK)

    order = flows.order_release_hold(order_id=order.pk, hold_reason=HoldReason.RISK, note="checked")
    assert order.status == OrderStatus.HELD and order.hold_reasons == ["address"]
    order = flows.order_release_hold(order_id=order.pk, hold_reason=HoldReason.ADDRESS)
    # Released to paid, then re-approved by the pipeline.
    assert order.status == OrderStatus.READY and order.hold_reasons == []
    types = list(order.events.values_list("type", flat=True))
    assert types.count(OrderEventType.HOLD_ADDED) == 2
    assert types.count(OrderEventType.HOLD_RELEASED) == 2
    assert status_events(order)[-3:] == [("ready", "held", "hold"), ("held", "paid", "release"),
                                         ("paid", "ready", "approve")]


def test_unpaid_order_released_returns_to_pending_payment(make_order):
    order = make_order(paid=False)
    services.order_hold(order_id=order.pk, hold_reason=HoldReason.MANUAL)
    order = flows.order_release_hold(order_id=order.pk, hold_reason=HoldReason.MANUAL)
    assert order.status == OrderStatus.PENDING_PAYMENT


def test_release_of_a_reason_not_held_is_refused(make_order):
    order = make_order(paid=True)
    with pytest.raises(HoldConflict):
        flows.order_release_hold(order_id=order.pk, hold_reason=HoldReason.RISK)


def test_unknown_hold_reason_is_invalid(make_order):
    order = make_order(paid=True)
    with pytest.raises(OrderInvalid):
        services.order_hold(order_id=order.pk, hold_reason="because")
    order.refresh_from_db()
    assert order.status == OrderStatus.READY


def test_cancel_clears_holds(make_order):
    order = make_order(paid=True)
    services.order_hold(order_id=order.pk, hold_reason=HoldReason.RISK)
    order = flows.order_cancel(order_id=order.pk, reason="fraud")
    assert order.status == OrderStatus.CANCELLED and order.hold_reasons == []


@pytest.mark.parametrize("overrides, field", [
    ({"lines": []}, "lines"),
    ({"lines": [LineInput(sku_code="NOPE", quantity=1, unit_price=Decimal("1"))]}, "lines[0].sku_code"),
    ({"lines": [LineInput(sku_code="TEA-LJ-250G", quantity=0, unit_price=Decimal("1"))]}, "lines[0].quantity"),
    ({"lines": [LineInput(sku_code="TEA-LJ-250G", quantity=1, unit_price=Decimal("-1"))]}, "lines[0].unit_price"),
    ({"shipping_amount": Decimal("-1")}, "shipping_amount"),
    ({"expected_total": Decimal("1.00")}, "total_amount"),
    ({"discount_amount": Decimal("9999")}, "discount_amount"),
    ({"platform_order_id": "  "}, "platform_order_id"),
    ({"lines": [LineInput(sku_code="TEA-LJ-250G", quantity=1, unit_price=Decimal("5"),
                          discount_amount=Decimal("6"))], "shipping_amount": Decimal("50")},
     "lines[0].discount_amount"),
])
def test_invalid_input_is_reported_per_field_and_creates_nothing(taobao_store, skus, overrides, field):
    with pytest.raises(OrderInvalid) as invalid:
        flows.order_create(store=taobao_store, data=order_input(**overrides))
    assert field in invalid.value.data
    assert Order.objects.count() == 0


def test_duplicate_platform_order_id_in_one_store_is_refused(make_order, taobao_store):
    make_order(platform_order_id="SAME")
    with pytest.raises(OrderInvalid) as duplicate:
        make_order(platform_order_id="SAME")
    assert duplicate.value.code == "duplicate_order" and duplicate.value.http_status == 409
    assert Order.objects.filter(platform_order_id="SAME").count() == 1


def test_same_platform_order_id_in_two_stores_is_fine(make_order, manual_store):
    make_order(platform_order_id="X1")
    make_order(platform_order_id="X1", store=manual_store)
    assert Order.objects.filter(platform_order_id="X1").count() == 2


def test_manual_order_needs_a_manual_store_and_defaults_its_id_to_the_number(taobao_store, manual_store, skus):
    with pytest.raises(OrderInvalid):
        flows.order_create_manual(store=taobao_store, data=order_input())
    order = flows.order_create_manual(store=manual_store, data=order_input(platform_order_id=""))
    assert order.platform_order_id == order.number


def test_inactive_store_is_refused(make_order, taobao_store):
    taobao_store.active = False
    taobao_store.save()
    with pytest.raises(OrderInvalid):
        make_order()


def test_status_cannot_be_assigned_directly(make_order):
    order = make_order(paid=True)
    with pytest.raises(AttributeError):
        order.status = OrderStatus.SHIPPED


def test_note_is_recorded_on_the_timeline(make_order):
    order = make_order(paid=True)
    services.order_add_note(order_id=order.pk, note="客户要求周末配送")
    assert order.events.filter(type=OrderEventType.NOTE_ADDED, reason="客户要求周末配送").count() == 1
    with pytest.raises(OrderInvalid):
        services.order_add_note(order_id=order.pk, note="   ")
