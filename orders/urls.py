"""URLs of the order pages."""

from django.urls import path

from orders import views

app_name = "orders"

urlpatterns = [
    path("", views.order_list, name="list"),
    path("<int:pk>/", views.order_detail, name="detail"),
    path("<int:pk>/transition/<slug:name>/", views.order_transition, name="transition"),
    path("<int:pk>/hold/", views.order_hold, name="hold"),
    path("<int:pk>/release/<slug:reason>/", views.order_release, name="release"),
    path("<int:pk>/note/", views.order_note, name="note"),
    path("<int:pk>/shipment/", views.order_shipment, name="shipment"),
]
