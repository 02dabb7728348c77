"""The demo data loader: everything it promises exists once, even after a second run."""

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.http import HttpRequest
from rest_framework.authtoken.models import Token

from inventory.models import SKU, Warehouse
from oms.demo import DEMO_USERS, SCARCE_ORDERS, SKUS, demo_load
from orders.models import Order, OrderEvent, OrderEventType, Store

ORDERS = 40


@pytest.fixture
def loaded_twice():
    demo_load(orders=ORDERS)
    return demo_load(orders=ORDERS)


@pytest.mark.django_db
def test_demo_users_have_their_roles_and_tokens(loaded_twice):
    users = get_user_model().objects.filter(username__in=[username for username, _role in DEMO_USERS])
    assert users.count() == 5
    for username, role in DEMO_USERS:
        user = users.get(username=username)
        assert list(user.groups.values_list("name", flat=True)) == [role]
        assert user.is_staff == user.is_superuser == (role == "admin")
        assert Token.objects.filter(user=user).count() == 1


@pytest.mark.django_db
def test_each_printed_password_logs_in(loaded_twice):
    assert [(username, role) for username, role, _password in loaded_twice] == DEMO_USERS
    for username, _role, password in loaded_twice:
        assert password == f"demo-{username}-2026"
        assert authenticate(request=HttpRequest(), username=username, password=password) is not None


@pytest.mark.django_db
def test_master_data_is_not_duplicated(loaded_twice):
    assert Store.objects.count() == 5
    assert Warehouse.objects.count() == 3
    assert SKU.objects.count() == len(SKUS) >= 40


@pytest.mark.django_db
def test_orders_are_created_once_in_many_states(loaded_twice):
    assert Order.objects.count() == ORDERS + SCARCE_ORDERS  # plus the orders waiting for the scarce SKU
    assert Order.objects.values("status").distinct().count() > 5
    created = OrderEvent.objects.filter(type=OrderEventType.CREATED)
    assert not Order.objects.exclude(pk__in=created.values("order_id")).exists()


@pytest.mark.django_db
def test_a_changed_password_survives_a_rerun():
    demo_load(orders=0)
    user = get_user_model().objects.get(username="cs")
    user.set_password("my-own-password-42")
    user.save()
    user.groups.clear()

    logins = demo_load(orders=0)

    assert ("cs", "customer_service", None) in logins
    assert authenticate(request=HttpRequest(), username="cs", password="my-own-password-42") is not None
    assert list(user.groups.values_list("name", flat=True)) == ["customer_service"]


@pytest.mark.django_db
def test_demo_orders_walk_through_their_parcels(loaded_twice):
    """The order states of the demo come from real parcels: picking, shipped and delivered agree."""
    from fulfillment.models import Carrier, Shipment, ShipmentStatus
    from inventory.services import stock_reconcile
    from orders.models import Order, OrderStatus

    assert Carrier.objects.count() == 4
    shipped = Order.objects.filter(status__in=[OrderStatus.SHIPPED, OrderStatus.DELIVERED])
    in_fulfilment = Order.objects.filter(status=OrderStatus.IN_FULFILMENT)
    assert shipped.exists() and in_fulfilment.exists()  # the loops below check something
    for order in shipped:
        states = set(Shipment.objects.filter(lines__order=order).exclude(status=ShipmentStatus.CANCELLED)
                     .values_list("status", flat=True))
        assert states and states <= {ShipmentStatus.SHIPPED, ShipmentStatus.DELIVERED}, order.number
    for order in in_fulfilment:
        assert Shipment.objects.filter(lines__order=order, status=ShipmentStatus.PICKING).exists(), order.number
    assert Shipment.objects.filter(status=ShipmentStatus.TO_PICK).exists()
    assert stock_reconcile() == []
