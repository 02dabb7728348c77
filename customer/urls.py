"""The buyers' side: the customer API (/api/customer/v1/) and the public tracking page (/t/<token>)."""

from django.urls import path
from drf_spectacular.views import SpectacularAPIView

from customer import api, views

app_name = "customer"

API = "api/customer/v1/"
# Its own schema: only /api/customer/ paths, under a title of its own (the staff schema leaves them out).
CUSTOMER_SCHEMA_SETTINGS = {
    "TITLE": "Order Hub customer API",
    "DESCRIPTION": "The mini-program's API v1: prove an order, then read the buyer's orders with a Bearer token.",
    "VERSION": "1.0.0",
    "PREPROCESSING_HOOKS": ["customer.schema.customer_endpoints_only"],
}

urlpatterns = [
    path(f"{API}proof/", api.ProofView.as_view(), name="api-proof"),
    path(f"{API}wechat/login/", api.WeChatLoginView.as_view(), name="api-wechat-login"),
    path(f"{API}wechat/binding/", api.WeChatBindingView.as_view(), name="api-wechat-binding"),
    path(f"{API}wechat/bindings/", api.WeChatBindingsView.as_view(), name="api-wechat-bindings"),
    path(f"{API}orders/", api.OrderListView.as_view(), name="api-orders"),
    path(f"{API}orders/<str:number>/", api.OrderDetailView.as_view(), name="api-order"),
    path(f"{API}orders/<str:number>/after-sales/", api.AfterSalesView.as_view(), name="api-after-sales"),
    path(f"{API}orders/<str:number>/expedite/", api.ExpediteView.as_view(), name="api-expedite"),
    path(f"{API}parcels/<str:token>/", api.ParcelView.as_view(), name="api-parcel"),
    path(f"{API}schema/", SpectacularAPIView.as_view(custom_settings=CUSTOMER_SCHEMA_SETTINGS), name="api-schema"),
    path("t/<str:token>", views.track, name="track"),
]
