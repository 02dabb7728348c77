"""Desk pages: the search box and the customer view."""

from desk import views, views_customer

app_name = "desk"

urlpatterns = [*views.urlpatterns, *views_customer.urlpatterns]
