"""Routing pages: rules (create with validated lists, edit, switch, reorder, delete), carriers with write-only
secrets, the admin, and the dry run that shows what a rule change would route differently."""

import json
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import translation

from fulfillment.models import Carrier, CarrierKind, CarrierRule, WarehouseRule
from inventory.models import SKU, Warehouse
from inventory.services import stock_receive
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

SECRET = "s3cret-checkword-value"


def login(role_users, role: str) -> Client:
    client = Client()
    assert client.login(username=role_users[role].username, password=PASSWORD)
    client.cookies["django_language"] = "en"
    return client


def errors_of(response) -> dict[str, list[str]]:
    # Lazy messages are read here, after the request: in English, as the test client asked for.
    with translation.override("en"):
        return {field: [str(m) for m in messages] for field, messages in response.context["form"].errors.items()}


@pytest.fixture
def beijing(skus) -> Warehouse:
    warehouse = Warehouse.objects.create(code="BJ", name="北京仓", provinces=["北京市"], priority=20)
    for sku in skus.values():
        stock_receive(warehouse_id=warehouse.pk, sku_id=sku.pk, quantity=100, reference="opening")
    return warehouse


@pytest.fixture
def yto(db) -> Carrier:
    return Carrier.objects.create(
        code="YTO", name="圆通", kind=CarrierKind.MANUAL, cost_first_kg=Decimal("6")
    )


def warehouse_rule_data(warehouse: Warehouse, **changes) -> dict:
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
        "warehouse": warehouse.pk,
    }
    data.update(changes)
    return data


def test_only_rule_editors_see_the_routing_pages(role_users):
    for role in ("warehouse", "customer_service", "finance"):
        client = login(role_users, role)
        for url in (
            "/fulfillment/routing/",
            "/fulfillment/routing/dry-run/",
            "/fulfillment/carriers/",
            "/fulfillment/carriers/new/",
            "/fulfillment/routing/rules/warehouse/new/",
        ):
            assert client.get(url).status_code == 403, (role, url)
        assert client.post("/fulfillment/carriers/new/", {"code": "X"}).status_code == 403
    manager = login(role_users, "manager")
    for url in (
        "/fulfillment/routing/",
        "/fulfillment/routing/dry-run/",
        "/fulfillment/carriers/",
        "/fulfillment/routing/rules/warehouse/new/",
        "/fulfillment/routing/rules/carrier/new/",
    ):
        assert manager.get(url).status_code == 200, url
    assert manager.get("/fulfillment/routing/rules/nonsense/new/").status_code == 404


def test_rule_with_a_bad_province_list_is_a_form_error(role_users, warehouse):
    client = login(role_users, "manager")
    response = client.post(
        "/fulfillment/routing/rules/warehouse/new/",
        warehouse_rule_data(warehouse, provinces="上海, 火星省，Ohio1"),
    )
    assert response.status_code == 400
    assert errors_of(response) == {
        "provinces": [
            "“上海”: write the full name “上海市”, as orders carry it.",
            "“火星省” is not a Chinese province.",
            "“Ohio1” is not a province or state name.",
        ]
    }
    assert 'data-error-for="provinces"' in response.content.decode()
    assert not WarehouseRule.objects.exists()


def test_other_bad_lists_and_ranges_are_form_errors(role_users, warehouse, skus, yto):
    SKU.objects.filter(code="TEA-LJ-250G").update(category="tea")
    client = login(role_users, "manager")
    response = client.post(
        "/fulfillment/routing/rules/warehouse/new/",
        warehouse_rule_data(
            warehouse,
            countries="China",
            priorities="1, 3, vip",
            categories="tea, shoes",
            min_amount="100",
            max_amount="50",
        ),
    )
    assert response.status_code == 400
    errors = errors_of(response)
    assert errors["countries"] == ["“China” is not a two-letter country code (CN, US, …)."]
    assert len(errors["priorities"]) == 2 and errors["priorities"][0].startswith("“3” is not a customer tier")
    assert errors["categories"] == ["No SKU has the category “shoes”."]
    assert errors["max_amount"] == ["The maximum is below the minimum."]
    response = client.post(
        "/fulfillment/routing/rules/carrier/new/",
        {
            "name": "US east",
            "active": "on",
            "services": "overnight",
            "warehouses": "SH, XX",
            "min_weight_grams": "abc",
            "max_weight_grams": "",
            "carrier": yto.pk,
            "service": "next_morning",
        },
    )
    assert response.status_code == 400
    errors = errors_of(response)
    assert errors["services"] == ["“overnight” is not a service (standard, express, next_morning)."]
    assert errors["warehouses"] == ["No warehouse has the code “XX”."]
    assert "min_weight_grams" in errors
    assert errors["service"] == ["圆通 does not offer Next morning."]
    assert not CarrierRule.objects.exists() and not WarehouseRule.objects.exists()


def test_create_edit_switch_reorder_and_delete_rules(role_users, warehouse, beijing, yto, skus):
    SKU.objects.filter(code="TEA-LJ-250G").update(category="tea")
    client = login(role_users, "manager")
    created = client.post(
        "/fulfillment/routing/rules/warehouse/new/",
        warehouse_rule_data(
            beijing, countries="cn", provinces="上海市，浙江省、上海市", priorities="2", categories="tea"
        ),
        follow=True,
    )
    first = WarehouseRule.objects.get()
    # A new rule starts switched off and leads to the dry run that tries it (test_rule_created_disabled).
    assert created.redirect_chain == [(f"/fulfillment/routing/dry-run/?warehouse_rule={first.pk}", 302)]
    assert first.active is False
    assert (first.countries, first.provinces, first.priorities, first.categories, first.position) == (
        ["CN"],
        ["上海市", "浙江省"],
        [2],
        ["tea"],
        10,
    )
    client.post(
        "/fulfillment/routing/rules/warehouse/new/",
        warehouse_rule_data(warehouse, name="Everything else", provinces=""),
    )
    second = WarehouseRule.objects.get(name="Everything else")
    assert second.position == 20 and second.provinces == []
    edit_page = client.get(f"/fulfillment/routing/rules/warehouse/{first.pk}/").content.decode()
    assert 'value="上海市, 浙江省"' in edit_page
    client.post(
        f"/fulfillment/routing/rules/warehouse/{first.pk}/",
        warehouse_rule_data(beijing, name="Shanghai+Zhejiang to BJ", provinces="上海市, 浙江省"),
    )
    first.refresh_from_db()
    assert first.name == "Shanghai+Zhejiang to BJ" and first.position == 10 and first.categories == []
    assert first.active is True  # the edit form keeps the switch

    client.post(f"/fulfillment/routing/rules/warehouse/{second.pk}/move/up/")
    assert list(WarehouseRule.objects.order_by("position").values_list("name", flat=True)) == [
        "Everything else",
        "Shanghai+Zhejiang to BJ",
    ]
    client.post(f"/fulfillment/routing/rules/warehouse/{second.pk}/move/up/")  # already first: stays
    client.post(f"/fulfillment/routing/rules/warehouse/{second.pk}/move/down/")
    assert list(WarehouseRule.objects.order_by("position").values_list("name", "position")) == [
        ("Shanghai+Zhejiang to BJ", 10),
        ("Everything else", 20),
    ]
    assert client.post(f"/fulfillment/routing/rules/warehouse/{second.pk}/move/sideways/").status_code == 404

    client.post(f"/fulfillment/routing/rules/warehouse/{first.pk}/toggle/")  # switched on by the edit above
    first.refresh_from_db()
    assert first.active is False
    page = client.get("/fulfillment/routing/").content.decode()
    assert f'id="warehouse-rule-{first.pk}" class="inactive"' in page

    carrier_rule = client.post(
        "/fulfillment/routing/rules/carrier/new/",
        {
            "name": "US east",
            "active": "on",
            "countries": "us",
            "provinces": "New Jersey, Kentucky",
            "services": "standard",
            "warehouses": "sh",
            "min_weight_grams": "",
            "max_weight_grams": "2000",
            "carrier": yto.pk,
            "service": "standard",
        },
    )
    assert carrier_rule.status_code == 302
    rule = CarrierRule.objects.get()
    assert (rule.countries, rule.provinces, rule.warehouses, rule.max_weight_grams) == (
        ["US"],
        ["New Jersey", "Kentucky"],
        ["SH"],
        2000,
    )

    client.post(f"/fulfillment/routing/rules/warehouse/{second.pk}/delete/")
    assert list(WarehouseRule.objects.values_list("name", flat=True)) == ["Shanghai+Zhejiang to BJ"]
    assert client.get(f"/fulfillment/routing/rules/warehouse/{second.pk}/").status_code == 404
    assert client.post("/fulfillment/routing/rules/carrier/999999/toggle/").status_code == 404
    assert client.get(f"/fulfillment/routing/rules/warehouse/{second.pk}/delete/").status_code == 405
    assert (
        login(role_users, "warehouse")
        .post(f"/fulfillment/routing/rules/warehouse/{first.pk}/delete/")
        .status_code
        == 403
    )
    assert WarehouseRule.objects.filter(pk=first.pk).exists()


def sf_form(**changes) -> dict:
    data = {
        "code": "sf",
        "name": "顺丰",
        "kind": "sf",
        "active": "on",
        "services": "standard, express",
        "cost_first_kg": "12",
        "cost_extra_kg": "4",
        "config": json.dumps(
            {"base_url": "http://127.0.0.1:8805", "partner_id": "OMS_DEMO", "checkword": SECRET}
        ),
    }
    data.update(changes)
    return data


def test_carrier_secrets_are_write_only(role_users):
    client = login(role_users, "manager")
    created = client.post("/fulfillment/carriers/new/", sf_form())
    assert created.status_code == 302
    carrier = Carrier.objects.get()
    assert (carrier.code, carrier.services, carrier.config["checkword"]) == (
        "SF",
        ["standard", "express"],
        SECRET,
    )

    listing = client.get("/fulfillment/carriers/").content.decode()
    assert SECRET not in listing and "checkword=••• set" in listing and "partner_id=OMS_DEMO" in listing
    edit = client.get(f"/fulfillment/carriers/{carrier.pk}/").content.decode()
    assert SECRET not in edit and "••• set" in edit

    def save(config: dict, **changes):
        return client.post(
            f"/fulfillment/carriers/{carrier.pk}/", sf_form(config=json.dumps(config), **changes)
        )

    kept = save({"base_url": "http://127.0.0.1:9999", "partner_id": "OMS_DEMO", "checkword": "••• set"})
    carrier.refresh_from_db()
    assert kept.status_code == 302
    assert carrier.config == {
        "base_url": "http://127.0.0.1:9999",
        "partner_id": "OMS_DEMO",
        "checkword": SECRET,
    }
    save({"base_url": "http://127.0.0.1:9999", "partner_id": "OMS_DEMO", "checkword": ""})
    carrier.refresh_from_db()
    assert carrier.config["checkword"] == SECRET

    # A form error never echoes a secret: neither the stored one nor one typed this time.
    typed = save(
        {"base_url": "http://x", "partner_id": "OMS_DEMO", "checkword": "typed-new-secret"},
        cost_first_kg="-1",
    )
    page = typed.content.decode()
    assert typed.status_code == 400 and "cost_first_kg" in errors_of(typed)
    assert "typed-new-secret" not in page and SECRET not in page
    unreadable = client.post(
        f"/fulfillment/carriers/{carrier.pk}/", sf_form(config='{"checkword": "typed-new-secret", oops}')
    )
    assert unreadable.status_code == 400 and errors_of(unreadable)["config"][0].startswith("Not valid JSON")
    assert "typed-new-secret" not in unreadable.content.decode()
    assert save(["not", "an", "object"]).status_code == 400
    missing = save({"base_url": "http://x", "checkword": "••• set"})  # SF needs its partner id
    assert missing.status_code == 400 and "partner_id" in errors_of(missing)["config"][0]
    carrier.refresh_from_db()
    assert carrier.config["checkword"] == SECRET and carrier.cost_first_kg == Decimal("12")

    save({"base_url": "http://127.0.0.1:9999", "partner_id": "OMS_DEMO", "checkword": "new-word"})
    carrier.refresh_from_db()
    assert carrier.config["checkword"] == "new-word"
    duplicate = client.post("/fulfillment/carriers/new/", sf_form(code="SF"))
    assert duplicate.status_code == 400 and "code" in errors_of(duplicate)
    assert client.post("/fulfillment/carriers/new/", sf_form(code="S F!")).status_code == 400
    manual = client.post("/fulfillment/carriers/new/", sf_form(code="YTO", kind="manual", config=""))
    assert manual.status_code == 302 and Carrier.objects.get(code="YTO").config == {}


def test_admin_pages_load_and_hide_carrier_secrets(role_users, make_order):
    carrier = Carrier.objects.create(
        code="SF",
        name="顺丰",
        kind=CarrierKind.SF,
        config={"base_url": "http://x", "partner_id": "P", "checkword": SECRET},
    )
    make_order()
    admin = login(role_users, "admin")
    for model in (
        "carrier",
        "warehouserule",
        "carrierrule",
        "routingdecision",
        "shipment",
        "shipmentline",
        "shipmentevent",
        "trackingevent",
        "wave",
        "customernotification",
    ):
        response = admin.get(f"/admin/fulfillment/{model}/")
        assert response.status_code == 200, model
        assert SECRET not in response.content.decode()
    change = admin.get(f"/admin/fulfillment/carrier/{carrier.pk}/change/")
    assert change.status_code == 200 and SECRET not in change.content.decode()
    assert (
        admin.get("/admin/fulfillment/shipment/add/").status_code == 403
    )  # shipments come from the services


def test_dry_run_shows_what_a_new_rule_would_route_differently(role_users, make_order, beijing):
    orders = [make_order() for _ in range(3)]
    client = login(role_users, "manager")
    before = client.get("/fulfillment/routing/dry-run/")
    assert before.status_code == 200
    assert {row.order_number for row in before.context["rows"]} == {o.number for o in orders}
    assert before.context["differences"] == 0 and 'data-differences="0"' in before.content.decode()

    client.post("/fulfillment/routing/rules/warehouse/new/", warehouse_rule_data(beijing))
    rule = WarehouseRule.objects.get()
    client.post(f"/fulfillment/routing/rules/warehouse/{rule.pk}/toggle/")  # new rules start switched off
    after = client.get("/fulfillment/routing/dry-run/?limit=2")
    rows = after.context["rows"]
    assert (
        len(rows) == 2 and after.context["differences"] == 2 and after.context["warehouse_differences"] == 2
    )
    assert [
        (r.decided_first_choice, r.decided_warehouse_rule, r.would_warehouse, r.would_warehouse_rule)
        for r in rows
    ] == [("SH", "", "BJ", "Shanghai to Beijing")] * 2
    page = after.content.decode()
    assert 'data-differences="2"' in page and page.count('data-differs="1"') == 2
    assert 'class="diff-new" data-field="would-warehouse">BJ<' in page

    for bad in ("abc", "0", "1001", "-3"):
        response = client.get(f"/fulfillment/routing/dry-run/?limit={bad}")
        assert response.status_code == 400 and 'data-error-for="limit"' in response.content.decode(), bad
    assert client.get("/fulfillment/routing/dry-run/?limit=1000").status_code == 200
