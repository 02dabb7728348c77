"""Warehouse pages of after-sales: the expected returns and the receiving (scan and grade) station."""

urlpatterns = []
