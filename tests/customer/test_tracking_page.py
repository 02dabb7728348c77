"""The public tracking page /t/<token>: no login, masked receiver and city only, a friendly 404 for a bad link."""

from datetime import timedelta

import pytest
from django.core import signing
from django.test import Client
from django.utils import timezone

from customer.services import parcel_from_tracking_token, parcel_tracking_path, parcel_tracking_token
from fulfillment.models import Shipment, TrackingEvent
from tests.fulfillment.helpers import ship_parcel


@pytest.fixture
def shipped_parcel(make_order):
    order = make_order()
    parcel = Shipment.objects.filter(lines__order=order).distinct().get()
    ship_parcel(parcel, tracking="YT7700000001")
    now = timezone.now()
    TrackingEvent.objects.create(shipment=parcel, occurred_at=now + timedelta(hours=1), code="picked_up",
                                 description="快件已揽收", location="上海")
    TrackingEvent.objects.create(shipment=parcel, occurred_at=now + timedelta(hours=8), code="in_transit",
                                 description="快件已到达北京转运中心", location="北京")
    parcel.refresh_from_db()
    return order, parcel


def test_the_link_is_signed_and_names_no_database_id(shipped_parcel):
    _order, parcel = shipped_parcel
    path = parcel_tracking_path(shipment=parcel)
    token = path.removeprefix("/t/")
    # Each link is signed with its time, so two calls a second apart differ; each names the same parcel.
    assert parcel_from_tracking_token(token=token).pk == parcel.pk
    assert parcel_from_tracking_token(token=parcel_tracking_token(shipment=parcel)).pk == parcel.pk
    assert str(parcel.pk) != token and parcel.number not in path  # compressed and signed, not readable


def test_the_page_shows_stage_timeline_and_masked_receiver_in_chinese(shipped_parcel):
    order, parcel = shipped_parcel
    response = Client().get(parcel_tracking_path(shipment=parcel))  # no login, no language chosen: zh-hans
    assert response.status_code == 200
    html = response.content.decode()
    assert '<html lang="zh-hans">' in html
    assert 'data-stage="shipped"' in html and '<progress max="5" value="4"' in html
    assert "YT7700000001" in html
    assert html.index("快件已到达北京转运中心") < html.index("快件已揽收")  # newest first
    assert '<dd data-receiver>王**</dd>' in html and '<dd data-city>上海市</dd>' in html
    for secret in ("王小贝", order.receiver_phone, order.receiver_phone[-4:], "张江路", "浦东新区", order.number,
                   order.platform_order_id):
        assert secret not in html, secret
    assert "csrftoken" not in response.cookies and "sessionid" not in response.cookies


def test_the_same_parcel_through_the_api(shipped_parcel):
    _order, parcel = shipped_parcel
    body = Client().get(f"/api/customer/v1/parcels/{parcel_tracking_token(shipment=parcel)}/").json()
    assert body["number"] == parcel.number and body["tracking_number"] == "YT7700000001"
    assert body["stage"]["code"] == "shipped" and body["latest_event"]["code"] == "in_transit"


def test_a_bad_tampered_or_expired_link_is_a_friendly_404(shipped_parcel, settings):
    _order, parcel = shipped_parcel
    token = parcel_tracking_token(shipment=parcel)
    forged = signing.dumps({"s": parcel.number}, salt="another.salt", compress=True)
    for bad in ("nothing", token[:-2] + "xx", forged, str(parcel.pk)):
        response = Client().get(f"/t/{bad}")
        assert response.status_code == 404
        html = response.content.decode()
        assert 'data-page="track-missing"' in html
        assert parcel.number not in html and "YT7700000001" not in html
    api = Client().get("/api/customer/v1/parcels/nothing/")
    assert api.status_code == 404 and api.json()["code"] == "parcel_not_found"
    settings.OMS_TRACKING_LINK_MAX_AGE_DAYS = -1  # every link is past its age
    assert Client().get(f"/t/{token}").status_code == 404


def test_a_parcel_still_in_the_warehouse_shows_preparing_and_no_news(make_order):
    order = make_order()
    parcel = Shipment.objects.filter(lines__order=order).distinct().get()
    html = Client(HTTP_ACCEPT_LANGUAGE="en").get(parcel_tracking_path(shipment=parcel),
                                                 HTTP_COOKIE="django_language=en").content.decode()
    assert 'data-stage="preparing"' in html and '<progress max="5" value="3"' in html
    assert "data-empty" in html and "data-eta" not in html
