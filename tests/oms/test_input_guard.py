"""The shared input guard: control characters never reach PostgreSQL from pages, the API or cookies (a 400 with a
clear message instead of a 500), binary file contents pass, and the debug page hides the service addresses."""

import io
import json
import sys

import pytest
from django.conf import settings as django_settings
from django.test import Client, RequestFactory
from django.views.debug import technical_500_response
from openpyxl import Workbook
from rest_framework.test import APIClient

from inventory.models import StockMovement
from oms.guard import clean_data, clean_text
from orders.models import Order
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

# Kept apart from the code the debug page quotes, so finding one in the page means the filter let it through.
SECRETS = ("db-password-1", "redis-password-2", "cache.internal", "db.internal")

MANUAL_ORDER = {
    "store": "wechat",
    "lines": [{"sku_code": "TEA-LJ-250G", "quantity": 1, "unit_price": "188.00"}],
    "receiver": {"name": "李娜", "phone": "13800138000", "province": "广东省", "city": "深圳市",
                 "district": "南山区", "address": "科技园南区 1 栋"},
    "total_amount": "188.00",
    "paid": True,
}


def logged_in(role: str) -> Client:
    client = Client()
    assert client.login(username=f"u_{role}", password=PASSWORD)
    return client


def test_a_nul_in_the_query_of_a_page_is_a_400_error_page_not_a_500(role_users):
    response = logged_in("manager").get("/channels/dead-letters/?store=a%00")
    assert response.status_code == 400
    page = response.content.decode()
    assert "请求的查询参数中含有无法保存的控制字符" in page  # the project's error page, in Chinese by default
    assert response["Content-Type"].startswith("text/html")


def test_a_nul_in_a_posted_form_field_is_refused_before_the_view(role_users):
    response = Client().post("/accounts/login/", {"username": "u_manager\x00", "password": PASSWORD})
    assert response.status_code == 400
    assert "表单字段" in response.content.decode()


def test_a_nul_in_an_api_json_body_is_400_bad_input_and_nothing_is_stored(api_client_for, manual_store, skus):
    client = api_client_for("manager")
    escaped = json.dumps({**MANUAL_ORDER, "receiver": {**MANUAL_ORDER["receiver"], "name": "李\x00娜"}})
    assert "\\u0000" in escaped  # the way a JSON client sends it
    response = client.post("/api/v1/orders/", escaped, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["code"] == "bad_input"
    assert response.json()["where"] == "body"
    raw = json.dumps(MANUAL_ORDER, ensure_ascii=False).replace("李娜", "李\x00娜").encode()
    response = client.post("/api/v1/orders/", raw, content_type="application/json")
    assert (response.status_code, response.json()["code"]) == (400, "bad_input")
    assert not Order.objects.exists()
    # The same order without the NUL goes through: the guard refuses the character, not the request.
    assert client.post("/api/v1/orders/", MANUAL_ORDER, format="json").status_code == 201


def test_an_api_message_follows_accept_language(api_client_for):
    response = api_client_for("manager").get("/api/v1/orders/?search=%01", HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 400
    assert response.json() == {
        "code": "bad_input", "where": "query",
        "message": "The request holds a control character (such as a NUL byte) in its query string, which "
                   "cannot be stored. Remove it and try again."}


def test_a_nul_in_the_path_a_header_or_a_cookie_is_refused(role_users):
    assert Client().get("/orders/%00/").status_code == 400
    # An API token is looked up in the database.
    response = APIClient().get("/api/v1/orders/", HTTP_AUTHORIZATION="Token abc\x00def")
    assert (response.status_code, response.json()["where"]) == (400, "header")
    client = Client()
    client.cookies["sessionid"] = "abcdefgh\x00ijklmnop"  # sent as "\000", which Django's cookie parser decodes
    assert client.get("/orders/").status_code == 400


def test_nul_bytes_inside_an_uploaded_file_pass_the_guard_but_not_in_its_form_fields(role_users, skus, warehouse):
    sheet = Workbook()
    sheet.active.append(["warehouse", "sku", "counted"])
    sheet.active.append(["SH", "GIFT-BAG", 7])
    buffer = io.BytesIO()
    sheet.save(buffer)
    content = buffer.getvalue()
    assert b"\x00" in content  # an .xlsx is a zip: binary
    client = logged_in("manager")
    upload = io.BytesIO(content)
    upload.name = "count.xlsx"
    response = client.post("/inventory/import/", {"file": upload, "reference": "count-1"})
    assert response.status_code in (200, 302)  # the import page answered (not the guard's 400)
    assert b"\xe6\x8e\xa7\xe5\x88\xb6\xe5\xad\x97\xe7\xac\xa6" not in response.content  # "控制字符"
    upload = io.BytesIO(content)
    upload.name = "count.xlsx"
    moves = StockMovement.objects.count()
    refused = client.post("/inventory/import/", {"file": upload, "reference": "count\x002"})
    assert refused.status_code == 400
    assert StockMovement.objects.count() == moves


def test_cleaning_removes_control_characters_and_keeps_tabs_and_new_lines():
    assert clean_text("a\x00b\x1fc\td\ne\r") == "abc\td\ne\r"
    assert clean_data({"k\x00": ["x\x00", 1, None, {"n": "王\x00小贝"}]}) == {"k": ["x", 1, None, {"n": "王小贝"}]}


def _configure_service_addresses(settings) -> None:
    settings.DEBUG = True
    settings.DATABASE_URL = f"postgres://oms:{SECRETS[0]}@{SECRETS[3]}:5432/oms"
    settings.REDIS_URL = f"redis://:{SECRETS[1]}@{SECRETS[2]}:6379/0"
    settings.CELERY_BROKER_URL = settings.REDIS_URL
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache",
                                   "LOCATION": f"redis://{SECRETS[2]}:6379/0"}}


def _fail():
    raise RuntimeError("boom")


def test_the_debug_page_hides_database_and_redis_addresses(settings):
    _configure_service_addresses(settings)
    # runserver copies the environment into request.META.
    request = RequestFactory().get("/boom/", DATABASE_URL=settings.DATABASE_URL, REDIS_URL=settings.REDIS_URL)
    try:
        _fail()
    except RuntimeError:
        page = technical_500_response(request, *sys.exc_info()).content.decode()
    assert "boom" in page and "DATABASE_URL" in page
    assert not [secret for secret in SECRETS if secret in page]
    assert django_settings.DEFAULT_EXCEPTION_REPORTER_FILTER == "oms.reporting.OmsExceptionReporterFilter"
