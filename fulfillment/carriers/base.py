"""The carrier adapter interface, its errors, and the plain dataclasses adapters take and return."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

# The services a waybill request may ask for; each adapter maps them to its carrier's products.
SERVICES = ("standard", "express", "next_morning")

# What every carrier's tracking codes are normalised to (oldest first, one per scan).
ACCEPTED, IN_TRANSIT, OUT_FOR_DELIVERY, DELIVERED, EXCEPTION = (
    "accepted",
    "in_transit",
    "out_for_delivery",
    "delivered",
    "exception",
)
EVENT_CODES = (ACCEPTED, IN_TRANSIT, OUT_FOR_DELIVERY, DELIVERED, EXCEPTION)


@dataclass(frozen=True)
class Address:
    name: str
    phone: str
    province: str
    city: str
    district: str
    address: str
    country: str = "CN"


@dataclass(frozen=True)
class WaybillRequest:
    # Our shipment number, the carrier's order key: asking again with it returns the first waybill, never
    # a second one (SF refuses the repeat and the adapter recovers the first from SF's order search).
    order_ref: str
    sender: Address
    receiver: Address
    weight_grams: int
    service: str = "standard"  # one of SERVICES
    items: tuple[tuple[str, int], ...] = ()  # (name, quantity)


@dataclass(frozen=True)
class Waybill:
    tracking_number: str  # the customer-visible waybill number
    # The carrier's sorting / hand-over code printed on the label (like SF's 三段码 route code):
    # internal, never shown to customers.
    handover_code: str
    label: dict  # what the label printer needs (dest_route_code, origin_code, service_name, …), JSON-able
    # True when the carrier had made it on an earlier call whose answer was lost and the adapter found it
    # again; the same waybill either way, so it takes no part in equality.
    recovered: bool = field(default=False, compare=False)


@dataclass(frozen=True)
class TrackingEvent:
    tracking_number: str
    occurred_at: datetime  # aware, UTC
    code: str  # one of EVENT_CODES
    description: str  # the carrier's own words, for the timeline
    location: str


class CarrierError(Exception):
    """Base of every carrier failure; ``code`` is the carrier's error code or one of ours."""

    def __init__(self, message: Any, *, code: str = ""):
        super().__init__(message)
        self.message = message  # may be a lazy translation (ManualAdapter)
        self.code = str(code)

    def __str__(self) -> str:
        return str(self.message)


class CarrierTransientError(CarrierError):
    """Worth retrying later: timeouts, connection errors, 5xx, rate limits."""


class CarrierPermanentError(CarrierError):
    """The carrier refused (bad address, unknown waybill, no API): retrying the same thing fails again."""


class CarrierAuthError(CarrierPermanentError):
    """Credentials or signature rejected: an operator must fix the carrier account's config."""


class CarrierAdapter(ABC):
    """One carrier account: creates waybills, reads tracking, cancels. Built from a plain config dict."""

    kind: ClassVar[str] = ""

    def __init__(self, config: Mapping[str, Any] | None = None):
        self.config = dict(config or {})

    @abstractmethod
    def create_waybill(self, request: WaybillRequest) -> Waybill:
        """A waybill for ``request``; the same ``order_ref`` again returns the same waybill (``recovered``)."""

    @abstractmethod
    def query_tracking(self, tracking_numbers: list[str]) -> dict[str, list[TrackingEvent]]:
        """Events per number, oldest first; numbers the carrier does not know are omitted."""

    @abstractmethod
    def cancel_waybill(self, tracking_number: str, *, order_ref: str = "") -> None:
        """Cancel a waybill that has not been picked up; cancelling it again is not an error.

        ``order_ref`` is the ``WaybillRequest.order_ref`` the waybill was made for: carriers such as SF
        cancel by their order key, not by the waybill number."""
