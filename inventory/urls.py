"""URLs of the stock pages."""

from django.urls import path

from inventory import views

app_name = "inventory"

urlpatterns = [
    path("", views.stock_list, name="list"),
    path("low/", views.stock_low, name="low"),
    path("sku/<int:sku_id>/", views.sku_detail, name="sku"),
    path("receive/", views.stock_receive, name="receive"),
    path("stocktake/", views.stock_take, name="stocktake"),
    path("adjust/", views.stock_adjust, name="adjust"),
    path("export.xlsx", views.stock_export, name="export"),
    path("import/", views.stock_import, name="import"),
]
