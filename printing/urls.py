"""URL map of the printing pages under /printing/ (the bridge API lives in printing.urls_api under /api/v1/)."""

from printing import views

app_name = "printing"

urlpatterns = [*views.urlpatterns]
