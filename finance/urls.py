"""URLs of the finance pages: the overview, settlement imports, the difference list and the month-end close."""

from django.urls import path

from finance import views, views_close, views_reconcile

app_name = "finance"

urlpatterns = [
    path("", views.finance_overview, name="overview"),
    *views_reconcile.urlpatterns,
    path("close/", views_close.close_page, name="close"),
    path("close/report.xlsx", views_close.report_download, name="close-report"),
    path("close/journal-<str:layout>.csv", views_close.journal_download, name="close-journal"),
    path("close/close/", views_close.close_period, name="close-close"),
    path("close/reopen/", views_close.reopen_period, name="close-reopen"),
    path("close/payouts/", views_close.payouts_recheck, name="close-payouts"),
    path("close/profit.csv", views_close.profit_download, name="close-profit"),
]
