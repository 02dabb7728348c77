"""The buyers' side: the customer API (/api/customer/v1/) and the public tracking page (/t/<token>)."""

app_name = "customer"

urlpatterns = []
