"""Shopify API version: a supported pin by default, a store setting, and the version Shopify answers with recorded."""

import logging

import pytest
from django.test import Client

from connectors import services
from connectors.models import ChannelSyncState
from connectors.sandbox.shopify import SUPPORTED_VERSIONS, ShopifySandbox
from connectors.shopify.client import DEFAULT_API_VERSION, ShopifyClient
from orders.models import Platform, Store
from tests.conftest import PASSWORD, channel_store

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def sandbox():
    server = ShopifySandbox(port=0, seed=5)
    server.start()
    yield server
    server.stop()


def test_the_pinned_default_is_a_supported_version():
    assert DEFAULT_API_VERSION in SUPPORTED_VERSIONS


def test_an_expired_version_is_answered_by_the_oldest_supported_and_the_client_warns(sandbox, caplog):
    client = ShopifyClient({**sandbox.connector_credentials(), "api_version": "2024-01"})
    with caplog.at_level(logging.WARNING, logger="connectors.shopify.client"):
        client.locations()
    assert client.served_api_version == min(SUPPORTED_VERSIONS) == "2026-01"
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "2026-01" in warnings[0] and "2024-01" in warnings[0]


def test_a_supported_version_is_served_as_asked_without_a_warning(sandbox, caplog):
    client = ShopifyClient({**sandbox.connector_credentials(), "api_version": "2026-07"})
    with caplog.at_level(logging.WARNING, logger="connectors.shopify.client"):
        client.locations()
    assert client.served_api_version == "2026-07"
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_the_store_setting_chooses_the_version_and_the_sync_state_records_what_was_served(sandbox):
    # An old setup typed 2024-01 into the credentials: it no longer decides (the setting does).
    store = channel_store(platform=Platform.SHOPIFY, code="shop-v", name="Shop", default_currency="USD",
                                 credentials={**sandbox.connector_credentials(), "api_version": "2024-01"})
    ChannelSyncState.objects.get_or_create(store=store)
    assert services.store_poll(store_id=store.pk).status == "ok"
    state = ChannelSyncState.objects.get(store=store)
    assert state.api_version_served == DEFAULT_API_VERSION
    ChannelSyncState.objects.filter(store=store).update(api_version="2025-04", next_poll_at=None)  # since expired
    assert services.store_poll(store_id=store.pk).status == "ok"
    assert ChannelSyncState.objects.get(store=store).api_version_served == "2026-01"


@pytest.fixture
def admin_client(role_users):
    client = Client()
    assert client.login(username="u_admin", password=PASSWORD)
    return client


def form_data(**overrides) -> dict:
    data = {"platform": "shopify", "code": "shop-form", "name": "Shop", "active": "on", "default_currency": "USD",
            "reserve_on": "payment", "sync_enabled": "on", "poll_interval_seconds": "60",
            "cred_base_url": "https://shop.example.com", "cred_access_token": "shpat_x", "cred_api_secret": "s",
            "shopify_api_version": "2026-07", "shopify_authorized_counts_as_paid": "on"}
    return {**data, **overrides}


def test_the_store_form_saves_the_shopify_settings_and_refuses_a_bad_version(admin_client):
    page = admin_client.get("/channels/stores/new/")
    assert page.status_code == 200
    assert 'name="shopify_authorized_counts_as_paid"' in page.content.decode()
    bad = admin_client.post("/channels/stores/new/", form_data(shopify_api_version="2026-13"))
    assert bad.status_code == 400 and "2026-10" in bad.content.decode()
    assert not Store.objects.filter(code="shop-form").exists()
    ok = admin_client.post("/channels/stores/new/", form_data())
    assert ok.status_code == 302
    store = Store.objects.get(code="shop-form")
    state = ChannelSyncState.objects.get(store=store)
    assert (state.api_version, state.authorized_counts_as_paid) == ("2026-07", True)
    assert "api_version" not in state.credentials
