"""Top-level URL map: web pages, the REST API v1, the OpenAPI schema, admin and health."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from aftersales.api import TicketViewSet
from connectors import views as connector_views
from desk.api import DeskSearchView
from finance.api import DifferenceViewSet, FinanceRecheckView, FinanceSummaryView
from inventory.api import StockLevelViewSet, StockReceiptViewSet
from oms import views
from orders.api import OrderViewSet

api_v1 = DefaultRouter()
api_v1.register("orders", OrderViewSet, basename="order")
api_v1.register("stock-levels", StockLevelViewSet, basename="stock-level")
api_v1.register("stock-receipts", StockReceiptViewSet, basename="stock-receipt")
api_v1.register("tickets", TicketViewSet, basename="ticket")
api_v1.register("finance/differences", DifferenceViewSet, basename="finance-difference")

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("orders/", include("orders.urls")),
    path("inventory/", include("inventory.urls")),
    path("finance/", include("finance.urls")),
    path("channels/", include("connectors.urls")),
    path("fulfillment/", include("fulfillment.urls")),
    path("printing/", include("printing.urls")),
    path("aftersales/", include("aftersales.urls")),
    path("desk/", include("desk.urls")),
    path("", include("customer.urls")),
    path("webhooks/<slug:platform>/<slug:store_code>/", connector_views.webhook, name="webhook"),
    path("api/v1/", include(api_v1.urls)),
    path("api/v1/", include("printing.urls_api")),
    path("api/v1/desk/search/", DeskSearchView.as_view(), name="desk-search-api"),
    path("api/v1/finance/summaries/", FinanceSummaryView.as_view(), name="finance-summaries-api"),
    path("api/v1/finance/recheck/", FinanceRecheckView.as_view(), name="finance-recheck-api"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="schema"), name="api-redoc"),
    path("admin/", admin.site.urls),
]

handler400 = "oms.views.error_400"
handler403 = "oms.views.error_403"
handler404 = "oms.views.error_404"
handler500 = "oms.views.error_500"
