"""Fulfilment pages: shipments (being written)."""

urlpatterns: list = []
