"""Held orders do not jam the warehouse: their parcels leave "To pick" for a held lane, waves never take them,
a wave can drop a parcel or be cancelled, and starting a wave picks what can be picked and names the rest."""

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from fulfillment import services
from fulfillment.exceptions import MoveRefused
from fulfillment.models import Shipment, ShipmentEvent, ShipmentEventType, ShipmentStatus, Wave
from orders import services as order_services
from orders.models import HoldReason, OrderStatus
from orders.services import BuyerInput, ReceiverInput
from pipeline import orders as order_flows
from pipeline import shipping
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db
SS = ShipmentStatus
HTMX = {"HTTP_HX_REQUEST": "true"}


def login(role_users, role: str = "warehouse") -> Client:
    client = Client()
    assert client.login(username=role_users[role].username, password=PASSWORD)
    client.cookies["django_language"] = "en"
    return client


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def lane(html: str, status: str) -> str:
    column = re.search(rf'<section class="kanban-column[^"]*" data-status="{status}".*?</section>', html, re.S)
    assert column, status
    return column.group(0)


def cards_in(html: str, status: str) -> list[str]:
    return re.findall(r'<span class="mono kc-number">([^<]+)</span>', lane(html, status))


def count_in(html: str, status: str) -> int:
    return int(re.search(rf'data-count-for="{status}"[^>]*>(\d+)<', html).group(1))


@pytest.fixture
def parcels(make_order):
    """Parcels waiting in SH, one order each (own buyer and address, so nothing merges)."""
    counter = {"n": 0}

    def make(count: int = 1) -> list[Shipment]:
        made = []
        for _ in range(count):
            counter["n"] += 1
            n = counter["n"]
            receiver = ReceiverInput(name=f"买家{n}", phone=f"133123400{n:02d}", province="上海市", city="上海市",
                                     district="浦东新区", address=f"张江路 {n} 号")
            order = make_order(buyer=BuyerInput(id=f"held-{n}", name=f"买家{n}"), receiver=receiver)
            order.refresh_from_db()
            assert order.status == OrderStatus.READY
            made.append(Shipment.objects.filter(lines__order=order).distinct().get())
        return made

    return make


def hold(shipment: Shipment, reason: str = HoldReason.ADDRESS) -> None:
    order = shipment.lines.first().order
    order_services.order_hold(order_id=order.pk, hold_reason=reason, note="门牌号缺失")


def make_most_overdue(shipment: Shipment) -> None:
    Shipment.objects.filter(pk=shipment.pk).update(sla_due_at=timezone.now() - timedelta(hours=5))


# --- The board -------------------------------------------------------------------------------------


def test_a_held_parcel_leaves_to_pick_for_the_held_lane_with_its_reason_and_no_pick_button(role_users, parcels,
                                                                                             warehouse):
    held, free = parcels(2)
    make_most_overdue(held)
    hold(held)
    client = login(role_users)

    html = client.get(f"/fulfillment/kanban/{warehouse.code}/").content.decode()

    assert cards_in(html, SS.TO_PICK) == [free.number]
    assert cards_in(html, "held") == [held.number]
    assert (count_in(html, SS.TO_PICK), count_in(html, "held")) == (1, 1)
    held_lane = lane(html, "held")
    order_number = held.lines.first().order.number
    assert f"{order_number}: Address problem" in held_lane and "data-hold" in held_lane
    assert 'data-move-to="picking"' not in held_lane
    assert 'data-move-to="picking"' in lane(html, SS.TO_PICK)
    counts = client.get(f"/fulfillment/kanban/{warehouse.code}/counts/", **HTMX).content.decode()
    assert (count_in(counts, SS.TO_PICK), count_in(counts, "held")) == (1, 1)
    column = client.get(f"/fulfillment/kanban/{warehouse.code}/column/held/", **HTMX).content.decode()
    assert held.number in column and free.number not in column

    # Released: back among the work, nothing left in the held lane.
    order = held.lines.first().order
    order_flows.order_release_hold(order_id=order.pk, hold_reason=HoldReason.ADDRESS)
    html = client.get(f"/fulfillment/kanban/{warehouse.code}/").content.decode()
    assert sorted(cards_in(html, SS.TO_PICK)) == sorted([held.number, free.number])
    assert cards_in(html, "held") == [] and count_in(html, "held") == 0


def test_a_merged_parcel_with_one_held_order_is_held(role_users, make_order, warehouse):
    first, second = make_order(), make_order()  # same buyer and address: one parcel
    parcel = Shipment.objects.filter(lines__order=first).distinct().get()
    assert Shipment.objects.filter(lines__order=second).distinct().get() == parcel
    order_services.order_hold(order_id=second.pk, hold_reason=HoldReason.RISK)
    html = login(role_users).get(f"/fulfillment/kanban/{warehouse.code}/").content.decode()
    assert cards_in(html, "held") == [parcel.number] and cards_in(html, SS.TO_PICK) == []
    assert f"{second.number}: Risk review" in lane(html, "held") and first.number + ":" not in lane(html, "held")


def test_the_board_query_count_does_not_grow_with_held_parcels(role_users, parcels, warehouse):
    client = login(role_users)
    first = parcels(1)
    hold(first[0])
    client.get(f"/fulfillment/kanban/{warehouse.code}/")
    with CaptureQueriesContext(connection) as few:
        client.get(f"/fulfillment/kanban/{warehouse.code}/")
    for shipment in parcels(3):
        hold(shipment)
    with CaptureQueriesContext(connection) as more:
        html = client.get(f"/fulfillment/kanban/{warehouse.code}/").content.decode()
    assert count_in(html, "held") == 4
    assert len(more.captured_queries) == len(few.captured_queries)


# --- Waves -----------------------------------------------------------------------------------------


def test_a_wave_by_rule_skips_held_parcels(role_users, parcels, warehouse):
    held, free = parcels(2)
    make_most_overdue(held)
    hold(held)
    response = login(role_users).post("/fulfillment/waves/new-by-rule/", {"warehouse": warehouse.code, "limit": 10},
                                      follow=True)
    wave = Wave.objects.get()
    assert list(wave.shipments.values_list("number", flat=True)) == [free.number]
    assert messages_of(response) == [f"Wave {wave.number} created with 1 parcel."]


def test_a_wave_of_only_held_parcels_by_rule_is_refused(parcels, warehouse):
    (held,) = parcels(1)
    hold(held)
    with pytest.raises(Exception) as refused:
        services.wave_create_by_rule(warehouse_id=warehouse.pk, limit=10)
    assert refused.value.code == "wave_empty" and not Wave.objects.exists()


def test_a_wave_by_hand_refuses_held_parcels_with_their_numbers(role_users, parcels, warehouse):
    held, free = parcels(2)
    client = login(role_users)
    page = client.get(f"/fulfillment/waves/?warehouse={warehouse.code}").content.decode()
    assert f'value="{held.pk}"' in page  # ticked before the hold …
    hold(held)
    page = client.get(f"/fulfillment/waves/?warehouse={warehouse.code}").content.decode()
    assert f'name="shipments" value="{held.pk}"' not in page  # … no longer offered
    response = client.post("/fulfillment/waves/new/",
                           {"warehouse": warehouse.code, "shipments": [held.pk, free.pk]}, follow=True)
    assert messages_of(response) == [
        f"Refused: Their order is on hold, so they cannot be picked: {held.number}."]
    assert not Wave.objects.exists() and not Shipment.objects.filter(wave__isnull=False).exists()


def test_starting_a_wave_picks_the_pickable_and_reports_the_held(role_users, parcels, warehouse):
    """Before: one held parcel made the whole wave refuse with 409 and nothing could be done about it."""
    ready, held, also_ready = parcels(3)
    wave = services.wave_create(shipment_ids=[ready.pk, held.pk, also_ready.pk])
    hold(held)
    client = login(role_users)
    detail = client.get(f"/fulfillment/waves/{wave.pk}/").content.decode()
    assert 'data-held="1"' in detail and detail.count('data-action="wave-remove"') == 3

    response = client.post(f"/fulfillment/waves/{wave.pk}/start/", follow=True)

    assert response.status_code == 200
    assert messages_of(response) == [
        f"Wave {wave.number} started: 2 parcels are being picked.",
        f"Not picked, their order is on hold: {held.number}. Remove them from the wave or release the order.",
    ]
    statuses = dict(Shipment.objects.filter(wave=wave).values_list("number", "status"))
    assert statuses == {ready.number: SS.PICKING, held.number: SS.TO_PICK, also_ready.number: SS.PICKING}
    wave.refresh_from_db()
    assert wave.status == Wave.Status.PICKING
    skipped = ShipmentEvent.objects.get(shipment=held, type=ShipmentEventType.WAVE_SKIPPED)
    assert skipped.data == {"wave": wave.number, "why": "held"} and "Address problem" in skipped.reason

    # The held parcel can now leave the started wave; the picked ones cannot.
    assert 'data-action="wave-cancel"' not in response.content.decode()
    removed = client.post(f"/fulfillment/waves/{wave.pk}/remove/", {"shipment": held.pk}, follow=True)
    assert messages_of(removed) == [
        f"Parcel {held.number} left wave {wave.number}: it waits to be picked again."]
    assert Shipment.objects.get(pk=held.pk).wave_id is None
    assert ShipmentEvent.objects.filter(shipment=held, type=ShipmentEventType.WAVE_REMOVED).count() == 1
    refused = client.post(f"/fulfillment/waves/{wave.pk}/remove/", {"shipment": ready.pk}, follow=True)
    assert messages_of(refused)[0].startswith(f"Refused: Parcel {ready.number} is Picking")
    assert Shipment.objects.get(pk=ready.pk).wave_id == wave.pk


def test_a_wave_of_held_parcels_is_refused_to_start_and_can_be_cancelled(role_users, parcels):
    first, second = parcels(2)
    wave = services.wave_create(shipment_ids=[first.pk, second.pk])
    hold(first)
    hold(second, HoldReason.PRICE)
    client = login(role_users)

    started = client.post(f"/fulfillment/waves/{wave.pk}/start/", follow=True)
    assert messages_of(started)[0].startswith(f"Refused: Nothing in wave {wave.number} can be picked")
    wave.refresh_from_db()
    assert wave.status == Wave.Status.OPEN
    assert 'data-action="wave-cancel"' in started.content.decode()

    cancelled = client.post(f"/fulfillment/waves/{wave.pk}/cancel/", follow=True)
    assert messages_of(cancelled) == [
        f"Wave {wave.number} cancelled: its parcels wait to be picked again."]
    wave.refresh_from_db()
    assert wave.status == Wave.Status.CANCELLED
    assert not Shipment.objects.filter(wave=wave).exists()
    assert set(Shipment.objects.filter(pk__in=[first.pk, second.pk]).values_list("status", flat=True)) == {SS.TO_PICK}
    assert ShipmentEvent.objects.filter(type=ShipmentEventType.WAVE_CANCELLED).count() == 2
    again = client.post(f"/fulfillment/waves/{wave.pk}/cancel/", follow=True)
    assert messages_of(again)[0] == f"Refused: Wave {wave.number} is Cancelled already."


def test_a_wave_with_a_parcel_being_picked_cannot_be_cancelled(parcels):
    first, second = parcels(2)
    wave = services.wave_create(shipment_ids=[first.pk, second.pk])
    shipping.wave_start(wave_id=wave.pk)
    with pytest.raises(MoveRefused) as refused:
        services.wave_cancel(wave_id=wave.pk)
    assert refused.value.code == "wave_picked"
    wave.refresh_from_db()
    assert wave.status == Wave.Status.PICKING and wave.shipments.count() == 2
    assert not ShipmentEvent.objects.filter(type=ShipmentEventType.WAVE_CANCELLED).exists()


def test_removing_a_parcel_of_another_wave_is_refused(role_users, parcels):
    first, second = parcels(2)
    wave = services.wave_create(shipment_ids=[first.pk])
    other = services.wave_create(shipment_ids=[second.pk])
    response = login(role_users).post(f"/fulfillment/waves/{wave.pk}/remove/", {"shipment": second.pk},
                                      follow=True)
    assert messages_of(response) == ["Refused: That parcel is not in this wave."]
    assert Shipment.objects.get(pk=second.pk).wave_id == other.pk
    bad = login(role_users).post(f"/fulfillment/waves/{wave.pk}/remove/", {"shipment": "١٢"}, follow=True)
    assert messages_of(bad) == ["Refused: That parcel is not in this wave."]
