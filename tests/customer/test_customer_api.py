"""The customer API over real HTTP on PostgreSQL and Redis: proofs, buyer scope, throttles, the daily lock."""

import time
from datetime import timedelta

import pytest
from django.core import signing
from django.utils import timezone
from rest_framework import serializers
from rest_framework.test import APIClient

from aftersales.models import Ticket
from customer.models import ProofFailure
from customer.services import parcel_tracking_path
from fulfillment.models import Shipment, TrackingEvent
from orders.models import OrderEvent, Priority
from orders.services import BuyerInput, ReceiverInput
from tests.fulfillment.helpers import ship_parcel

API = "/api/customer/v1"
PHONE = "13312343069"  # conftest's order_input receiver phone
NOT_FOUND = {"code": "order_not_found", "message": "No order matches this order number and phone."}


@pytest.fixture(autouse=True)
def english(settings):
    settings.LANGUAGE_CODE = "en"


def client(addr: str = "10.0.0.1") -> APIClient:
    return APIClient(REMOTE_ADDR=addr, HTTP_ACCEPT_LANGUAGE="en")


def prove(order: str, phone: str, addr: str = "10.0.0.1"):
    return client(addr).post(f"{API}/proof/", {"order": order, "phone": phone}, format="json")


def token_for(order_number: str, phone: str = "3069") -> str:
    response = prove(order_number, phone)
    assert response.status_code == 200, response.content
    return response.json()["token"]


def as_buyer(token: str) -> APIClient:
    api = client()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return api


def other_buyer(make_order, **overrides):
    return make_order(buyer=BuyerInput(id="buyer-2", name="李四"),
                      receiver=ReceiverInput(name="李四", phone="13900001111", province="北京市", city="北京市",
                                             district="朝阳区", address="建国路 1 号"), **overrides)


def test_a_proof_by_number_or_platform_id_with_full_phone_or_last_four_gives_a_token(make_order):
    order = make_order()
    for key, phone in [(order.number, "3069"), (order.number, PHONE), (order.platform_order_id, "3069"),
                       (order.number, "+86 133-1234-3069")]:
        response = prove(key, phone)
        assert response.status_code == 200, (key, phone, response.content)
        body = response.json()
        assert body["token_type"] == "Bearer" and body["expires_in"] == 7200
        # Signed, not a database id: the order's pk alone is nowhere a token.
        assert body["token"] != str(order.pk) and len(body["token"]) > 40
    assert ProofFailure.objects.count() == 0


def test_a_wrong_phone_answers_exactly_like_an_unknown_order(make_order):
    order = make_order()
    wrong = prove(order.number, "9999")
    unknown = prove("SO-NOT-THERE", "3069")
    wrong_full = prove(order.number, "13399999999")
    for response in (wrong, unknown, wrong_full):
        assert response.status_code == 404
        assert response.json() == NOT_FOUND
    assert wrong.content == unknown.content == wrong_full.content
    assert sorted(wrong.headers) == sorted(unknown.headers)
    # Counted against what was typed, unknown numbers too, so a lock tells nothing about existence.
    assert dict(ProofFailure.objects.values_list("key", "count")) == {order.number: 2, "SO-NOT-THERE": 1}


def test_bad_input_is_400_with_the_field(db):
    response = prove("SO1", "12")
    assert response.status_code == 400
    assert response.json()["code"] == "proof_invalid"
    assert list(response.json()["errors"]) == ["phone"]
    response = client().post(f"{API}/proof/", {"order": "SO1", "phone": "3069", "extra": 1}, format="json")
    assert response.status_code == 400 and "extra" in response.json()["errors"]
    assert ProofFailure.objects.count() == 0


def test_the_11th_wrong_try_in_a_minute_from_one_address_is_429_with_retry_after(make_order):
    order = make_order()
    for attempt in range(10):
        assert prove(f"SO-GUESS-{attempt}", "1234").status_code == 404
    eleventh = prove(order.number, "3069")  # even the right pair: the address is throttled first
    assert eleventh.status_code == 429
    assert eleventh.json()["code"] == "throttled"
    assert 1 <= int(eleventh["Retry-After"]) <= 60
    # Another address is not held by this one's count.
    assert prove(order.number, "3069", addr="10.0.0.2").status_code == 200


def test_the_11th_try_on_one_order_number_from_many_addresses_is_429(make_order):
    order = make_order()
    for attempt in range(10):
        assert prove(order.number, f"{attempt:04d}", addr=f"10.1.0.{attempt}").status_code == 404
    response = prove(order.number, "3069", addr="10.1.0.99")
    assert response.status_code == 429
    assert int(response["Retry-After"]) >= 1
    assert ProofFailure.objects.get(key=order.number).count == 10


def test_the_daily_cap_locks_an_order_number_until_tomorrow(make_order, settings):
    settings.OMS_CUSTOMER_PROOF_DAILY_FAILURES = 3
    order, other = make_order(), make_order()
    for attempt in range(3):
        assert prove(order.number, f"{attempt:04d}", addr=f"10.2.0.{attempt}").status_code == 404
    locked = prove(order.number, "3069", addr="10.2.0.50")  # the right phone, but the number is locked
    assert locked.status_code == 429
    assert locked.json()["code"] == "throttled"
    assert "try again tomorrow" in locked.json()["message"]
    now = timezone.localtime()
    midnight = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    assert abs(int(locked["Retry-After"]) - (midnight - now).total_seconds()) < 5
    assert ProofFailure.objects.get(key=order.number, day=now.date()).count == 3  # the lock is not a failure
    # Other numbers are not locked; an unknown number gets the same lock after as many tries.
    assert prove(other.number, "3069", addr="10.2.0.51").status_code == 200
    for attempt in range(3):
        prove("SO-UNKNOWN", "1234", addr=f"10.2.1.{attempt}")
    assert prove("SO-UNKNOWN", "1234", addr="10.2.1.9").status_code == 429
    # Yesterday's failures do not count today.
    ProofFailure.objects.filter(key=order.number).update(day=now.date() - timedelta(days=1))
    assert prove(order.number, "3069", addr="10.2.0.52").status_code == 200


def test_a_token_lists_only_its_buyers_orders(make_order):
    first, second = make_order(), make_order()
    stranger = other_buyer(make_order)
    response = as_buyer(token_for(first.number)).get(f"{API}/orders/")
    assert response.status_code == 200
    assert [row["number"] for row in response.json()] == sorted([first.number, second.number], reverse=True) or \
        {row["number"] for row in response.json()} == {first.number, second.number}
    assert stranger.number not in response.content.decode()


def test_buyer_a_never_reads_buyer_bs_order_404_like_unknown(make_order):
    mine = make_order()
    theirs = other_buyer(make_order)
    api = as_buyer(token_for(mine.number))
    foreign = api.get(f"{API}/orders/{theirs.number}/")
    unknown = api.get(f"{API}/orders/SO-NOT-THERE/")
    assert foreign.status_code == unknown.status_code == 404
    assert foreign.json() == unknown.json() == NOT_FOUND
    for path in (f"/orders/{theirs.number}/after-sales/", f"/orders/{theirs.number}/expedite/"):
        response = api.post(f"{API}{path}", {"type": "refund_only", "reason": "other", "reason_text": "x",
                                             "lines": [{"line_no": 1, "quantity": 1}]}, format="json")
        assert response.status_code == 404 and response.json() == NOT_FOUND
    assert Ticket.objects.count() == 0
    theirs.refresh_from_db()
    assert theirs.priority == Priority.NORMAL
    assert api.get(f"{API}/orders/{mine.number}/").status_code == 200


def test_a_phone_only_buyer_is_the_full_phone_not_the_last_four(make_order):
    """Without a platform buyer id the buyer is the full receiver phone: same last four, other phone → not theirs."""
    mine = make_order(buyer=BuyerInput())
    same_phone = make_order(buyer=BuyerInput())
    lookalike = make_order(buyer=BuyerInput(), receiver=ReceiverInput(
        name="赵六", phone="13800003069", province="上海市", city="上海市", district="", address="某路 2 号"))
    numbers = {row["number"] for row in as_buyer(token_for(mine.number)).get(f"{API}/orders/").json()}
    assert numbers == {mine.number, same_phone.number}
    assert lookalike.number not in numbers


def test_an_expired_or_tampered_token_is_401(make_order, monkeypatch):
    order = make_order()
    token = token_for(order.number)
    tampered = token[:-3] + ("AAA" if token[-3:] != "AAA" else "BBB")
    for bad in (tampered, "not-a-token", signing.dumps({"v": 1, "o": order.number, "k": "buyer", "pd": ""},
                                                       salt="some.other.salt")):
        response = as_buyer(bad).get(f"{API}/orders/")
        assert response.status_code == 401, bad
        assert response.json()["code"] == "authentication_failed"
        assert response["WWW-Authenticate"] == 'Bearer realm="customer"'
    assert client().get(f"{API}/orders/").status_code == 401
    # Two hours and a second later (Django's signing reads time.time(), outside the project).
    later = time.time() + 7201
    monkeypatch.setattr(signing.time, "time", lambda: later)
    response = as_buyer(token).get(f"{API}/orders/")
    assert response.status_code == 401
    assert response.json() == {"code": "token_expired",
                               "message": "The token has expired: prove the order again."}


def test_a_session_is_no_credential_here(make_order, role_users):
    make_order()
    api = client()
    api.force_login(role_users["manager"])
    assert api.get(f"{API}/orders/").status_code == 401


def ship_with_news(order):
    parcel = Shipment.objects.filter(lines__order=order).distinct().get()
    ship_parcel(parcel, tracking="YT8800000001")
    base = timezone.now()
    TrackingEvent.objects.create(shipment=parcel, occurred_at=base + timedelta(hours=1), code="picked_up",
                                 description="已揽收", location="上海")
    TrackingEvent.objects.create(shipment=parcel, occurred_at=base + timedelta(hours=9), code="in_transit",
                                 description="运输中，发往北京转运中心", location="上海转运中心")
    parcel.refresh_from_db()
    return parcel


def test_one_order_shows_stage_timeline_latest_carrier_event_and_estimate_masked(make_order):
    order = make_order()
    parcel = ship_with_news(order)
    body = as_buyer(token_for(order.number, "3069")).get(f"{API}/orders/{order.number}/").json()
    assert body["stage"] == {"code": "shipped", "label": "On its way", "step": 4, "steps": 5,
                             "labels": ["Order placed", "Paid", "Being prepared", "On its way", "Delivered"]}
    assert body["receiver"] == {"name": "王**", "phone": "133****3069", "province": "上海市", "city": "上海市"}
    assert body["latest_carrier_event"]["description"] == "运输中，发往北京转运中心"
    assert body["latest_carrier_event"]["location"] == "上海转运中心"
    assert [row["kind"] for row in body["timeline"]] == ["placed", "paid", "packed", "shipped", "carrier", "carrier"]
    assert body["timeline"][-1]["text"] == "上海转运中心 运输中，发往北京转运中心"
    # Standard service: four days after the hand-over.
    expected = parcel.shipped_at + timedelta(days=4)
    assert body["estimated_delivery"] == serializers.DateTimeField().to_representation(expected)
    assert body["parcels"][0]["tracking_number"] == "YT8800000001"
    assert body["parcels"][0]["tracking_url"] == parcel_tracking_path(shipment=parcel)
    assert [line["line_no"] for line in body["lines"]] == [1, 2]
    text = str(body)
    for secret in ("张江路", "王小贝", PHONE, "浦东新区"):
        assert secret not in text, secret
    assert "id" not in body and "id" not in body["parcels"][0]  # no database ids handed out
    # The full phone is shown only to a buyer who typed it.
    typed = as_buyer(token_for(order.number, PHONE)).get(f"{API}/orders/{order.number}/").json()
    assert typed["receiver"]["phone"] == PHONE


def test_an_unshipped_order_has_no_estimate_and_is_being_paid_stage(make_order):
    order = make_order()
    body = as_buyer(token_for(order.number)).get(f"{API}/orders/{order.number}/").json()
    assert body["stage"]["code"] == "paid" and body["stage"]["step"] == 2
    assert body["estimated_delivery"] is None and body["latest_carrier_event"] is None
    assert body["can_expedite"] is False


def test_after_sales_opens_a_customer_api_ticket_with_the_checks(make_order):
    order = make_order()
    ship_with_news(order)
    api = as_buyer(token_for(order.number))
    bad = api.post(f"{API}/orders/{order.number}/after-sales/",
                   {"type": "return_refund", "reason": "damaged",
                    "lines": [{"line_no": 1, "quantity": 5}, {"line_no": 9, "quantity": 1}]}, format="json")
    assert bad.status_code == 400
    assert bad.json()["code"] == "ticket_invalid"
    assert list(bad.json()["errors"]) == ["lines[1].line_no"]
    over = api.post(f"{API}/orders/{order.number}/after-sales/",
                    {"type": "return_refund", "reason": "damaged", "lines": [{"line_no": 1, "quantity": 5}]},
                    format="json")
    assert over.status_code == 400 and list(over.json()["errors"]) == ["lines[0].quantity"]
    assert Ticket.objects.count() == 0
    response = api.post(f"{API}/orders/{order.number}/after-sales/",
                        {"type": "return_refund", "reason": "damaged", "lines": [{"line_no": 1, "quantity": 1}]},
                        format="json")
    assert response.status_code == 201, response.content
    ticket = Ticket.objects.get()
    assert (ticket.order_id, ticket.source, ticket.number) == (order.pk, "customer_api", response.json()["number"])
    assert str(ticket.requested_amount) == "188.00" == response.json()["requested_amount"]
    assert ticket.checks  # the automatic checks ran and were stored


def test_expedite_is_for_vip_buyers_and_raises_the_priority_with_an_event(make_order):
    plain = make_order()
    response = as_buyer(token_for(plain.number)).post(f"{API}/orders/{plain.number}/expedite/")
    assert response.status_code == 403
    assert response.json()["code"] == "expedite_not_allowed"
    plain.refresh_from_db()
    assert plain.priority == Priority.NORMAL
    # The same buyer with a VIP order on record is a VIP: their plain order may be hurried.
    make_order(priority=Priority.VIP)
    api = as_buyer(token_for(plain.number))
    assert api.get(f"{API}/orders/{plain.number}/").json()["can_expedite"] is True
    response = api.post(f"{API}/orders/{plain.number}/expedite/")
    assert response.status_code == 200
    assert response.json() == {"number": plain.number, "expedited": True, "message": "Your order will be hurried."}
    plain.refresh_from_db()
    assert plain.priority == Priority.HIGH
    event = OrderEvent.objects.filter(order=plain, type="updated", data__priority__isnull=False).get()
    assert (event.reason, event.data["priority"]) == ("Asked by the buyer (mini-program).", {"from": 0, "to": 1})
    # Its parcel is due now, which moves it up its kanban lane (the desk's expedite flow does that).
    parcel = Shipment.objects.filter(lines__order=plain).distinct().get()
    assert parcel.sla_due_at <= timezone.now()
    assert [p["number"] for p in event.data["parcels"]] == [parcel.number]
    again = api.post(f"{API}/orders/{plain.number}/expedite/")
    assert again.json()["message"] == "Your order is already hurried."
    assert OrderEvent.objects.filter(order=plain, type="updated", data__priority__isnull=False).count() == 1


def test_the_customer_schema_and_the_staff_schema_are_apart(db, api_client_for):
    customer = client().get(f"{API}/schema/?format=json")
    assert customer.status_code == 200
    schema = customer.json()
    assert schema["info"]["title"] == "Order Hub customer API"
    assert sorted(schema["paths"]) == [
        f"{API}/orders/", f"{API}/orders/{{number}}/", f"{API}/orders/{{number}}/after-sales/",
        f"{API}/orders/{{number}}/expedite/", f"{API}/parcels/{{token}}/", f"{API}/proof/",
        f"{API}/wechat/binding/", f"{API}/wechat/bindings/", f"{API}/wechat/login/"]
    assert schema["components"]["securitySchemes"]["buyerToken"]["scheme"] == "bearer"
    staff = api_client_for("manager").get("/api/schema/?format=json").json()
    assert not [path for path in staff["paths"] if path.startswith("/api/customer/")]
    assert "/api/v1/orders/" in staff["paths"]


def test_a_vip_cannot_hurry_an_order_that_has_left(make_order):
    order = make_order(priority=Priority.VIP)
    ship_with_news(order)
    api = as_buyer(token_for(order.number))
    assert api.get(f"{API}/orders/{order.number}/").json()["can_expedite"] is False
    response = api.post(f"{API}/orders/{order.number}/expedite/")
    assert response.status_code == 409
    assert response.json()["code"] == "transition_not_allowed"
