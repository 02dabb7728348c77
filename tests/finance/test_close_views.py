"""The month-end page: roles, the report and its downloads, close and reopen with a reason, bad input."""

from io import BytesIO

import pytest
from django.test import Client
from django.utils import timezone
from openpyxl import load_workbook

from finance.models import FinancePeriod, FinancePeriodStatus
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def login(user) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    assert client.login(username=user.username, password=PASSWORD)
    return client


def month() -> str:
    return timezone.localdate().strftime("%Y-%m")


def test_finance_and_managers_see_the_page_warehouse_and_service_get_403(role_users):
    for role in ("finance", "manager", "admin"):
        assert login(role_users[role]).get("/finance/close/", {"month": month()}).status_code == 200, role
    for role in ("warehouse", "customer_service"):
        client = login(role_users[role])
        assert client.get("/finance/close/").status_code == 403, role
        assert client.post("/finance/close/close/", {"month": month()}).status_code == 403, role
        assert client.get("/finance/close/report.xlsx", {"month": month()}).status_code == 403, role


def test_close_then_reopen_needs_a_reason_and_is_kept(role_users):
    client = login(role_users["finance"])
    client.post("/finance/close/close/", {"month": month(), "store": ""})
    period = FinancePeriod.objects.get(store__isnull=True)
    assert period.status == FinancePeriodStatus.CLOSED and period.closed_by == role_users["finance"]
    page = client.get("/finance/close/", {"month": month()}).content.decode()
    assert 'data-status="closed"' in page
    client.post("/finance/close/reopen/", {"month": month(), "store": "", "reason": ""})
    assert FinancePeriod.objects.get(pk=period.pk).status == FinancePeriodStatus.CLOSED
    client.post("/finance/close/reopen/", {"month": month(), "store": "", "reason": "late Douyin bill"})
    period.refresh_from_db()
    assert period.status == FinancePeriodStatus.OPEN
    assert [item["reason"] for item in period.reopen_history] == ["late Douyin bill"]


def test_the_report_and_both_journals_download(role_users, taobao_store):
    client = login(role_users["finance"])
    answer = client.get("/finance/close/report.xlsx", {"month": month(), "store": taobao_store.pk})
    assert answer.status_code == 200 and answer["Content-Type"].startswith("application/vnd.openxmlformats")
    assert load_workbook(BytesIO(answer.content)).sheetnames == ["汇总", "银行到账", "未结差异"]
    # No rows, no mapping needed: an empty journal still downloads with its header.
    plain = client.get("/finance/close/journal-plain.csv", {"month": month()})
    assert plain.status_code == 200 and "科目编码" in plain.content.decode("utf-8-sig")
    quickbooks = client.get("/finance/close/journal-quickbooks.csv", {"month": month()})
    assert quickbooks.status_code == 200 and quickbooks.content.decode("utf-8-sig").startswith("Journal No.")
    assert client.get("/finance/close/journal-other.csv", {"month": month()}).status_code == 404


def test_bad_months_and_stores_are_400_not_500(role_users):
    client = login(role_users["finance"])
    for bad in ({"month": "2026-13"}, {"month": "x" * 500}, {"month": "2026-11", "store": "99999999999999"},
                {"month": "2026-11", "store": "a\x00"}):
        assert client.get("/finance/close/", bad).status_code == 400, bad
        assert client.get("/finance/close/report.xlsx", bad).status_code == 400, bad
    assert client.post("/finance/close/close/", {"month": "nope"}).status_code == 302
    assert FinancePeriod.objects.count() == 0


def test_payouts_are_matched_from_the_page(role_users):
    client = login(role_users["finance"])
    answer = client.post("/finance/close/payouts/", {"month": month(), "store": ""}, follow=True)
    assert answer.status_code == 200 and "0 笔提现中有 0 笔在银行流水中找到" in answer.content.decode()
    assert login(role_users["warehouse"]).post("/finance/close/payouts/", {"month": month()}).status_code == 403


def test_profit_per_order_downloads_for_the_month(role_users, make_order):
    order = make_order()
    answer = login(role_users["finance"]).get("/finance/close/profit.csv", {"month": month()})
    assert answer.status_code == 200
    text = answer.content.decode("utf-8-sig")
    assert order.number in text and len(text.strip().splitlines()) == 2
    assert login(role_users["warehouse"]).get("/finance/close/profit.csv", {"month": month()}).status_code == 403


def test_a_far_future_month_is_a_form_error_not_a_500(role_users):
    client = login(role_users["finance"])
    for path in ("/finance/close/", "/finance/close/report.xlsx", "/finance/close/profit.csv"):
        assert client.get(path, {"month": "9999-12"}).status_code == 400, path


def test_a_closed_month_is_not_matched_again(role_users):
    client = login(role_users["finance"])
    client.post("/finance/close/close/", {"month": month(), "store": "", "force": "on"})
    assert FinancePeriod.objects.get().status == FinancePeriodStatus.CLOSED
    answer = client.post("/finance/close/payouts/", {"month": month(), "store": ""}, follow=True)
    assert "已结账" in answer.content.decode()
