"""The URL map of a benchmark run: the project's own (oms.urls) plus the bare webhook view.

Settings switch ROOT_URLCONF here only when OMS_BENCH_BARE_WEBHOOK is on (`bench webhook` sets it for its
gunicorn), so the production URL map never holds a benchmark route and oms.urls never imports bench.
"""

from django.urls import path

from bench import views
from oms import urls as project_urls

urlpatterns = [
    path("bench/bare-webhook/<slug:store_code>/", views.bare_webhook, name="bench-bare-webhook"),
    *project_urls.urlpatterns,
]

handler400 = project_urls.handler400
handler403 = project_urls.handler403
handler404 = project_urls.handler404
handler500 = project_urls.handler500
