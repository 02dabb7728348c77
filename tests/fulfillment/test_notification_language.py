"""The buyer's shipped notice is written in the buyer's language (Chinese for China, English otherwise), whatever
language the person or task that shipped the parcel was using."""

import pytest
from django.core import mail
from django.utils import translation

from fulfillment.models import CustomerNotification, NotificationStatus
from fulfillment.notifications import buyer_language, notification_send
from inventory.models import Warehouse
from inventory.services import stock_receive
from orders.services import BuyerInput, ReceiverInput
from tests.fulfillment.helpers import parcel_of, ship_parcel

pytestmark = pytest.mark.django_db


@pytest.fixture
def new_jersey(skus) -> Warehouse:
    warehouse = Warehouse.objects.create(code="US-NJ", name="New Jersey 3PL", country="US", priority=30)
    for sku in skus.values():
        stock_receive(warehouse_id=warehouse.pk, sku_id=sku.pk, quantity=100, reference="opening")
    return warehouse


def test_a_buyer_in_china_gets_chinese_even_when_the_clerk_works_in_english(make_order, manual_carrier):
    order = make_order(buyer=BuyerInput(id="b-cn", name="李雷", email="lilei@example.com"))
    assert order.receiver_country == "CN"
    with translation.override("en"):
        ship_parcel(parcel_of(order))
    notice = CustomerNotification.objects.get(order=order)
    assert notice.subject == f"您的订单 {order.number} 已发货"
    assert "YT1000000001" in notice.body and "Tracking number" not in notice.body and "Hello" not in notice.body


def test_a_buyer_abroad_gets_english_even_when_the_clerk_works_in_chinese(make_order, manual_carrier, new_jersey):
    order = make_order(
        buyer=BuyerInput(id="b-us", name="Emily Carter", email="emily@example.com"),
        receiver=ReceiverInput(name="Emily Carter", phone="+1 201-555-0142", country="US", province="NJ",
                               city="Hoboken", address="221 Washington St", zip="07030"))
    assert order.receiver_country == "US"
    with translation.override("zh-hans"):
        ship_parcel(parcel_of(order))
    notice = CustomerNotification.objects.get(order=order)
    assert notice.subject == f"Your order {order.number} has shipped"
    assert notice.body.startswith("Hello Emily Carter,") and "Tracking number: YT 1000 0000 01" in notice.body
    assert "您" not in notice.body and "已发货" not in notice.subject
    assert notification_send(notification_id=notice.pk) == NotificationStatus.SENT
    assert mail.outbox[0].subject == f"Your order {order.number} has shipped"


@pytest.mark.parametrize("country, language", [("CN", "zh-hans"), ("cn ", "zh-hans"), ("US", "en"), ("GB", "en"),
                                               ("", "en")])
def test_the_language_follows_the_receiver_country(country, language):
    from orders.models import Order

    assert buyer_language(order=Order(receiver_country=country)) == language
