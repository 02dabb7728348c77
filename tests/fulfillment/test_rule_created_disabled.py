"""A new routing rule starts switched off and routes nothing until someone switches it on; saving it leads to
the dry run with the new rule tried, and the dry run lists only the orders that would be routed differently
(a link shows every order checked)."""

import pytest
from django.test import Client

from fulfillment.models import CarrierRule, RoutingDecision, WarehouseRule
from orders.services import ReceiverInput
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

RULES = "/fulfillment/routing/"
DRY_RUN = "/fulfillment/routing/dry-run/"
NEW_WAREHOUSE_RULE = "/fulfillment/routing/rules/warehouse/new/"


def login(role_users, role: str = "manager") -> Client:
    client = Client()
    assert client.login(username=role_users[role].username, password=PASSWORD)
    client.cookies["django_language"] = "en"
    return client


def shanghai_to_beijing(beijing, **changes) -> dict:
    data = {
        "name": "Shanghai to Beijing",
        "active": "on",
        "store": "",
        "countries": "",
        "provinces": "上海市",
        "priorities": "",
        "categories": "",
        "min_amount": "",
        "max_amount": "",
        "warehouse": beijing.pk,
    }
    data.update(changes)
    return data


def zhejiang() -> ReceiverInput:
    return ReceiverInput(
        name="李四",
        phone="13312343070",
        province="浙江省",
        city="杭州市",
        district="西湖区",
        address="文三路 1 号",
    )


def first_choice(order) -> str:
    decision = RoutingDecision.objects.filter(order=order, kind="warehouse").latest("id")
    return decision.preferred_warehouse.code


def test_a_new_rule_is_saved_switched_off_and_routes_nothing_until_switched_on(
    role_users, make_order, beijing, manual_carrier
):
    client = login(role_users)
    form_page = client.get(NEW_WAREHOUSE_RULE).content.decode()
    assert 'name="active"' not in form_page and 'data-note="starts-off"' in form_page

    # Even a forged "active=on" does not switch a new rule on.
    response = client.post(NEW_WAREHOUSE_RULE, shanghai_to_beijing(beijing))
    rule = WarehouseRule.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"{DRY_RUN}?warehouse_rule={rule.pk}"
    assert (rule.active, rule.position) == (False, 10)
    assert first_choice(make_order()) == "SH"  # the rule decided nothing

    carrier = client.post(
        "/fulfillment/routing/rules/carrier/new/",
        {
            "name": "All by YTO",
            "active": "on",
            "countries": "",
            "provinces": "",
            "services": "",
            "warehouses": "",
            "min_weight_grams": "",
            "max_weight_grams": "",
            "carrier": manual_carrier.pk,
            "service": "standard",
        },
    )
    carrier_rule = CarrierRule.objects.get()
    assert carrier.status_code == 302 and carrier["Location"] == f"{DRY_RUN}?carrier_rule={carrier_rule.pk}"
    assert carrier_rule.active is False

    # The rules list says it is off and offers to try it; editing keeps the switch.
    page = client.get(RULES).content.decode()
    assert f'id="warehouse-rule-{rule.pk}" class="inactive"' in page
    assert f'{DRY_RUN}?warehouse_rule={rule.pk}" data-action="try"' in page
    assert 'name="active"' in client.get(f"/fulfillment/routing/rules/warehouse/{rule.pk}/").content.decode()

    assert client.post(f"/fulfillment/routing/rules/warehouse/{rule.pk}/toggle/").status_code == 302
    rule.refresh_from_db()
    assert rule.active is True
    assert first_choice(make_order()) == "BJ"


def test_the_dry_run_lists_only_the_orders_a_tried_rule_would_route_differently(
    role_users, make_order, beijing
):
    shanghai = [make_order(), make_order()]
    other = make_order(receiver=zhejiang())
    client = login(role_users)

    created = client.post(NEW_WAREHOUSE_RULE, shanghai_to_beijing(beijing), follow=True)
    rule = WarehouseRule.objects.get()
    assert created.redirect_chain == [(f"{DRY_RUN}?warehouse_rule={rule.pk}", 302)]
    assert created.status_code == 200
    assert (len(created.context["rows"]), created.context["differences"]) == (3, 2)
    assert [row.order_number for row in created.context["shown_rows"]] == [
        o.number for o in reversed(shanghai)
    ]
    page = created.content.decode()
    assert page.count('data-differs="1"') == 2 and 'data-differs="0"' not in page and other.number not in page
    assert 'data-tried-rule="Shanghai to Beijing"' in page
    assert "would route differently" in page  # the saved message, shown on the dry run
    assert f'href="?warehouse_rule={rule.pk}&amp;all=1" data-action="show-all"' in page
    assert "Show all 3 orders checked" in page

    every = client.get(f"{DRY_RUN}?warehouse_rule={rule.pk}&all=1")
    assert every.status_code == 200
    page = every.content.decode()
    assert (
        page.count('data-differs="1"') == 2 and page.count('data-differs="0"') == 1 and other.number in page
    )
    assert f'href="?warehouse_rule={rule.pk}" data-action="show-differing"' in page

    # Without trying the switched-off rule nothing would change, and the page says so instead of listing rows.
    today = client.get(DRY_RUN)
    assert (len(today.context["rows"]), today.context["differences"], today.context["shown_rows"]) == (
        3,
        0,
        [],
    )
    assert "No order would be routed differently." in today.content.decode()
    assert len(client.get(f"{DRY_RUN}?all=1").context["shown_rows"]) == 3
    assert WarehouseRule.objects.get().active is False  # a dry run changes nothing


def test_a_bad_tried_rule_is_a_form_error(role_users, make_order, beijing):
    make_order()
    client = login(role_users)
    client.post(NEW_WAREHOUSE_RULE, shanghai_to_beijing(beijing))
    rule = WarehouseRule.objects.get()
    rule_id = rule.pk
    client.post(f"/fulfillment/routing/rules/warehouse/{rule_id}/toggle/")  # on: nothing left to try
    for bad in ("abc", "0", str(rule_id), "99999999"):
        response = client.get(DRY_RUN, {"warehouse_rule": bad})
        assert response.status_code == 400, bad
        assert 'data-error-for="warehouse_rule"' in response.content.decode(), bad
    assert client.get(DRY_RUN, {"warehouse_rule": "1\x00"}).status_code == 400  # the shared input guard
