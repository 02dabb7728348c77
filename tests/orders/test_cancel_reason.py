"""Cancelling from the order page asks for a reason and confirms; the timeline says why and shows states in words."""

from decimal import Decimal

import pytest
from django.test import Client

from inventory.models import Reservation, ReservationStatus
from orders.models import Order, OrderEvent, OrderStatus
from orders.services import LineInput
from pipeline import orders as flows
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def login(role_users, role: str) -> Client:
    client = Client()
    assert client.login(username=role_users[role].username, password=PASSWORD)
    return client


def snapshot(order: Order) -> tuple:
    order.refresh_from_db()
    return (order.status, order.version, order.events.count(),
            sorted(Reservation.objects.filter(order_line__order=order).values_list("status", flat=True)))


def test_the_red_button_only_opens_a_form_with_the_reasons_and_a_second_button(role_users, make_order):
    order = make_order()
    page = login(role_users, "customer_service").get(f"/orders/{order.pk}/").content.decode()
    # The cancel control is a <details> summary, not a submit button: one click cannot cancel.
    assert '<summary class="button danger" data-transition="cancel">' in page
    assert 'data-confirm="cancel"' in page and "确认取消订单" in page
    for words in ("买家要求取消", "缺货", "地址无法送达", "重复下单", "疑似欺诈", "价格错误", "其他"):
        assert words in page
    assert " open>" not in page.split('data-panel="cancel"')[1][:10]  # closed until asked


@pytest.mark.parametrize("body, field, message", [
    ({}, "reason_code", "请选择取消原因。"),
    ({"reason_code": "whatever"}, "reason_code", "请选择取消原因。"),
    ({"reason_code": "other", "reason": "   "}, "reason", "选择“其他”时，请填写取消原因。"),
    ({"reason_code": "duplicate", "reason": "x" * 501}, "reason", "最多 500 个字。"),
])
def test_a_cancel_without_a_reason_is_refused_and_changes_nothing(role_users, make_order, body, field, message):
    order = make_order()
    before = snapshot(order)
    assert before[0] == OrderStatus.READY and ReservationStatus.ACTIVE in before[3]
    response = login(role_users, "customer_service").post(f"/orders/{order.pk}/transition/cancel/", body)
    assert response.status_code == 400
    assert response.context["cancel_form"].errors[field] == [message]
    page = response.content.decode()
    assert message in page and 'data-panel="cancel" open' in page  # the form comes back open, with the error
    assert snapshot(order) == before


def test_a_cancel_with_a_reason_cancels_and_the_timeline_shows_it_in_words(role_users, make_order):
    order = make_order()
    client = login(role_users, "customer_service")
    response = client.post(f"/orders/{order.pk}/transition/cancel/",
                           {"reason_code": "out_of_stock", "reason": "仓库盘点后发现缺货"})
    assert response.status_code == 302 and response["Location"] == f"/orders/{order.pk}/"
    order.refresh_from_db()
    assert order.status == OrderStatus.CANCELLED
    event = OrderEvent.objects.get(order=order, type="status_changed", to_status=OrderStatus.CANCELLED)
    assert event.data == {"transition": "cancel", "cancel_reason": "out_of_stock"}
    assert event.reason == "仓库盘点后发现缺货" and event.actor == role_users["customer_service"]
    assert not Reservation.objects.filter(order_line__order=order, status=ReservationStatus.ACTIVE).exists()
    page = client.get(f"/orders/{order.pk}/").content.decode()
    timeline = page.split('class="timeline"')[1]
    assert '<span class="badge cancel-reason" data-cancel-reason="out_of_stock">缺货</span>' in timeline
    assert "仓库盘点后发现缺货" in timeline
    assert "待发货 → 已取消" in timeline
    assert "ready → cancelled" not in page and "→ cancelled" not in timeline


def test_other_with_words_is_accepted(role_users, make_order):
    order = make_order()
    response = login(role_users, "customer_service").post(
        f"/orders/{order.pk}/transition/cancel/", {"reason_code": "other", "reason": "客户改买其他款"})
    assert response.status_code == 302
    event = OrderEvent.objects.get(order=order, type="status_changed", to_status=OrderStatus.CANCELLED)
    assert event.data["cancel_reason"] == "other" and event.reason == "客户改买其他款"


def test_without_the_permission_the_refusal_is_the_service_s(role_users, make_order):
    order = make_order()
    response = login(role_users, "warehouse").post(f"/orders/{order.pk}/transition/cancel/",
                                                   {"reason_code": "duplicate"}, follow=True)
    assert [str(m) for m in response.context["messages"]]
    order.refresh_from_db()
    assert order.status == OrderStatus.READY


def test_the_api_takes_the_same_reason_codes(api_client_for, make_order):
    client = api_client_for("customer_service")
    order = make_order()
    unknown = client.post(f"/api/v1/orders/{order.pk}/cancel/", {"reason_code": "whim"}, format="json")
    assert unknown.status_code == 400 and unknown.json()["code"] == "invalid"
    assert "reason_code" in unknown.json()["errors"]
    wordless = client.post(f"/api/v1/orders/{order.pk}/cancel/", {"reason_code": "other"}, format="json")
    assert wordless.status_code == 400 and wordless.json()["code"] == "cancel_reason_required"
    order.refresh_from_db()
    assert order.status == OrderStatus.READY and not order.events.filter(to_status=OrderStatus.CANCELLED).exists()
    done = client.post(f"/api/v1/orders/{order.pk}/cancel/", {"reason_code": "fraud", "reason": "风控命中"},
                       format="json")
    assert done.status_code == 200 and done.json()["status"] == "cancelled"
    event = OrderEvent.objects.get(order=order, type="status_changed", to_status=OrderStatus.CANCELLED)
    assert event.data["cancel_reason"] == "fraud" and event.reason == "风控命中"


def test_the_timeline_shows_states_in_words(role_users, make_order):
    order = make_order(paid=False)

    flows.order_pay(order_id=order.pk, actor_label="test")
    page = login(role_users, "manager").get(f"/orders/{order.pk}/").content.decode()
    timeline = page.split('class="timeline"')[1]
    assert "待付款 → 已付款" in timeline
    assert "pending_payment → paid" not in page and "pending_payment" not in timeline.replace(
        'data-from="pending_payment"', "")


def test_no_discount_row_when_there_is_no_discount(role_users, make_order):
    plain = make_order(lines=[LineInput(sku_code="TEA-LJ-250G", quantity=1, unit_price=Decimal("188.00"))])
    assert plain.discount_amount == Decimal("0.00")
    page = login(role_users, "manager").get(f"/orders/{plain.pk}/").content.decode()
    assert "−0.00" not in page and "-0.00" not in page and 'data-row="discount"' not in page
    discounted = make_order()  # 5.00 off the cup
    page = login(role_users, "manager").get(f"/orders/{discounted.pk}/").content.decode()
    assert 'data-row="discount"' in page and "−5.00" in page
