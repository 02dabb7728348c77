"""The bare webhook view of `bench webhook` lives in bench/ and is routed only by the benchmark's URL map."""

import pytest
from django.test import Client
from django.urls import NoReverseMatch, reverse

from connectors.models import InboxMessage
from connectors.shopify.connector import shopify_hmac
from orders.models import Platform, Store
from tests.conftest import channel_store

pytestmark = pytest.mark.django_db

SECRET = "shpss_bench_test"


@pytest.fixture
def store(db) -> Store:
    return channel_store(platform=Platform.SHOPIFY, code="shop", name="Shopify US", default_currency="USD",
                                credentials={"api_secret": SECRET})


def test_bench_bare_view_is_off_by_default_and_stores_a_repeat_once(store, settings):
    # Moved from tests/connectors/test_ingestion.py with the view (connectors.views -> bench.views); "on" is now
    # the benchmark's URL map, which settings pick with OMS_BENCH_BARE_WEBHOOK=1.
    body = b'{"id": 1}'
    headers = {"HTTP_X_SHOPIFY_HMAC_SHA256": shopify_hmac(SECRET, body), "HTTP_X_SHOPIFY_EVENT_ID": "e1"}
    assert Client().post("/bench/bare-webhook/shop/", data=body, content_type="application/json",
                         **headers).status_code == 404
    settings.ROOT_URLCONF = "bench.urls"
    for _ in range(2):
        assert Client().post("/bench/bare-webhook/shop/", data=body, content_type="application/json",
                             **headers).status_code == 200
    assert InboxMessage.objects.filter(store=store).count() == 1


def test_a_bad_signature_is_refused_and_stores_nothing(store, settings):
    settings.ROOT_URLCONF = "bench.urls"
    response = Client().post("/bench/bare-webhook/shop/", data=b"{}", content_type="application/json",
                             HTTP_X_SHOPIFY_HMAC_SHA256="forged")
    assert response.status_code == 401
    assert not InboxMessage.objects.exists()


def test_the_production_url_map_has_no_bench_route_and_the_bench_map_keeps_the_project_routes(settings):
    with pytest.raises(NoReverseMatch):
        reverse("bench-bare-webhook", args=["shop"])
    settings.ROOT_URLCONF = "bench.urls"
    assert reverse("bench-bare-webhook", args=["shop"]) == "/bench/bare-webhook/shop/"
    assert reverse("healthz") == "/healthz"
