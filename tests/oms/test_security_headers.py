"""Security headers (CSP, Permissions-Policy, no-store for personal data), no inline handlers, and the DEBUG 404 page."""

import re

import pytest
from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from fulfillment.models import WarehouseRule

pytestmark = pytest.mark.django_db

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
       "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'self'; object-src 'none'")
PERMISSIONS = ("accelerometer=(), camera=(), geolocation=(), gyroscope=(), magnetometer=(), microphone=(), "
               "payment=(), usb=()")


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def directives(header: str) -> set[str]:
    return {part.strip() for part in header.split(";")}


def no_store(response) -> bool:
    return "no-store" in response.get("Cache-Control", "")


def test_login_page_has_the_policies(db):
    response = Client().get("/accounts/login/")
    assert response.status_code == 200
    assert directives(response["Content-Security-Policy"]) == directives(CSP)
    assert response["Permissions-Policy"] == PERMISSIONS


def test_order_pages_have_the_policies_and_are_not_stored(role_users, make_order):
    order = make_order()
    client = signed_in(role_users["customer_service"])
    for url in ("/orders/", f"/orders/{order.pk}/"):
        response = client.get(url)
        assert response.status_code == 200, url
        assert directives(response["Content-Security-Policy"]) == directives(CSP)
        assert response["Permissions-Policy"] == PERMISSIONS
        assert no_store(response) and "private" in response["Cache-Control"], response.get("Cache-Control")


def test_every_api_response_is_not_stored(role_users, make_order):
    make_order()
    client = APIClient()
    token = Token.objects.create(user=role_users["customer_service"])
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    response = client.get("/api/v1/orders/")
    assert response.status_code == 200 and response.json()["count"] == 1
    assert no_store(response)
    assert directives(response["Content-Security-Policy"]) == directives(CSP)

    refused = APIClient().get("/api/v1/orders/")
    assert refused.status_code == 401 and refused.json()["code"] == "not_authenticated"
    assert no_store(refused)


def test_anonymous_static_like_pages_are_not_forced_to_no_store(db):
    # The public schema documents the API, not data; it is under /api/ and so still no-store (simple rule),
    # while an anonymous health check may be cached by whoever wants to.
    assert no_store(Client().get("/api/schema/"))
    assert not no_store(Client().get("/healthz"))


def test_only_the_api_documentation_pages_allow_inline_script_and_style(role_users):
    client = signed_in(role_users["customer_service"])
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    assert "script-src 'self' 'unsafe-inline'" in docs["Content-Security-Policy"]
    assert "style-src 'self' 'unsafe-inline'" in docs["Content-Security-Policy"]
    assert "unsafe-inline" not in client.get("/orders/")["Content-Security-Policy"]


INLINE_HANDLER = re.compile(r"<[^>]+\son[a-z]+\s*=", re.IGNORECASE)
INLINE_STYLE = re.compile(r"<[^>]+\sstyle\s*=", re.IGNORECASE)
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>", re.IGNORECASE)


def test_pages_carry_no_inline_handlers_styles_or_scripts(role_users, make_order, warehouse):
    order = make_order()
    WarehouseRule.objects.create(name="all to SH", position=1, warehouse=warehouse)
    client = signed_in(role_users["admin"])
    urls = ["/orders/", f"/orders/{order.pk}/", "/inventory/", "/inventory/import/", "/fulfillment/kanban/",
            "/fulfillment/routing/", "/channels/dead-letters/", "/channels/stock/"]
    for url in urls:
        response = client.get(url, follow=True)
        assert response.status_code == 200, url
        html = response.content.decode()
        assert not INLINE_HANDLER.search(html), (url, INLINE_HANDLER.search(html).group(0))
        assert not INLINE_STYLE.search(html), (url, INLINE_STYLE.search(html).group(0))
        assert not INLINE_SCRIPT.search(html), (url, INLINE_SCRIPT.search(html).group(0))
    rules = client.get("/fulfillment/routing/").content.decode()
    assert 'data-confirm="确定删除此规则？"' in rules


# --- Item 11: the trial's 404 ----------------------------------------------------------------------

@pytest.mark.parametrize("url", ["/no-such-page/", "/orders/999999/"])
def test_a_debug_404_is_the_project_page_not_the_url_list(settings, role_users, url):
    settings.DEBUG = True
    response = signed_in(role_users["customer_service"]).get(url)
    assert response.status_code == 404
    html = response.content.decode()
    assert "Using the URLconf" not in html and "api/schema/" not in html and "admin/" not in html
    assert "DEBUG = True" not in html
    assert response.templates[0].name == "errors/error.html"


def test_a_debug_404_under_the_api_is_json(settings, db):
    settings.DEBUG = True
    response = Client().get("/api/v1/no-such-thing/")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
