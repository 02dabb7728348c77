"""After-sales pages: the ticket queue and detail for customer service, receiving for the warehouse."""

from aftersales import views, views_receiving

app_name = "aftersales"

urlpatterns = [*views.urlpatterns, *views_receiving.urlpatterns]
