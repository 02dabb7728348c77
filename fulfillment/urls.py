"""URL map of the fulfilment pages under /fulfillment/ (each view module brings its own patterns)."""

from fulfillment.views import kanban, packing, routing, shipments, waves

app_name = "fulfillment"

urlpatterns = [*kanban.urlpatterns, *packing.urlpatterns, *shipments.urlpatterns, *waves.urlpatterns,
               *routing.urlpatterns]
