"""The manual carrier: no API, the packer scans or types the tracking number from a pre-printed waybill."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from fulfillment.carriers.base import (
    CarrierAdapter,
    CarrierPermanentError,
    TrackingEvent,
    Waybill,
    WaybillRequest,
)


class ManualAdapter(CarrierAdapter):
    kind = "manual"

    def create_waybill(self, request: WaybillRequest) -> Waybill:
        # Lazy, so the message is shown in the language of whoever reads it, not of the import.
        raise CarrierPermanentError(
            _("This carrier has no API: scan or type the tracking number."), code="manual_carrier"
        )

    def query_tracking(self, tracking_numbers: list[str]) -> dict[str, list[TrackingEvent]]:
        return {}  # no feed: the parcel's progress is entered by hand, if at all

    def cancel_waybill(self, tracking_number: str, *, order_ref: str = "") -> None:
        """Nothing to tell anyone: the paper waybill is simply not used."""
