"""The desk search: each kind of key finds its order, ranking, masking, permissions and the indexes it uses."""

from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db import connection
from django.urls import reverse
from rest_framework.test import APIClient

from aftersales.models import TicketReason, TicketType
from aftersales.services import TicketLineInput
from desk.selectors import MAX_PER_KIND, PAGE_SIZE, SearchKind, desk_search, desk_search_classify
from oms.exceptions import DomainError
from orders.models import Order, Platform, Store
from orders.services import BuyerInput, ReceiverInput
from pipeline.tickets import ticket_open
from tests.aftersales.helpers import ship_order
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


@pytest.fixture
def orders(make_order):
    """Three orders: 王小贝 (a plain phone), Alice Zhang, and a Douyin order whose receiver came masked."""
    wang = make_order(platform_order_id="TB-2026-0001",
                      receiver=ReceiverInput(name="王小贝", phone="13312343069", province="上海市", city="上海市",
                                             district="浦东新区", address="张江路 88 号"),
                      buyer=BuyerInput(id="b-wang", name="王小贝"))
    alice = make_order(platform_order_id="TB-2026-0002",
                       receiver=ReceiverInput(name="Alice Zhang", phone="13987655555", province="北京市",
                                              city="北京市", district="朝阳区", address="建国路 1 号"),
                       buyer=BuyerInput(id="b-alice", name="alice_z"))
    douyin = Store.objects.create(code="dy", name="抖音店", platform=Platform.DOUYIN)
    masked = make_order(store=douyin, platform_order_id="6920000000000000001",
                        receiver=ReceiverInput(name="李*", phone="133****3069", province="浙江省", city="杭州市",
                                               district="西湖区", address="文三路***"),
                        buyer=BuyerInput(id="dy-1", name=""))
    return {"wang": wang, "alice": alice, "masked": masked}


def numbers(result) -> list[str]:
    return [hit.order.number for hit in result.hits]


def test_the_database_fills_the_last_four_digits_also_for_bulk_inserts_and_masked_copies(orders, taobao_store):
    assert Order.objects.get(pk=orders["wang"].pk).receiver_phone_last4 == "3069"
    assert Order.objects.get(pk=orders["masked"].pk).receiver_phone_last4 == "3069"
    bulk = Order(number="SO-BULK-1", store=taobao_store, platform_order_id="BULK-1", receiver_phone=" 13800001111 ",
                 placed_at=orders["wang"].placed_at)
    Order.objects.bulk_create([bulk])
    assert Order.objects.get(number="SO-BULK-1").receiver_phone_last4 == "1111"


def test_order_number_finds_its_order_typed_in_lower_case_too(orders, role_users):
    user = role_users["customer_service"]
    assert numbers(desk_search(query=orders["alice"].number, user=user)) == [orders["alice"].number]
    result = desk_search(query=f"  {orders['alice'].number.lower()} ", user=user)
    assert numbers(result) == [orders["alice"].number]
    assert result.hits[0].kinds == [SearchKind.ORDER_NUMBER]


def test_platform_order_id_finds_its_order(orders, role_users):
    result = desk_search(query="6920000000000000001", user=role_users["customer_service"])
    assert numbers(result) == [orders["masked"].number]
    assert result.hits[0].kinds == [SearchKind.PLATFORM_ORDER_ID]


def test_full_phone_finds_the_plain_order_first_and_flags_the_encrypted_one(orders, role_users):
    result = desk_search(query="133 1234 3069", user=role_users["customer_service"])
    assert numbers(result) == [orders["wang"].number, orders["masked"].number]
    assert [hit.kinds for hit in result.hits] == [[SearchKind.PHONE], [SearchKind.PHONE_ENCRYPTED]]
    assert result.hits[0].note == ""
    assert "仅后四位相同" in result.hits[1].note  # the active language is the default, zh-hans
    # +86 is the same number.
    assert numbers(desk_search(query="+8613312343069", user=role_users["customer_service"]))[0] == \
        orders["wang"].number


def test_last_four_digits_find_plain_and_masked_receivers(orders, role_users):
    result = desk_search(query="3069", user=role_users["customer_service"])
    assert sorted(numbers(result)) == sorted([orders["wang"].number, orders["masked"].number])
    assert {tuple(hit.kinds) for hit in result.hits} == {(SearchKind.LAST_FOUR,)}
    assert numbers(desk_search(query="5555", user=role_users["customer_service"])) == [orders["alice"].number]
    assert numbers(desk_search(query="0000", user=role_users["customer_service"])) == []


def test_tracking_number_finds_its_order(orders, role_users):
    ship_order(orders["alice"])
    tracking = orders["alice"].shipment_lines.get(order_line__line_no=1).shipment.tracking_number
    assert tracking.startswith("YT3")
    result = desk_search(query=tracking.lower(), user=role_users["customer_service"])
    assert numbers(result) == [orders["alice"].number]
    assert result.hits[0].kinds == [SearchKind.TRACKING_NUMBER]


def test_rma_number_finds_its_order(orders, role_users):
    ship_order(orders["wang"])
    line = orders["wang"].lines.order_by("line_no").first()
    ticket = ticket_open(order_id=orders["wang"].pk, type=TicketType.RETURN_REFUND, reason=TicketReason.QUALITY,
                         lines=[TicketLineInput(order_line_id=line.pk, quantity=1)])
    result = desk_search(query=ticket.number, user=role_users["customer_service"])
    assert numbers(result) == [orders["wang"].number]
    assert result.hits[0].kinds == [SearchKind.RMA_NUMBER]


def test_a_return_parcels_tracking_number_finds_the_order_of_its_ticket(orders, role_users):
    ship_order(orders["wang"])
    line = orders["wang"].lines.order_by("line_no").first()
    ticket_open(order_id=orders["wang"].pk, type=TicketType.RETURN_REFUND, reason=TicketReason.QUALITY,
                lines=[TicketLineInput(order_line_id=line.pk, quantity=1)], return_tracking_number="SF7000000001")
    result = desk_search(query="sf7000000001", user=role_users["customer_service"])
    assert numbers(result) == [orders["wang"].number]
    assert result.hits[0].kinds == [SearchKind.TRACKING_NUMBER]
    assert numbers(desk_search(query="SF7000000002", user=role_users["customer_service"])) == []


def test_names_match_by_prefix_under_three_characters_and_anywhere_from_three(orders, role_users):
    user = role_users["customer_service"]
    two = desk_search(query="王小", user=user)
    assert numbers(two) == [orders["wang"].number]
    assert two.hits[0].kinds == [SearchKind.RECEIVER_NAME, SearchKind.BUYER_NAME]
    assert numbers(desk_search(query="小贝", user=user)) == []  # not a prefix, too short for trigrams
    assert numbers(desk_search(query="王小贝", user=user)) == [orders["wang"].number]
    assert numbers(desk_search(query="zhang", user=user)) == [orders["alice"].number]  # case-insensitive
    assert numbers(desk_search(query="lice_", user=user)) == [orders["alice"].number]  # _ is not a wildcard
    assert numbers(desk_search(query="100%", user=user)) == []


def test_classification_of_inputs():
    assert desk_search_classify(query="1234") == [SearchKind.PLATFORM_ORDER_ID, SearchKind.LAST_FOUR]
    assert desk_search_classify(query="13312343069") == [
        SearchKind.ORDER_NUMBER, SearchKind.PLATFORM_ORDER_ID, SearchKind.TRACKING_NUMBER, SearchKind.RMA_NUMBER,
        SearchKind.PHONE, SearchKind.PHONE_ENCRYPTED]
    assert desk_search_classify(query="王小") == [SearchKind.RECEIVER_NAME, SearchKind.BUYER_NAME]
    assert desk_search_classify(query="   ") == []


def test_masked_receiver_without_the_pii_permission(orders, role_users):
    agent = get_user_model().objects.create_user(username="agent", password=PASSWORD)
    agent.user_permissions.add(*Permission.objects.filter(content_type__app_label="aftersales",
                                                          codename="work_ticket"),
                               *Permission.objects.filter(content_type__app_label="orders", codename="view_order"))
    hit = desk_search(query="王小贝", user=agent).hits[0]
    assert (hit.receiver_name, hit.receiver_phone) == ("王**", "133****3069")
    hit = desk_search(query="王小贝", user=role_users["customer_service"]).hits[0]
    assert (hit.receiver_name, hit.receiver_phone) == ("王小贝", "13312343069")


def test_desk_page_masks_phones_for_a_user_without_pii(orders, client):
    agent = get_user_model().objects.create_user(username="agent", password=PASSWORD)
    agent.user_permissions.add(Permission.objects.get(content_type__app_label="aftersales", codename="work_ticket"),
                               Permission.objects.get(content_type__app_label="orders", codename="view_order"))
    client.login(username="agent", password=PASSWORD)
    response = client.get(reverse("desk:search"), {"q": "3069"})
    html = response.content.decode()
    assert response.status_code == 200
    assert "133****3069" in html
    assert "13312343069" not in html
    assert "王小贝" not in html.split("<tbody>")[1]
    assert reverse("orders:detail", args=[orders["wang"].pk]) in html


def test_desk_page_for_customer_service_and_managers_shows_the_full_phone(orders, client, role_users):
    for role in ("customer_service", "manager"):
        client.login(username=f"u_{role}", password=PASSWORD)
        response = client.get(reverse("desk:search"), {"q": orders["wang"].number})
        assert response.status_code == 200
        assert "13312343069" in response.content.decode()


def test_warehouse_and_finance_get_403_anonymous_goes_to_login(orders, client, role_users):
    for role in ("warehouse", "finance"):
        client.login(username=f"u_{role}", password=PASSWORD)
        assert client.get(reverse("desk:search"), {"q": "3069"}).status_code == 403
    client.logout()
    response = client.get(reverse("desk:search"), {"q": "3069"})
    assert response.status_code == 302
    assert "/login" in response["Location"] or "login" in response["Location"]


def test_too_long_a_query_is_a_400_with_a_message_not_a_500(client, role_users):
    client.login(username="u_customer_service", password=PASSWORD)
    response = client.get(reverse("desk:search"), {"q": "x" * 65})
    assert response.status_code == 400
    with pytest.raises(DomainError) as refused:
        desk_search(query="x" * 65, user=role_users["customer_service"])
    assert refused.value.code == "search_query_too_long"
    assert client.get(reverse("desk:search"), {"q": "3069", "page": "10**100"}).status_code == 200


def test_last_four_results_are_paged_and_capped(taobao_store, role_users):
    placed = "2026-11-01T08:00:00+00:00"
    Order.objects.bulk_create([
        Order(number=f"SO9{n:07d}", store=taobao_store, platform_order_id=f"BULK-{n}", placed_at=placed,
              receiver_phone=f"13{n:05d}07777", total_amount=Decimal("1")) for n in range(MAX_PER_KIND + 5)])
    user = role_users["customer_service"]
    first = desk_search(query="7777", user=user)
    assert (first.total, first.capped, len(first.hits)) == (MAX_PER_KIND, True, PAGE_SIZE)
    last = desk_search(query="7777", user=user, page=999)
    assert last.page == MAX_PER_KIND // PAGE_SIZE
    assert not set(numbers(first)) & set(numbers(last))


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the GIN and pattern indexes are PostgreSQL's")
def test_each_kind_uses_an_index_not_a_sequential_scan(orders):
    from desk.selectors import _order_ids

    with connection.cursor() as cursor:
        cursor.execute("SET enable_seqscan = off")  # a tiny table: make the planner show what it can use
        try:
            for kind, text in [(SearchKind.LAST_FOUR, "3069"), (SearchKind.RECEIVER_NAME, "王小"),
                               (SearchKind.RECEIVER_NAME, "王小贝"), (SearchKind.BUYER_NAME, "alice"),
                               (SearchKind.PHONE, "13312343069"), (SearchKind.PHONE_ENCRYPTED, "13312343069"),
                               (SearchKind.PLATFORM_ORDER_ID, "TB-2026-0001")]:
                from django.test.utils import CaptureQueriesContext

                with CaptureQueriesContext(connection) as captured:
                    _order_ids(kind, text)
                cursor.execute("EXPLAIN " + captured.captured_queries[-1]["sql"])
                plan = "\n".join(row[0] for row in cursor.fetchall())
                assert "Seq Scan on orders_order" not in plan, (kind, plan)
        finally:
            cursor.execute("SET enable_seqscan = on")


def test_the_json_search_masks_phones_for_a_user_without_pii_and_refuses_the_warehouse(orders, role_users):
    agent = get_user_model().objects.create_user(username="agent", password=PASSWORD)
    agent.user_permissions.add(Permission.objects.get(content_type__app_label="aftersales", codename="work_ticket"),
                               Permission.objects.get(content_type__app_label="orders", codename="view_order"))
    api = APIClient()
    api.force_authenticate(agent)
    response = api.get("/api/v1/desk/search/", {"q": "3069"})
    assert response.status_code == 200, response.content
    body = response.json()
    assert "last_four" in body["kinds"] and body["total"] >= 1
    assert "13312343069" not in response.content.decode() and "王小贝" not in response.content.decode()
    hit = next(h for h in body["hits"] if h["number"] == orders["wang"].number)
    assert (hit["receiver_name"], hit["receiver_phone"], hit["matched"]) == ("王**", "133****3069", ["last_four"])
    api.force_authenticate(role_users["customer_service"])
    hit = next(h for h in api.get("/api/v1/desk/search/", {"q": "3069"}).json()["hits"]
               if h["number"] == orders["wang"].number)
    assert hit["receiver_phone"] == "13312343069"
    for role in ("warehouse", "finance"):
        api.force_authenticate(role_users[role])
        assert api.get("/api/v1/desk/search/", {"q": "3069"}).status_code == 403
    api.force_authenticate(None)
    assert APIClient().get("/api/v1/desk/search/", {"q": "3069"}).status_code == 401
    api.force_authenticate(role_users["customer_service"])
    assert api.get("/api/v1/desk/search/", {"q": " "}).json()["hits"] == []
    for bad in ("x" * 500, "a\x00b"):
        answer = api.get("/api/v1/desk/search/", {"q": bad})
        assert answer.status_code == 400 and answer.json()["code"] and answer.json()["message"], bad
