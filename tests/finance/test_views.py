"""The reconciliation pages: who may see them, uploads and their refusals, progress, resolving and re-checking."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from finance import forms as finance_forms
from finance import views_reconcile
from finance.models import (
    BankMapping,
    Difference,
    DifferenceReason,
    DifferenceStatus,
    FinancePeriod,
    FinancePeriodStatus,
    ImportFailure,
    SettlementFile,
    SettlementFileStatus,
    SettlementRow,
)
from finance.readers.base import SettlementSource
from orders.models import Platform, Store

SAMPLES = Path(__file__).parent / "samples"
SHOPIFY = (SAMPLES / "shopify_payouts_bom.csv").read_bytes()
PAGES = ["/finance/imports/", "/finance/differences/"]


@pytest.fixture
def shop(db) -> Store:
    return Store.objects.create(platform=Platform.SHOPIFY, code="shop-fin", name="独立站")


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def upload(client: Client, *, store: Store | None, data: bytes = SHOPIFY, name: str = "payouts.csv",
           source: str = SettlementSource.SHOPIFY_PAYOUTS, **extra):
    fields = {"source": source, "file": SimpleUploadedFile(name, data, content_type="text/csv"), **extra}
    if store is not None:
        fields["store"] = store.pk
    return client.post("/finance/imports/", fields)


def a_difference(store: Store, **overrides) -> Difference:
    values = {"month": date(2026, 9, 1), "source": SettlementSource.SHOPIFY_PAYOUTS, "store": store,
              "reason": DifferenceReason.MISSING_IN_SETTLEMENT, "expected_amount": "56.29", "currency": "USD"}
    values.update(overrides)
    return Difference.objects.create(**values)


@pytest.mark.parametrize("role, status", [("finance", 200), ("manager", 200), ("admin", 200),
                                          ("warehouse", 403), ("customer_service", 403)])
def test_only_finance_manager_and_admin_see_the_pages(role_users, role, status):
    client = client_for(role_users[role])

    assert [client.get(page).status_code for page in PAGES] == [status, status]


@pytest.mark.parametrize("role", ["warehouse", "customer_service"])
def test_other_roles_can_neither_upload_nor_resolve(role_users, shop, role):
    difference = a_difference(shop)
    client = client_for(role_users[role])

    assert upload(client, store=shop).status_code == 403
    assert client.post(f"/finance/differences/{difference.pk}/resolve/", {"note": "checked"}).status_code == 403
    assert client.post("/finance/differences/recheck/", {"store": shop.pk, "source": "shopify_payouts",
                                                         "month": "2026-09"}).status_code == 403
    assert not SettlementFile.objects.exists()
    difference.refresh_from_db()
    assert difference.status == DifferenceStatus.OPEN


def test_anonymous_is_sent_to_log_in(db):
    response = Client().get("/finance/imports/")

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=/finance/imports/")


def test_a_shopify_payouts_csv_is_uploaded_and_imported(role_users, shop):
    client = client_for(role_users["finance"])

    response = upload(client, store=shop)

    settlement_file = SettlementFile.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/finance/imports/{settlement_file.pk}/"
    assert settlement_file.status == SettlementFileStatus.IMPORTED
    assert (settlement_file.source, settlement_file.store, settlement_file.uploaded_by) == (
        SettlementSource.SHOPIFY_PAYOUTS, shop, role_users["finance"])
    assert settlement_file.row_count == 4
    assert SettlementRow.objects.filter(file=settlement_file).count() == 4
    detail = client.get(response["Location"])
    assert detail.status_code == 200
    assert 'data-status="imported"' in detail.content.decode()
    assert "hx-trigger" not in detail.content.decode()  # done: nothing polls
    listing = client.get("/finance/imports/").content.decode()
    assert f'data-file="{settlement_file.pk}"' in listing
    assert "payouts.csv" in listing


def test_a_large_file_is_imported_by_the_task_with_progress(role_users, shop, monkeypatch, celery_eager,
                                                            django_capture_on_commit_callbacks):
    monkeypatch.setattr(views_reconcile, "INLINE_IMPORT_MAX_BYTES", 10)
    client = client_for(role_users["finance"])

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        upload(client, store=shop)
    settlement_file = SettlementFile.objects.get()
    assert settlement_file.status == SettlementFileStatus.PENDING
    progress = client.get(f"/finance/imports/{settlement_file.pk}/progress/", HTTP_HX_REQUEST="true")
    assert 'hx-trigger="every 1s"' in progress.content.decode()
    assert "HX-Refresh" not in progress

    assert len(callbacks) == 1
    callbacks[0]()  # the commit: the task is queued and, eager, runs here

    settlement_file.refresh_from_db()
    assert settlement_file.status == SettlementFileStatus.IMPORTED
    assert settlement_file.progress_done == settlement_file.progress_total == 4
    progress = client.get(f"/finance/imports/{settlement_file.pk}/progress/", HTTP_HX_REQUEST="true")
    assert progress["HX-Refresh"] == "true"
    assert "hx-trigger" not in progress.content.decode()


def test_the_same_file_twice_is_a_form_error(role_users, shop):
    client = client_for(role_users["finance"])
    upload(client, store=shop)

    response = upload(client, store=shop, name="payouts again.csv")

    assert response.status_code == 400
    assert 'data-error-for="file"' in response.content.decode()
    assert "payouts.csv" in response.context["form"].errors["file"][0]
    assert SettlementFile.objects.count() == 1


def test_a_closed_period_is_a_form_error(role_users, shop):
    FinancePeriod.objects.create(store=shop, month=date(2026, 9, 1), status=FinancePeriodStatus.CLOSED)
    client = client_for(role_users["finance"])

    response = upload(client, store=shop)

    assert response.status_code == 400
    assert "2026-09" in response.context["form"].errors["file"][0]
    assert SettlementRow.objects.count() == 0
    assert SettlementFile.objects.get().failure == ImportFailure.PERIOD_CLOSED


def test_a_file_of_nul_bytes_fails_with_its_report_and_nothing_imported(role_users, shop):
    client = client_for(role_users["finance"])

    response = upload(client, store=shop, data=b"\x00" * 2048)

    settlement_file = SettlementFile.objects.get()
    assert response.status_code == 302
    assert settlement_file.status == SettlementFileStatus.FAILED
    assert SettlementRow.objects.count() == 0
    detail = client.get(response["Location"])
    assert detail.status_code == 200
    assert settlement_file.error_report
    assert settlement_file.error_report[0]["message"] in detail.content.decode()


def test_an_empty_file_is_a_form_error(role_users, shop):
    response = upload(client_for(role_users["finance"]), store=shop, data=b"")

    assert response.status_code == 400
    assert response.context["form"].errors["file"]
    assert not SettlementFile.objects.exists()


def test_a_file_over_the_limit_is_a_form_error(role_users, shop, monkeypatch):
    monkeypatch.setattr(finance_forms, "MAX_UPLOAD_BYTES", 1 << 20)

    response = upload(client_for(role_users["finance"]), store=shop, data=b"a" * ((1 << 20) + 1))

    assert response.status_code == 400
    assert [error.code for error in response.context["form"].errors.as_data()["file"]] == ["too_large"]
    assert not SettlementFile.objects.exists()


def test_a_nul_byte_in_the_file_name_is_not_stored_nor_a_500(role_users, shop):
    response = upload(client_for(role_users["finance"]), store=shop, name="pay\x00outs.csv")

    assert response.status_code == 302
    assert list(SettlementFile.objects.values_list("file_name", flat=True)) == ["payouts.csv"]


def test_store_and_bank_mapping_are_required_by_source(role_users, shop):
    client = client_for(role_users["finance"])

    without_store = upload(client, store=None)
    bank_without_mapping = upload(client, store=None, source=SettlementSource.BANK)

    assert without_store.status_code == bank_without_mapping.status_code == 400
    assert list(without_store.context["form"].errors) == ["store"]
    assert list(bank_without_mapping.context["form"].errors) == ["bank_mapping"]
    assert not SettlementFile.objects.exists()


def test_a_bank_statement_goes_without_store(role_users, shop):
    mapping = BankMapping.objects.create(name="招商银行", date_column="交易日期", description_column="摘要",
                                         amount_column="金额")
    client = client_for(role_users["finance"])

    upload(client, store=shop, source=SettlementSource.BANK, bank_mapping=mapping.pk, data=b"x,y\n1,2\n")

    settlement_file = SettlementFile.objects.get()
    assert (settlement_file.store, settlement_file.bank_mapping) == (None, mapping)


def test_resolving_needs_a_note(role_users, shop):
    difference = a_difference(shop)
    client = client_for(role_users["finance"])

    response = client.post(f"/finance/differences/{difference.pk}/resolve/", {"note": "   "}, follow=True)

    difference.refresh_from_db()
    assert difference.status == DifferenceStatus.OPEN
    assert difference.resolved_by is None
    assert [m.level_tag for m in response.context["messages"]] == ["error"]


def test_resolving_with_a_note_keeps_who_and_why(role_users, shop):
    difference = a_difference(shop)
    client = client_for(role_users["manager"])

    response = client.post(f"/finance/differences/{difference.pk}/resolve/?status=open", {"note": "平台次月结算"})

    assert response.status_code == 302
    assert response["Location"] == "/finance/differences/?status=open"
    difference.refresh_from_db()
    assert difference.status == DifferenceStatus.RESOLVED
    assert difference.resolved_by == role_users["manager"]
    assert difference.resolved_at is not None
    assert difference.resolution_note == "平台次月结算"
    again = client.post(f"/finance/differences/{difference.pk}/resolve/", {"note": "twice"}, follow=True)
    assert [m.level_tag for m in again.context["messages"]] == ["success", "error"]  # the first answer, then this
    difference.refresh_from_db()
    assert difference.resolution_note == "平台次月结算"


def test_the_list_filters(role_users, shop):
    other = Store.objects.create(platform=Platform.SHOPIFY, code="shop-2", name="第二店")
    kept = a_difference(shop)
    a_difference(shop, month=date(2026, 8, 1))
    a_difference(other)
    a_difference(shop, reason=DifferenceReason.AMOUNT_DIFFERS)
    client = client_for(role_users["finance"])

    response = client.get("/finance/differences/", {"month": "2026-09", "store": shop.pk, "status": "open",
                                                    "reason": "missing_in_settlement", "source": "shopify_payouts"})

    assert [d.pk for d in response.context["page"].object_list] == [kept.pk]
    partial = client.get("/finance/differences/?month=2026-09", HTTP_HX_REQUEST="true")
    assert partial.templates[0].name == "finance/partials/difference_table.html"
    assert partial.context["page"].paginator.count == 3


@pytest.mark.parametrize("month", ["2026-13", "26-09", "\u0662\u0660\u0662\u0666-09", "9" * 200])
def test_a_bad_month_filter_is_a_message_not_a_500(role_users, month):
    response = client_for(role_users["finance"]).get("/finance/differences/", {"month": month})

    assert response.status_code == 200
    assert response.context["filter"].errors["month"]


def test_recheck_runs_the_match_and_shows_the_summary(role_users, shop):
    client = client_for(role_users["finance"])
    upload(client, store=shop)

    response = client.post("/finance/differences/recheck/", {"store": shop.pk, "source": "shopify_payouts",
                                                             "month": "2026-09"})

    assert response.status_code == 200
    summary = response.context["summary"]
    # No orders in the hub: both sales and the refund are missing in the hub; the payout is not a sale.
    assert (summary["rows"], summary["matched"], summary["differences"]) == (2, 0, 3)
    assert list(Difference.objects.filter(store=shop).values_list("reason", flat=True)) == [
        DifferenceReason.MISSING_IN_HUB] * 3
    assert 'data-differences="3"' in response.content.decode()


def test_recheck_with_a_bad_month_is_a_form_error(role_users, shop):
    response = client_for(role_users["finance"]).post(
        "/finance/differences/recheck/", {"store": shop.pk, "source": "shopify_payouts", "month": "2026-00"})

    assert response.status_code == 400
    assert response.context["recheck_form"].errors["month"]
