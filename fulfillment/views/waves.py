"""Fulfilment pages: waves (being written)."""

urlpatterns: list = []
