"""The order pages: login, list filters, detail with masking and timeline, buttons, refusals, i18n."""

import pytest
from django.test import Client

from connectors.models import ChannelSyncState
from orders.models import OrderEvent, OrderStatus, Store
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def login(role_users, role: str) -> Client:
    client = Client()
    assert client.login(username=role_users[role].username, password=PASSWORD)
    return client


def test_pages_need_login(make_order):
    order = make_order()
    for url in ("/orders/", f"/orders/{order.pk}/", "/finance/"):
        response = Client().get(url)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_login_page_and_form_login(role_users):
    page = Client().get("/accounts/login/")
    assert page.status_code == 200 and "登录" in page.content.decode()
    client = Client()
    response = client.post("/accounts/login/", {"username": "u_manager", "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == "/orders/"
    bad = Client().post("/accounts/login/", {"username": "u_manager", "password": "wrong"})
    assert bad.status_code == 200 and "form" in bad.context and bad.context["form"].errors


def test_order_list_filters(role_users, make_order):
    ready = make_order(platform_order_id="TB-FIND")
    unpaid = make_order(paid=False)
    client = login(role_users, "manager")
    page = client.get("/orders/").content.decode()
    assert ready.number in page and unpaid.number in page
    only_ready = client.get("/orders/?status=ready").content.decode()
    assert ready.number in only_ready and unpaid.number not in only_ready
    by_id = client.get("/orders/?q=TB-FIND").content.decode()
    assert ready.number in by_id and unpaid.number not in by_id
    by_store = client.get("/orders/?store=tb&placed_from=2000-01-01&placed_to=2999-01-01").content.decode()
    assert ready.number in by_store
    assert client.get("/orders/?placed_from=not-a-date").status_code == 200  # a form error, not a 500


def test_detail_shows_lines_amounts_timeline_and_masks_for_warehouse(role_users, make_order):
    order = make_order()
    warehouse_page = login(role_users, "warehouse").get(f"/orders/{order.pk}/").content.decode()
    assert "133****3069" in warehouse_page and "13312343069" not in warehouse_page
    assert "王小贝" not in warehouse_page
    assert "TEA-LJ-250G" in warehouse_page and "420.90" in warehouse_page
    cs_page = login(role_users, "customer_service").get(f"/orders/{order.pk}/").content.decode()
    assert "13312343069" in cs_page and "王小贝" in cs_page
    assert 'data-transition="cancel"' in cs_page and 'data-transition="start_fulfilment"' in cs_page
    assert 'data-transition="hold"' in cs_page
    assert 'data-transition="cancel"' not in warehouse_page  # no cancel permission


def test_warehouse_cannot_see_finance(role_users, make_order):
    make_order()
    assert login(role_users, "warehouse").get("/finance/").status_code == 403
    assert login(role_users, "customer_service").get("/finance/").status_code == 403
    finance = login(role_users, "finance").get("/finance/")
    assert finance.status_code == 200 and "420.90" in finance.content.decode()
    assert "/finance/" not in login(role_users, "warehouse").get("/orders/").content.decode()


def test_transition_button_moves_the_order_and_writes_the_event(role_users, make_order):
    order = make_order()
    client = login(role_users, "manager")
    response = client.post(f"/orders/{order.pk}/transition/start_fulfilment/", follow=True)
    order.refresh_from_db()
    assert order.status == OrderStatus.IN_FULFILMENT
    assert OrderEvent.objects.filter(order=order, to_status="in_fulfilment", actor=role_users["manager"]).exists()
    assert "in_fulfilment" in response.content.decode()


def test_refused_transition_shows_why_and_changes_nothing(role_users, make_order):
    order = make_order()
    client = login(role_users, "manager")
    events = order.events.count()
    response = client.post(f"/orders/{order.pk}/transition/deliver/", follow=True)
    messages = [str(m) for m in response.context["messages"]]
    assert len(messages) == 1 and order.number in messages[0] and "签收" in messages[0]
    order.refresh_from_db()
    assert order.status == OrderStatus.READY and order.events.count() == events
    denied = login(role_users, "warehouse").post(f"/orders/{order.pk}/transition/cancel/", follow=True)
    assert [str(m) for m in denied.context["messages"]]
    order.refresh_from_db()
    assert order.status == OrderStatus.READY


def test_hold_release_and_note_from_the_page(role_users, make_order):
    order = make_order()
    client = login(role_users, "customer_service")
    client.post(f"/orders/{order.pk}/hold/", {"reason": "address", "note": "缺门牌号"})
    order.refresh_from_db()
    assert order.status == OrderStatus.HELD and order.hold_reasons == ["address"]
    client.post(f"/orders/{order.pk}/release/address/", {"note": "已补全"})
    order.refresh_from_db()
    assert order.status == OrderStatus.READY
    client.post(f"/orders/{order.pk}/note/", {"note": "客户来电"})
    assert order.events.filter(type="note_added", reason="客户来电").exists()
    assert login(role_users, "warehouse").post(f"/orders/{order.pk}/hold/", {"reason": "risk"}).status_code == 403


def test_language_switch_to_english_and_back(role_users, make_order):
    make_order()
    client = login(role_users, "manager")
    assert "订单" in client.get("/orders/").content.decode()
    client.post("/i18n/setlang/", {"language": "en", "next": "/orders/"})
    english = client.get("/orders/").content.decode()
    assert "Orders" in english and "Ready for fulfilment" in english
    client.post("/i18n/setlang/", {"language": "zh-hans", "next": "/orders/"})
    assert "待发货" in client.get("/orders/").content.decode() or "订单" in client.get("/orders/").content.decode()


def test_times_are_shown_in_shanghai(role_users, make_order):
    from datetime import UTC, datetime
    order = make_order(placed_at=datetime(2026, 11, 20, 23, 30, tzinfo=UTC))
    page = login(role_users, "manager").get(f"/orders/{order.pk}/").content.decode()
    assert "2026-11-21 07:30:00" in page  # 23:30 UTC is 07:30 next day in Asia/Shanghai


def test_admin_lists_every_model_for_admin_role(role_users, make_order):
    order = make_order()
    client = login(role_users, "admin")
    for url in ("/admin/orders/order/", f"/admin/orders/order/{order.pk}/change/", "/admin/orders/store/",
                "/admin/orders/orderevent/", "/admin/orders/orderline/", "/admin/inventory/sku/",
                "/admin/inventory/warehouse/", "/admin/finance/paymentsnapshot/"):
        assert client.get(url).status_code == 200, url
    store_page = client.get(f"/admin/orders/store/{order.store_id}/change/").content.decode()
    assert "top-secret-value" not in store_page
    # The credentials are the store's channel settings: shown masked on its channel page, never in clear.
    state = ChannelSyncState.objects.get(store_id=order.store_id)
    channel_page = client.get(f"/admin/connectors/channelsyncstate/{state.pk}/change/").content.decode()
    assert "top-secret-value" not in channel_page and "app_secret=***" in channel_page


def test_health_endpoint_reports_each_part(db):
    body = Client().get("/healthz").json()
    assert set(body["checks"]) == {"web", "database", "broker", "workers"}
    assert body["checks"]["database"]["status"] == "ok"


def test_pages_default_to_chinese_even_for_an_english_browser(role_users, make_order):
    make_order()
    client = login(role_users, "manager")
    page = client.get("/orders/", HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9").content.decode()
    assert "待发货" in page and 'lang="zh-hans"' in page


def test_api_follows_accept_language(api_client_for, make_order):
    order = make_order()
    client = api_client_for("manager")
    english = client.get(f"/api/v1/orders/{order.pk}/", HTTP_ACCEPT_LANGUAGE="en").json()
    chinese = client.get(f"/api/v1/orders/{order.pk}/").json()
    assert english["status_display"] == "Ready for fulfilment" and chinese["status_display"] == "待发货"


def test_customer_service_cannot_move_parcels_through_the_order_page(role_users, make_order):
    order = make_order()
    response = login(role_users, "customer_service").post(f"/orders/{order.pk}/transition/start_fulfilment/",
                                                           follow=True)
    # Pages speak Chinese by default (the catalogue is compiled by `make test`).
    assert [str(m) for m in response.context["messages"]] == ["操作被拒绝：该订单的包裹由仓库作业推进：您无权操作。"]
    order.refresh_from_db()
    assert order.status == OrderStatus.READY


def test_the_admin_cannot_move_a_store_with_orders_to_another_platform(role_users, make_order):
    order = make_order()
    client = login(role_users, "admin")
    url = f"/admin/orders/store/{order.store_id}/change/"
    form = {"platform": "shopify", "code": order.store.code, "name": order.store.name, "active": "on",
            "default_currency": "CNY", "auto_approve": "on"}
    response = client.post(url, form)
    assert response.status_code == 200  # the form again, with the error
    assert "已有订单的店铺不能改换平台" in response.content.decode()
    order.store.refresh_from_db()
    assert order.store.platform == "taobao"
    # A store without orders may still be corrected.
    empty = Store.objects.create(platform="taobao", code="tb-empty", name="空店")
    form.update(code="tb-empty", name="空店")
    assert client.post(f"/admin/orders/store/{empty.pk}/change/", form).status_code == 302
    empty.refresh_from_db()
    assert empty.platform == "shopify"


def test_channel_credentials_must_be_a_json_object(role_users, make_order):
    order = make_order()
    state = ChannelSyncState.objects.get(store_id=order.store_id)
    client = login(role_users, "admin")
    url = f"/admin/connectors/channelsyncstate/{state.pk}/change/"
    form = {"store": order.store_id, "enabled": "on", "poll_interval_seconds": 60, "initial_lookback_hours": 24,
            "stock_push_enabled": "on", "stock_share": "1", "stock_buffer": 0, "new_credentials": '["app_key"]'}
    response = client.post(url, form)
    assert response.status_code == 200 and "请以 JSON 对象（名称与取值）填写凭证。" in response.content.decode()
    state.refresh_from_db()
    assert state.credentials == {"app_key": "12345678", "app_secret": "top-secret-value"}  # kept as it was
    form["new_credentials"] = '{"app_key": "k2", "app_secret": "s2"}'
    assert client.post(url, form).status_code == 302
    state.refresh_from_db()
    assert state.credentials == {"app_key": "k2", "app_secret": "s2"}
