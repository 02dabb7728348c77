"""The customer view: one buyer across stores, with the desk's actions."""

urlpatterns = []
