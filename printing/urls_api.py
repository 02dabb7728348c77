"""API paths of the print bridge, included under /api/v1/ (names: print_bridge:claim, :ack, :printers)."""

from django.urls import path

from printing import api

app_name = "print_bridge"

urlpatterns = [
    path("print-bridge/claim/", api.BridgeClaimView.as_view(), name="claim"),
    path("print-bridge/jobs/<int:job_id>/ack/", api.BridgeAckView.as_view(), name="ack"),
    path("print-bridge/printers/", api.BridgePrinterListView.as_view(), name="printers"),
]
