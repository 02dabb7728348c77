"""The desk's customer view: who a buyer is, masking, notes, expedite, the notification resend, access."""

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from desk.customers import BuyerKey, NotABuyer, buyer_key, buyer_key_of_order, customer_view, phone_full
from desk.models import CustomerNote
from fulfillment.kanban import KanbanFilters, kanban_board
from fulfillment.models import Carrier, CarrierKind, CustomerNotification, Shipment
from orders.models import Order, OrderEvent, OrderEventType, OrderStatus, Platform, Priority, Store
from orders.services import BuyerInput, ReceiverInput
from tests.conftest import PASSWORD
from tests.fulfillment.helpers import ship_parcel

pytestmark = pytest.mark.django_db
PHONE = "13312343069"


def login(user) -> Client:
    client = Client()
    assert client.login(username=user.username, password=PASSWORD)
    client.cookies["django_language"] = "en"  # English msgids: assertions do not depend on the catalogue
    return client


def receiver(phone: str = PHONE, n: int = 1) -> ReceiverInput:
    return ReceiverInput(name="王小贝", phone=phone, province="上海市", city="上海市", district="浦东新区",
                         address=f"张江路 {n} 号")


@pytest.fixture
def carrier(db) -> Carrier:
    return Carrier.objects.create(code="YTO", name="圆通", kind=CarrierKind.MANUAL, cost_first_kg=Decimal("6"),
                                  cost_extra_kg=Decimal("2"))


@pytest.fixture
def pdd_store(db) -> Store:
    return Store.objects.create(platform=Platform.PDD, code="pdd", name="拼多多店")


@pytest.fixture
def masked_only_user(db):
    """A desk user without the PII permission (customer service's desk right alone)."""
    user = get_user_model().objects.create_user(username="desk_no_pii", password=PASSWORD)
    user.user_permissions.add(*(Permission.objects.get(codename=code, content_type__app_label=app)
                                for app, code in [("orders", "view_order"), ("aftersales", "work_ticket"),
                                                  ("aftersales", "add_ticket")]))
    return user


# --- The buyer key ---------------------------------------------------------------------------------

@pytest.mark.parametrize("phone", ["133****3069", "3069", "*******3069", "", "1331234306a"])
def test_a_masked_phone_or_a_last_four_is_not_a_buyer(phone):
    assert phone_full(phone) == ""
    with pytest.raises(NotABuyer) as refused:
        buyer_key(phone=phone)
    assert refused.value.code == "not_a_buyer"
    # A store without a buyer id is no key either.
    with pytest.raises(NotABuyer):
        buyer_key(store_id=1, buyer_id="  ", phone=phone)


def test_full_phones_and_store_buyer_ids_are_buyers():
    assert phone_full("+86 133-1234-3069") == PHONE
    assert phone_full("0086 13312343069") == PHONE
    assert buyer_key(phone="133 1234 3069") == BuyerKey(phone=PHONE)
    assert buyer_key(store_id=7, buyer_id=" tb-9 ") == BuyerKey(store_id=7, buyer_id="tb-9")
    # A buyer id means nothing without its store.
    assert buyer_key(buyer_id="tb-9", phone=PHONE) == BuyerKey(phone=PHONE)


def test_an_encrypted_receiver_gives_no_phone_key(make_order, pdd_store):
    order = make_order(store=pdd_store, paid=False, receiver=receiver("133****3069"), buyer=BuyerInput(),
                       receiver_ciphertext={"phone": "~AgAAAA=="})
    with pytest.raises(NotABuyer):
        buyer_key_of_order(Order.objects.get(pk=order.pk))


# --- The view ----------------------------------------------------------------------------------------

@pytest.fixture
def history(make_order, manual_store, pdd_store, taobao_store):
    """One buyer across two stores (by phone, and by buyer id with another phone), a stranger, and a PDD order
    whose masked phone ends in the same four digits."""
    now = timezone.now()
    first = make_order(receiver=receiver(), buyer=BuyerInput(id="buyer-1", name="王小贝", email="b@example.com"),
                       placed_at=now - timedelta(days=30))
    other_phone = make_order(receiver=receiver("13900001111", 2), buyer=BuyerInput(id="buyer-1"),
                             placed_at=now - timedelta(days=10))
    elsewhere = make_order(store=manual_store, receiver=receiver(PHONE, 3), buyer=BuyerInput(id="wx-77"),
                           placed_at=now - timedelta(days=1), priority=Priority.VIP)
    stranger = make_order(receiver=receiver("13800008888", 4), buyer=BuyerInput(id="buyer-2"))
    masked = make_order(store=pdd_store, paid=False, receiver=receiver("133****3069", 5), buyer=BuyerInput(),
                        receiver_ciphertext={"phone": "~AgAAAA=="})
    return {"first": first, "other_phone": other_phone, "elsewhere": elsewhere, "stranger": stranger,
            "masked": masked}


def test_the_customer_spans_stores_by_phone_and_buyer_id(history, role_users):
    key = buyer_key_of_order(Order.objects.get(pk=history["first"].pk))
    assert key == BuyerKey(store_id=history["first"].store_id, buyer_id="buyer-1", phone=PHONE)
    agent = role_users["customer_service"]
    agent.has_perm("orders.view_pii")  # the permission cache is the request's, not the view's
    with CaptureQueriesContext(connection) as queries:
        view = customer_view(key=key, user=agent)
    # Summary, orders, parcel lines, parcels, tracking, tickets, notes: the same count for any history.
    assert len(queries) == 7, [q["sql"][:120] for q in queries.captured_queries]
    numbers = [row.order.number for row in view.orders]
    assert numbers == [history["elsewhere"].number, history["other_phone"].number, history["first"].number]
    assert history["stranger"].number not in numbers and history["masked"].number not in numbers
    assert view.order_count == 3
    paid = sum((Order.objects.get(pk=history[k].pk).paid_amount for k in ("first", "other_phone", "elsewhere")),
               Decimal("0"))
    assert view.totals == [("CNY", paid)]
    assert view.first_order_at == Order.objects.get(pk=history["first"].pk).placed_at
    assert view.last_order_at == Order.objects.get(pk=history["elsewhere"].pk).placed_at
    assert view.vip_tier == "VIP"
    assert not view.masked and view.phone == PHONE


def test_a_masked_anchor_shows_only_its_order(history, role_users):
    page = login(role_users["customer_service"]).get(f"/desk/customer/{history['masked'].pk}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-error="not_a_buyer"' in html
    assert history["first"].number not in html and history["elsewhere"].number not in html


def test_roles_without_pii_see_masked_data(history, role_users, masked_only_user):
    url = f"/desk/customer/{history['first'].pk}/"
    full = login(role_users["customer_service"]).get(url).content.decode()
    assert PHONE in full and "王小贝" in full and "张江路 1 号" in full
    page = login(masked_only_user).get(url)
    assert page.status_code == 200
    html = page.content.decode()
    assert PHONE not in html and "13900001111" not in html and "王小贝" not in html and "张江路" not in html
    assert "133****3069" in html and "王**" in html and 'data-field="masked"' in html
    # The URL holds an order id only: no phone or buyer id travels in it.
    assert "buyer-1" not in url and PHONE not in url


def test_the_warehouse_and_finance_get_403(history, role_users):
    order = history["first"]
    for role in ("warehouse", "finance"):
        client = login(role_users[role])
        assert client.get(f"/desk/customer/{order.pk}/").status_code == 403
        assert client.post(f"/desk/customer/{order.pk}/note/", {"text": "x"}).status_code == 403
        assert client.post(f"/desk/customer/{order.pk}/orders/{order.pk}/expedite/").status_code == 403
        assert client.post(f"/desk/customer/{order.pk}/orders/{order.pk}/resend/").status_code == 403
    assert CustomerNote.objects.count() == 0
    assert Order.objects.get(pk=order.pk).priority == Priority.NORMAL


# --- Notes -----------------------------------------------------------------------------------------

def test_a_note_is_kept_under_both_keys_with_author(history, role_users):
    agent = role_users["customer_service"]
    client = login(agent)
    answer = client.post(f"/desk/customer/{history['first'].pk}/note/", {"text": "  prefers SF  "})
    assert answer.status_code == 302
    note = CustomerNote.objects.get()
    assert (note.store_id, note.buyer_id, note.phone, note.text, note.author) == (
        history["first"].store_id, "buyer-1", PHONE, "prefers SF", agent)
    # The order in the other store (same phone, another buyer id) finds the note through the phone.
    html = client.get(f"/desk/customer/{history['elsewhere'].pk}/").content.decode()
    assert "prefers SF" in html and f'data-note="{note.pk}"' in html


def test_empty_and_too_long_notes_are_refused(history, role_users):
    client = login(role_users["customer_service"])
    empty = client.post(f"/desk/customer/{history['first'].pk}/note/", {"text": "   "})
    assert empty.status_code == 400 and "The note is empty." in empty.content.decode()
    long = client.post(f"/desk/customer/{history['first'].pk}/note/", {"text": "x" * 1001})
    assert long.status_code == 400 and "A note has at most 1000 characters." in long.content.decode()
    masked = client.post(f"/desk/customer/{history['masked'].pk}/note/", {"text": "who?"})
    assert masked.status_code == 302
    assert CustomerNote.objects.count() == 0


# --- Expedite --------------------------------------------------------------------------------------

def test_expedite_raises_priority_moves_the_parcel_up_with_one_event(make_order, role_users, warehouse, carrier):
    orders = [make_order(receiver=receiver(f"1380000000{n}", n), buyer=BuyerInput(id=f"b{n}")) for n in range(3)]
    parcels = [Shipment.objects.filter(lines__order=o).distinct().get() for o in orders]
    board = kanban_board(warehouse=warehouse, filters=KanbanFilters())
    before = [c.shipment.number for c in board.columns[0].cards]
    assert before == [p.number for p in parcels]
    last = orders[-1]
    events_before = OrderEvent.objects.filter(order=last).count()
    client = login(role_users["customer_service"])
    answer = client.post(f"/desk/customer/{last.pk}/orders/{last.pk}/expedite/")
    assert answer.status_code == 302
    last.refresh_from_db()
    assert last.priority == Priority.HIGH
    event = OrderEvent.objects.filter(order=last).latest("id")
    assert OrderEvent.objects.filter(order=last).count() == events_before + 1
    assert event.type == OrderEventType.UPDATED and event.actor == role_users["customer_service"]
    assert event.data["priority"] == {"from": 0, "to": 1} and event.data["expedite"] is True
    assert [p["number"] for p in event.data["parcels"]] == [parcels[-1].number]
    parcel = Shipment.objects.get(pk=parcels[-1].pk)
    assert parcel.priority == Priority.HIGH and parcel.sla_due_at <= timezone.now()
    after = [c.shipment.number for c in kanban_board(warehouse=warehouse, filters=KanbanFilters()).columns[0].cards]
    assert after == [parcels[2].number, parcels[0].number, parcels[1].number]
    # The other orders did not move.
    assert {Shipment.objects.get(pk=p.pk).sla_due_at for p in parcels[:2]} == {p.sla_due_at for p in parcels[:2]}

    again = client.post(f"/desk/customer/{last.pk}/orders/{last.pk}/expedite/", follow=True)
    assert "already expedited" in again.content.decode()
    assert OrderEvent.objects.filter(order=last).count() == events_before + 1


def test_a_shipped_order_is_not_expedited(make_order, role_users, warehouse, carrier):
    order = make_order(receiver=receiver(), buyer=BuyerInput(id="b1"))
    ship_parcel(Shipment.objects.filter(lines__order=order).distinct().get())
    order.refresh_from_db()
    assert order.status == OrderStatus.SHIPPED
    events_before = OrderEvent.objects.filter(order=order).count()
    answer = login(role_users["customer_service"]).post(f"/desk/customer/{order.pk}/orders/{order.pk}/expedite/",
                                                       follow=True)
    assert "cannot be hurried while it is Shipped" in answer.content.decode()
    order.refresh_from_db()
    assert order.priority == Priority.NORMAL
    assert OrderEvent.objects.filter(order=order).count() == events_before


def test_another_buyers_order_cannot_be_acted_on_through_this_page(history, role_users):
    stranger = history["stranger"]
    answer = login(role_users["customer_service"]).post(
        f"/desk/customer/{history['first'].pk}/orders/{stranger.pk}/expedite/")
    assert answer.status_code == 404
    assert Order.objects.get(pk=stranger.pk).priority == Priority.NORMAL


# --- Resend the shipping notification --------------------------------------------------------------

def test_resend_queues_a_new_outbox_row(make_order, role_users, warehouse, carrier):
    order = make_order(receiver=receiver(), buyer=BuyerInput(id="b1", email="buyer@example.com"))
    parcel = ship_parcel(Shipment.objects.filter(lines__order=order).distinct().get())
    assert list(CustomerNotification.objects.values_list("kind", flat=True)) == ["shipped"]
    client = login(role_users["customer_service"])
    answer = client.post(f"/desk/customer/{order.pk}/orders/{order.pk}/resend/")
    assert answer.status_code == 302
    resent = CustomerNotification.objects.get(kind="shipped#2")
    assert (resent.order_id, resent.shipment_id, resent.recipient, resent.status) == (
        order.pk, parcel.pk, "buyer@example.com", "queued")
    client.post(f"/desk/customer/{order.pk}/orders/{order.pk}/resend/")
    assert sorted(CustomerNotification.objects.values_list("kind", flat=True)) == ["shipped", "shipped#2",
                                                                                  "shipped#3"]


def test_resend_before_shipping_is_refused(make_order, role_users, warehouse, carrier):
    order = make_order(receiver=receiver(), buyer=BuyerInput(id="b1", email="buyer@example.com"))
    answer = login(role_users["customer_service"]).post(f"/desk/customer/{order.pk}/orders/{order.pk}/resend/",
                                                        follow=True)
    assert "has no parcel that has left" in answer.content.decode()
    assert CustomerNotification.objects.count() == 0


def test_a_shipped_parcel_links_the_buyers_public_tracking_page(make_order, role_users, warehouse, carrier):
    order = make_order(receiver=receiver(), buyer=BuyerInput(id="b1"))
    parcel = ship_parcel(Shipment.objects.filter(lines__order=order).distinct().get())
    page = login(role_users["customer_service"]).get(f"/desk/customer/{order.pk}/").content.decode()
    link = re.search(r'<a href="(/t/[^"]+)"[^>]*data-field="tracking-link"', page)
    assert link, page
    tracking = Client().get(link.group(1))  # no login: the buyer's own page
    assert tracking.status_code == 200 and parcel.tracking_number in tracking.content.decode()
