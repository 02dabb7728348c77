"""Bad input on warehouse and order pages is refused with the right words: an exception without a reason (the
browser's "required" is no check), a note over its limit (said as such, not as "the note is empty")."""

import pytest
from django.test import Client
from django.utils import translation

from fulfillment import services
from fulfillment.models import Shipment, ShipmentEvent, ShipmentStatus
from oms.exceptions import ValidationFailed
from orders import services as order_services
from orders.models import OrderEvent, OrderStatus
from pipeline import shipping
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db
SS = ShipmentStatus
HTMX = {"HTTP_HX_REQUEST": "true"}


def login(role_users, role: str, language: str = "en") -> Client:
    client = Client()
    assert client.login(username=role_users[role].username, password=PASSWORD)
    client.cookies["django_language"] = language
    return client


@pytest.fixture
def parcel(make_order) -> Shipment:
    order = make_order()
    order.refresh_from_db()
    assert order.status == OrderStatus.READY
    return Shipment.objects.filter(lines__order=order).distinct().get()


@pytest.mark.parametrize("reason", ["", "   ", "\t\n"])
def test_an_exception_without_a_reason_is_refused_and_changes_nothing(role_users, parcel, reason):
    client = login(role_users, "warehouse")
    response = client.post(f"/fulfillment/shipments/{parcel.pk}/move/", {"to": "exception", "reason": reason},
                           **HTMX)
    assert response.status_code == 400
    assert response["X-Refusal-Code"] == "reason_required"
    assert "Refused: Say what the problem is." in response.content.decode()
    parcel.refresh_from_db()
    assert (parcel.status, parcel.exception_reason) == (SS.TO_PICK, "")
    assert not ShipmentEvent.objects.filter(shipment=parcel, to_status=SS.EXCEPTION).exists()


def test_without_javascript_the_refusal_is_a_message_back_on_the_board(role_users, parcel, warehouse):
    board = f"/fulfillment/kanban/{warehouse.code}/"
    response = login(role_users, "warehouse").post(f"/fulfillment/shipments/{parcel.pk}/move/",
                                                   {"to": "exception", "reason": " ", "next": board}, follow=True)
    assert [str(m) for m in response.context["messages"]] == ["Refused: Say what the problem is."]
    assert Shipment.objects.get(pk=parcel.pk).status == SS.TO_PICK


def test_the_service_refuses_an_empty_reason_too(parcel):
    for call in (lambda: shipping.shipment_move(shipment_id=parcel.pk, to_status=SS.EXCEPTION, reason=""),
                 lambda: services.shipment_raise_exception(shipment_id=parcel.pk, reason="")):
        with pytest.raises(ValidationFailed) as refused:
            call()
        assert (refused.value.code, refused.value.http_status) == ("reason_required", 400)
    with pytest.raises(ValidationFailed) as too_long:
        services.shipment_raise_exception(shipment_id=parcel.pk, reason="破" * 301)
    assert too_long.value.code == "reason_too_long"
    assert Shipment.objects.get(pk=parcel.pk).status == SS.TO_PICK


def test_an_exception_with_a_reason_still_goes_through(role_users, parcel):
    response = login(role_users, "warehouse").post(f"/fulfillment/shipments/{parcel.pk}/move/",
                                                   {"to": "exception", "reason": "  外箱破损 "}, **HTMX)
    assert response.status_code == 200
    parcel.refresh_from_db()
    assert (parcel.status, parcel.exception_reason) == (SS.EXCEPTION, "外箱破损")


def test_a_note_over_500_characters_is_refused_as_too_long_not_as_empty(role_users, make_order):
    order = make_order()
    client = login(role_users, "customer_service", language="zh-hans")
    response = client.post(f"/orders/{order.pk}/note/", {"note": "客" * 501}, follow=True)
    assert [str(m) for m in response.context["messages"]] == ["备注不能超过 500 个字符。"]
    empty = client.post(f"/orders/{order.pk}/note/", {"note": "  "}, follow=True)
    assert [str(m) for m in empty.context["messages"]] == ["备注内容为空。"]
    assert not OrderEvent.objects.filter(order=order, type="note_added").exists()
    client.post(f"/orders/{order.pk}/note/", {"note": "客" * 500})
    assert OrderEvent.objects.filter(order=order, type="note_added").count() == 1


def test_the_order_service_refuses_an_over_long_note(make_order):
    order = make_order()
    with translation.override("en"), pytest.raises(ValidationFailed) as refused:
        order_services.order_add_note(order_id=order.pk, note="x" * 501)
    assert refused.value.message == "A note has at most 500 characters."
    assert not OrderEvent.objects.filter(order=order, type="note_added").exists()
