"""URLs of the finance pages: the overview, settlement imports and the difference list."""

from django.urls import path

from finance import views, views_reconcile

app_name = "finance"

urlpatterns = [path("", views.finance_overview, name="overview"), *views_reconcile.urlpatterns]
