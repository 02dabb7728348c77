"""Fulfilment pages: routing (being written)."""

urlpatterns: list = []
