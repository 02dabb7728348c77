"""URLs of the finance pages."""

from django.urls import path

from finance import views

app_name = "finance"

urlpatterns = [path("", views.finance_overview, name="overview")]
