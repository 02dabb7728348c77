"""The demo data loader: everything it promises exists once, even after a second run."""

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.http import HttpRequest
from rest_framework.authtoken.models import Token

from connectors.models import ChannelSyncState
from demo.catalog import SKUS
from demo.loader import demo_load
from demo.orders import SCARCE_ORDERS
from demo.users import DEMO_USERS
from inventory.models import SKU, Warehouse
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


@pytest.mark.django_db
def test_the_channel_stock_page_has_rows_and_the_pushes_reach_the_sandboxes(loaded_twice, role_users):
    """The demo maps each sandbox store's catalogue, so the trial shows stock going out, and each push names a
    SKU the sandbox knows (a wrong id would come back as "no such SKU" on the page)."""
    from django.core.cache import cache
    from django.test import Client

    from connectors import stock_push
    from connectors.models import ChannelStock
    from connectors.sandbox.douyin import DouyinSandbox
    from connectors.sandbox.pdd import PddSandbox
    from connectors.sandbox.shopify import ShopifySandbox
    from connectors.sandbox.taobao import TaobaoSandbox
    from inventory.models import PlatformSKUMapping
    from tests.conftest import PASSWORD

    mapped = PlatformSKUMapping.objects.filter(store__code__in=["shopify-demo", "taobao-demo", "pdd-demo",
                                                                "douyin-demo"])
    assert sorted(mapped.values_list("store__code", flat=True).distinct()) == [
        "douyin-demo", "pdd-demo", "shopify-demo", "taobao-demo"]
    assert mapped.count() == 5 + 6 + 6 + 5  # each default catalogue, less codes the demo does not sell
    assert not PlatformSKUMapping.objects.filter(store__code="wechat-demo").exists()
    rows = ChannelStock.objects.filter(store__code__in=["shopify-demo", "taobao-demo", "pdd-demo", "douyin-demo"])
    assert rows.count() == mapped.count()

    client = Client()
    assert client.login(username=role_users["manager"].username, password=PASSWORD)
    page = client.get("/channels/stock/")
    assert page.status_code == 200 and len(page.context["rows"]) == mapped.count()
    assert "TEA-LJ-250G" in page.content.decode()

    # The sandboxes as `make run` starts them (default catalogues), each on a free port.
    sandboxes = {"shopify-demo": ShopifySandbox(), "taobao-demo": TaobaoSandbox(), "pdd-demo": PddSandbox(),
                 "douyin-demo": DouyinSandbox()}
    try:
        for code, sandbox in sandboxes.items():
            sandbox.start()
            store = Store.objects.get(code=code)
            state = ChannelSyncState.objects.get(store=store)
            state.credentials = {**state.credentials, **sandbox.connector_credentials()}
            state.save(update_fields=["credentials"])
        cache.delete(stock_push.FLUSH_LOCK)
        counts = stock_push.channel_stock_flush()
    finally:
        for sandbox in sandboxes.values():
            sandbox.stop()
    assert counts["errors"] == 0 and counts["calls"] == mapped.count(), counts
    assert not rows.exclude(last_error="").exists()
    for sandbox in sandboxes.values():
        assert any(push["kind"] in ("stock", "inventory") for push in sandbox.pushed), sandbox
