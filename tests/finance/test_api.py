"""The reconciliation API: who may read and change, the difference filters, resolve and reopen, the month's summary,
a re-check, and bad input answered with a 400 and a code (never a 500)."""

import hashlib
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.utils import timezone, translation
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from finance.models import (
    Difference,
    DifferenceReason,
    DifferenceStatus,
    FinancePeriod,
    FinancePeriodStatus,
    SettlementFile,
    SettlementRow,
)
from finance.readers.base import RowKind, SettlementSource
from finance.services import finance_month_refuse_closed
from oms.exceptions import ConflictError
from orders.models import Platform, Store
from tests.oms import test_schemathesis as staff_run

pytestmark = pytest.mark.django_db

DIFFERENCES = "/api/v1/finance/differences/"
SUMMARIES = "/api/v1/finance/summaries/"
RECHECK = "/api/v1/finance/recheck/"
RATE = Decimal("0.006")


def this_month() -> date:
    return timezone.localdate().replace(day=1)


def settlement(store, rows: list[dict], *, source=SettlementSource.ALIPAY) -> SettlementFile:
    """An imported settlement file of ``store`` with ``rows`` (sale rows of this month unless told)."""
    content = repr((store.code, source, rows)).encode()
    file = SettlementFile.objects.create(source=source, store=store, file_name="bill.csv",
                                         sha256=hashlib.sha256(content).hexdigest(), content=content,
                                         status="imported", row_count=len(rows))
    now = timezone.now()
    SettlementRow.objects.bulk_create([
        SettlementRow(file=file, source=source, external_row_id=f"{store.code}-{source}-{index}", line_no=index + 2,
                      kind=row.get("kind", RowKind.SALE), platform_order_id=row.get("platform_order_id", ""),
                      gross=row["gross"], fee=row.get("fee", (row["gross"] * RATE).quantize(Decimal("0.01"))),
                      net=row["gross"], currency=row.get("currency", "CNY"), occurred_at=row.get("at", now))
        for index, row in enumerate(rows)])
    return file


@pytest.fixture
def planted(make_order, taobao_store):
    """A month of the Taobao store on Alipay: two fine orders, one amount difference, one row nobody knows."""
    orders = [make_order(platform_order_id=f"TB-{n}") for n in range(3)]
    settlement(taobao_store, [
        {"platform_order_id": "TB-0", "gross": orders[0].paid_amount},
        {"platform_order_id": "TB-1", "gross": orders[1].paid_amount},
        {"platform_order_id": "TB-2", "gross": orders[2].paid_amount - Decimal("5.00")},
        {"platform_order_id": "TB-NOPE", "gross": Decimal("12.00")},
    ])
    return orders


def difference(store, reason=DifferenceReason.AMOUNT_DIFFERS, *, month=None, source=SettlementSource.ALIPAY,
               order=None, **fields) -> Difference:
    return Difference.objects.create(month=month or this_month(), source=source, store=store, reason=reason,
                                     order=order, currency="CNY", expected_amount=Decimal("10.00"),
                                     actual_amount=Decimal("9.00"), **fields)


# --- Roles ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["finance", "manager", "admin"])
def test_finance_manager_and_admin_read_and_change(api_client_for, taobao_store, role):
    item = difference(taobao_store)
    client = api_client_for(role)
    assert client.get(DIFFERENCES).status_code == 200
    assert client.get(f"{DIFFERENCES}{item.pk}/").status_code == 200
    assert client.get(SUMMARIES, {"month": f"{this_month():%Y-%m}"}).status_code == 200
    answer = client.post(f"{DIFFERENCES}{item.pk}/resolve/", {"note": "已与平台核对"}, format="json")
    assert answer.status_code == 200, answer.json()
    assert client.post(f"{DIFFERENCES}{item.pk}/reopen/").status_code == 200
    assert client.post(RECHECK, {"store": taobao_store.code, "source": "alipay",
                                 "month": f"{this_month():%Y-%m}"}, format="json").status_code == 200


@pytest.mark.parametrize("role", ["warehouse", "customer_service"])
def test_warehouse_and_customer_service_get_403(api_client_for, taobao_store, role):
    item = difference(taobao_store)
    client = api_client_for(role)
    month = f"{this_month():%Y-%m}"
    for answer in (client.get(DIFFERENCES), client.get(f"{DIFFERENCES}{item.pk}/"),
                   client.get(SUMMARIES, {"month": month}),
                   client.post(f"{DIFFERENCES}{item.pk}/resolve/", {"note": "x"}, format="json"),
                   client.post(f"{DIFFERENCES}{item.pk}/reopen/"),
                   client.post(RECHECK, {"store": taobao_store.code, "source": "alipay", "month": month},
                               format="json")):
        assert answer.status_code == 403
        assert answer.json()["code"] == "permission_denied"
    item.refresh_from_db()
    assert item.status == DifferenceStatus.OPEN


def test_anonymous_gets_401(taobao_store):
    item = difference(taobao_store)
    client = APIClient()
    for answer in (client.get(DIFFERENCES), client.get(f"{DIFFERENCES}{item.pk}/"),
                   client.get(SUMMARIES, {"month": "2026-11"}),
                   client.post(f"{DIFFERENCES}{item.pk}/resolve/", {"note": "x"}, format="json"),
                   client.post(RECHECK, {}, format="json")):
        assert answer.status_code == 401
        assert answer.json()["code"] == "not_authenticated"


@pytest.mark.parametrize("role", ["finance", "warehouse"])
def test_unknown_methods_are_405_not_403(api_client_for, taobao_store, role):
    item = difference(taobao_store)
    client = api_client_for(role)
    assert client.put(f"{DIFFERENCES}{item.pk}/", {}, format="json").status_code == 405
    assert client.delete(f"{DIFFERENCES}{item.pk}/").status_code == 405
    assert client.post(DIFFERENCES, {}, format="json").status_code == 405
    assert client.get(f"{DIFFERENCES}{item.pk}/resolve/").status_code == 405
    assert client.post(SUMMARIES, {}, format="json").status_code == 405
    answer = client.get(RECHECK)
    assert answer.status_code == 405 and answer.json()["code"] == "method_not_allowed"


# --- The list and its filters ---------------------------------------------------------------------------


def test_a_difference_carries_its_order_row_amounts_and_resolution(api_client_for, planted, taobao_store):
    client = api_client_for("finance")
    client.post(RECHECK, {"store": "tb", "source": "alipay", "month": f"{this_month():%Y-%m}"}, format="json")
    results = client.get(DIFFERENCES, {"reason": "amount_differs"}).json()["results"]
    assert len(results) == 1
    item = results[0]
    assert item["order_number"] == planted[2].number and item["order"] == planted[2].pk
    assert item["month"] == f"{this_month():%Y-%m}" and item["store"] == "tb" and item["source"] == "alipay"
    assert item["settlement_row"]["external_row_id"] == "tb-alipay-2"
    assert item["settlement_row"]["kind"] == "sale"
    assert Decimal(item["settlement_row"]["gross"]) == planted[2].paid_amount - Decimal("5.00")
    assert Decimal(item["expected_amount"]) == planted[2].paid_amount
    assert Decimal(item["actual_amount"]) == planted[2].paid_amount - Decimal("5.00")
    assert item["currency"] == "CNY" and item["status"] == "open"
    assert item["resolved_by"] is None and item["resolved_at"] is None and item["resolution_note"] == ""
    unknown = client.get(DIFFERENCES, {"reason": "missing_in_hub"}).json()["results"][0]
    assert unknown["order"] is None and unknown["order_number"] is None and unknown["expected_amount"] is None


def test_filters_month_source_store_reason_status(api_client_for, taobao_store, manual_store):
    month = this_month()
    earlier = date(2025, 1, 1)
    a = difference(taobao_store)
    b = difference(taobao_store, DifferenceReason.FEE_DIFFERS, source=SettlementSource.DOUYIN)
    c = difference(manual_store, DifferenceReason.SETTLED_TWICE, month=earlier)
    d = difference(taobao_store, DifferenceReason.MISSING_IN_HUB, status=DifferenceStatus.RESOLVED)
    client = api_client_for("finance")

    def ids(**query):
        answer = client.get(DIFFERENCES, query)
        assert answer.status_code == 200, answer.json()
        return sorted(item["id"] for item in answer.json()["results"])

    assert ids() == sorted([a.pk, b.pk, c.pk, d.pk])
    assert ids(month=f"{month:%Y-%m}") == sorted([a.pk, b.pk, d.pk])
    assert ids(month="2025-01") == [c.pk]
    assert ids(source="douyin") == [b.pk]
    assert ids(store="wechat") == [c.pk]
    assert ids(store="no-such-store") == []
    assert ids(reason="fee_differs") == [b.pk]
    assert ids(status="resolved") == [d.pk]
    assert ids(status="open", store="tb", source="alipay") == [a.pk]
    assert ids(month="", source="") == sorted([a.pk, b.pk, c.pk, d.pk])  # empty means no filter
    page = client.get(DIFFERENCES).json()
    assert page["count"] == 4 and "next" in page


@pytest.mark.parametrize("query", [{"month": "2026-13"}, {"month": "2026-1"}, {"month": "0000-01"},
                                   {"month": "26-11-01"}, {"status": "closed"}, {"reason": "nope"},
                                   {"source": "paypal"}, {"stauts": "open"}, {"page": "99"}])
def test_bad_list_queries_are_400_or_404_with_a_code(api_client_for, taobao_store, query):
    difference(taobao_store)
    answer = api_client_for("finance").get(DIFFERENCES, query)
    assert answer.status_code == (404 if "page" in query else 400)
    assert answer.json()["code"] in {"invalid", "not_found"}


def test_nul_bytes_are_refused(api_client_for, taobao_store):
    client = api_client_for("finance")
    assert client.get(DIFFERENCES + "?store=t%00b").status_code == 400
    assert client.get(SUMMARIES + "?month=2026-11&store=t%00b").status_code == 400
    answer = client.post(RECHECK, {"store": "t\x00b", "source": "alipay", "month": "2026-11"}, format="json")
    assert answer.status_code == 400 and answer.json()["code"]


@pytest.mark.parametrize("raw", ["abc", "0", "99999999999999999999999999", "-1", "1.5"])
def test_ids_that_name_nothing_are_404(api_client_for, taobao_store, raw):
    difference(taobao_store)
    client = api_client_for("finance")
    for answer in (client.get(f"{DIFFERENCES}{raw}/"),
                   client.post(f"{DIFFERENCES}{raw}/resolve/", {"note": "x"}, format="json"),
                   client.post(f"{DIFFERENCES}{raw}/reopen/")):
        assert answer.status_code == 404
        assert answer.json()["code"] in {"difference_not_found", "not_found"}


# --- Resolve and reopen ---------------------------------------------------------------------------------


def test_resolve_records_who_when_and_the_note_then_reopen_clears_it(api_client_for, role_users, taobao_store):
    item = difference(taobao_store)
    client = api_client_for("finance")
    answer = client.post(f"{DIFFERENCES}{item.pk}/resolve/", {"note": "平台补贴，已核对"}, format="json")
    assert answer.status_code == 200
    body = answer.json()
    assert body["status"] == "resolved" and body["resolved_by"] == "u_finance"
    assert body["resolution_note"] == "平台补贴，已核对" and body["resolved_at"]
    item.refresh_from_db()
    assert item.resolved_by == role_users["finance"] and item.status == DifferenceStatus.RESOLVED

    again = client.post(f"{DIFFERENCES}{item.pk}/resolve/", {"note": "again"}, format="json")
    assert again.status_code == 409 and again.json()["code"] == "difference_not_open"

    reopened = client.post(f"{DIFFERENCES}{item.pk}/reopen/")
    assert reopened.status_code == 200
    assert reopened.json()["status"] == "open" and reopened.json()["resolved_by"] is None
    assert reopened.json()["resolution_note"] == ""
    twice = client.post(f"{DIFFERENCES}{item.pk}/reopen/")
    assert twice.status_code == 409 and twice.json()["code"] == "difference_not_resolved"


@pytest.mark.parametrize("body", [{}, {"note": ""}, {"note": "   "}, {"note": "x" * 2001}, {"note": 12},
                                  {"note": None}, {"note": "ok", "by": "me"}, ["note"]])
def test_resolve_refuses_bad_bodies(api_client_for, taobao_store, body):
    item = difference(taobao_store)
    answer = api_client_for("finance").post(f"{DIFFERENCES}{item.pk}/resolve/", body, format="json")
    assert answer.status_code == 400
    assert answer.json()["code"] == "invalid"
    item.refresh_from_db()
    assert item.status == DifferenceStatus.OPEN


def test_resolve_takes_a_note_of_2000_characters(api_client_for, taobao_store):
    item = difference(taobao_store)
    answer = api_client_for("finance").post(f"{DIFFERENCES}{item.pk}/resolve/", {"note": "说" * 2000},
                                            format="json")
    assert answer.status_code == 200


def test_a_closed_month_refuses_resolve_reopen_and_recheck(api_client_for, role_users, taobao_store):
    item = difference(taobao_store)
    resolved = difference(taobao_store, DifferenceReason.FEE_DIFFERS, status=DifferenceStatus.RESOLVED)
    FinancePeriod.objects.create(store=taobao_store, month=this_month(), status=FinancePeriodStatus.CLOSED)
    client = api_client_for("finance")
    for answer in (client.post(f"{DIFFERENCES}{item.pk}/resolve/", {"note": "x"}, format="json"),
                   client.post(f"{DIFFERENCES}{resolved.pk}/reopen/"),
                   client.post(RECHECK, {"store": "tb", "source": "alipay", "month": f"{this_month():%Y-%m}"},
                               format="json")):
        assert answer.status_code == 409
        assert answer.json()["code"] == "finance_period_closed"


def test_the_shared_refusal_names_the_month_and_sees_an_all_stores_close(taobao_store):
    # The one refusal the API's re-check (and matching) use: a month closed for every store refuses this one too;
    # the month before, still open, is not refused.
    month, before = this_month(), (this_month() - timedelta(days=1)).replace(day=1)
    finance_month_refuse_closed(store_id=taobao_store.pk, month=month)
    FinancePeriod.objects.create(store=None, month=month, status=FinancePeriodStatus.CLOSED)
    with translation.override("en"), pytest.raises(ConflictError) as refused:
        finance_month_refuse_closed(store_id=taobao_store.pk, month=month)
    assert refused.value.code == "finance_period_closed" and refused.value.http_status == 409
    assert refused.value.message == f"The period {month:%Y-%m} is closed; reopen it first."
    finance_month_refuse_closed(store_id=taobao_store.pk, month=before)
    finance_month_refuse_closed(store_id=None, month=before)


# --- Summary and re-check -------------------------------------------------------------------------------


def test_recheck_answers_what_matching_found(api_client_for, planted, taobao_store):
    month = f"{this_month():%Y-%m}"
    answer = api_client_for("manager").post(RECHECK, {"store": "tb", "source": "alipay", "month": month},
                                            format="json")
    assert answer.status_code == 200, answer.json()
    body = answer.json()
    assert body["store"] == "tb" and body["source"] == "alipay" and body["month"] == month
    assert body["rows"] == 4 and body["matched"] == 3
    assert Decimal(body["matched_amount"]) == sum(order.paid_amount for order in planted) - Decimal("5.00")
    assert body["differences_by_reason"]["amount_differs"] == 1
    assert body["differences_by_reason"]["missing_in_hub"] == 1
    assert body["differences_by_reason"]["settled_twice"] == 0
    assert body["differences"] == sum(body["differences_by_reason"].values())
    assert Difference.objects.filter(store=taobao_store).count() == body["differences"]


def test_summary_is_read_from_stored_rows_and_differences(api_client_for, planted, taobao_store):
    client = api_client_for("finance")
    month = f"{this_month():%Y-%m}"
    checked = client.post(RECHECK, {"store": "tb", "source": "alipay", "month": month}, format="json").json()
    other = Store.objects.create(platform=Platform.SHOPIFY, code="shop", name="Shopify 店")
    settlement(other, [{"gross": Decimal("20.00"), "currency": "USD"}], source=SettlementSource.SHOPIFY_PAYOUTS)

    answer = client.get(SUMMARIES, {"month": month})
    assert answer.status_code == 200, answer.json()
    summaries = {(item["store"], item["source"]): item for item in answer.json()}
    assert set(summaries) == {("tb", "alipay"), ("shop", "shopify_payouts")}
    tb = summaries[("tb", "alipay")]
    assert (tb["rows"], tb["matched"]) == (checked["rows"], checked["matched"])
    assert tb["matched_amounts"] == [{"currency": "CNY", "amount": checked["matched_amount"]}]
    assert tb["differences_by_reason"] == checked["differences_by_reason"]
    assert tb["differences"] == checked["differences"] and tb["month"] == month
    shop = summaries[("shop", "shopify_payouts")]
    assert shop["matched_amounts"] == [{"currency": "USD", "amount": "20.00"}] and shop["differences"] == 0

    # A resolved difference no longer counts as open; a missing_in_hub row stays unmatched.
    item = Difference.objects.get(reason=DifferenceReason.MISSING_IN_HUB)
    client.post(f"{DIFFERENCES}{item.pk}/resolve/", {"note": "别的店的订单"}, format="json")
    tb = {(i["store"], i["source"]): i for i in client.get(SUMMARIES, {"month": month}).json()}[("tb", "alipay")]
    assert tb["differences_by_reason"]["missing_in_hub"] == 0 and tb["matched"] == checked["matched"]

    assert [i["store"] for i in client.get(SUMMARIES, {"month": month, "store": "shop"}).json()] == ["shop"]
    assert [i["source"] for i in client.get(SUMMARIES, {"month": month, "source": "alipay"}).json()] == ["alipay"]
    assert client.get(SUMMARIES, {"month": month, "store": "nope"}).json() == []
    assert client.get(SUMMARIES, {"month": "2025-01"}).json() == []


@pytest.mark.parametrize("query", [{}, {"month": ""}, {"month": "2026-13"}, {"month": "2026-11", "shop": "tb"},
                                   {"month": "2026-11", "source": "paypal"}, {"month": "2026-11-01"}])
def test_bad_summary_queries_are_400(api_client_for, query):
    answer = api_client_for("finance").get(SUMMARIES, query)
    assert answer.status_code == 400
    assert answer.json()["code"] == "invalid"


@pytest.mark.parametrize("body", [{}, {"store": "tb", "source": "alipay"}, {"store": "tb", "source": "alipay",
                                                                         "month": "2026-13"},
                                  {"store": "tb", "source": "paypal", "month": "2026-11"},
                                  {"store": "tb", "source": "alipay", "month": "2026-11", "fee_rate": "0.1"},
                                  {"store": 1, "source": "alipay", "month": "2026-11"},
                                  {"store": "t" * 51, "source": "alipay", "month": "2026-11"}, "tb"])
def test_bad_recheck_bodies_are_400(api_client_for, taobao_store, body):
    answer = api_client_for("finance").post(RECHECK, body, format="json")
    assert answer.status_code == 400
    assert answer.json()["code"] == "invalid"


def test_recheck_of_an_unknown_store_is_404(api_client_for):
    answer = api_client_for("finance").post(RECHECK, {"store": "nope", "source": "alipay", "month": "2026-11"},
                                            format="json")
    assert answer.status_code == 404 and answer.json()["code"] == "store_not_found"


# --- Schemathesis on real differences --------------------------------------------------------------------

# The staff run (tests/oms/test_schemathesis.py) has no differences, so its finance calls mostly end in 404; this
# one gives them differences and the store to work on. Resolving and reopening depend on the state the previous
# call left (a valid note on a resolved difference is rightly 409), so "valid data is accepted" cannot hold there.
FINANCE_CONFIG = """
[dictionaries.differences]
values = [1, 2, 3]
[dictionaries.stores]
values = ["tb"]

[[operations]]
include-path-regex = '^/api/v1/finance/differences/\\{id\\}/'
checks.positive_data_acceptance.enabled = false
parameters = { "path.id" = { dictionary = "differences", probability = 0.7 } }

[[operations]]
include-path = "/api/v1/finance/recheck/"
parameters = { "body.store" = { dictionary = "stores", probability = 0.7 } }
"""


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_finance_api_conforms_to_the_schema_on_real_differences(live_server, role_users, taobao_store, monkeypatch,
                                                                settings, tmp_path):
    for n in (1, 2, 3):
        difference(taobao_store, id=n, status=DifferenceStatus.RESOLVED if n == 3 else DifferenceStatus.OPEN)
    monkeypatch.setattr(staff_run, "CONFIG", FINANCE_CONFIG)
    # The run sends hundreds of requests a minute on purpose (as the staff run, unthrottled).
    cache.clear()
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {
        **settings.REST_FRAMEWORK.get("DEFAULT_THROTTLE_RATES", {}), "staff": None}}
    token = Token.objects.create(user=role_users["finance"])
    result = staff_run.run_schemathesis(url=live_server.url, header=f"Authorization: Token {token.key}",
                                        workdir=tmp_path, include="finance")
    assert result.returncode == 0, staff_run.report(result)
    assert "passed" in result.stdout and "Failures:" not in result.stdout, staff_run.report(result)
