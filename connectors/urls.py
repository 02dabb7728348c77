"""URLs of the channel pages."""

from django.urls import path

from connectors import views, views_stock

app_name = "connectors"

urlpatterns = [
    path("", views.sync_status, name="status"),
    path("stores/<int:store_id>/sync/", views.sync_now, name="sync_now"),
    path("stores/new/", views.store_edit, name="store_new"),
    path("stores/<int:store_id>/", views.store_edit, name="store_edit"),
    path("dead-letters/", views.dead_letter_list, name="dead_letters"),
    path("stock/", views_stock.channel_stock, name="stock"),
    path("dead-letters/<int:message_id>/<slug:action>/", views.dead_letter_action, name="dead_letter_action"),
    path("shipment-pushes/<int:push_id>/<slug:action>/", views.shipment_push_action, name="shipment_push_action"),
]
