"""Fulfilment pages: packing (being written)."""

urlpatterns: list = []
