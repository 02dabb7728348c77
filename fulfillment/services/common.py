"""Shared pieces of the fulfilment services: locks in the project's order, the transition runner, parcel summaries."""

from __future__ import annotations

from django.db import transaction
from django.utils.translation import gettext as _
from django_fsm import can_proceed

from fulfillment import events
from fulfillment.exceptions import MoveRefused, ShipmentNotFound
from fulfillment.models import (
    Shipment,
    ShipmentLine,
)
from oms.exceptions import ConflictError
from oms.fsm import transition_label
from oms.locks import lock_many, lock_one
from orders.models import Order, OrderStatus

# --- Reading and locking --------------------------------------------------------------------------

def _shipment_order_ids(shipment_id: int) -> set[int]:
    return set(ShipmentLine.objects.filter(shipment_id=shipment_id).values_list("order_id", flat=True))


class _OrdersChanged(Exception):
    """A merge added an order to the parcel between reading its orders and locking them."""


def _lock_shipment_with_orders(shipment_id: int) -> tuple[Shipment, list[Order]]:
    """Lock the shipment's orders, then the shipment (the project's lock order). Call inside atomic().

    Each attempt runs in a savepoint: when a merge added an order meanwhile, rolling the savepoint
    back releases the locks taken, so the next attempt takes every lock again in ascending order
    instead of waiting for a lower order while holding the parcel.
    """
    for _attempt in range(3):
        try:
            with transaction.atomic():
                order_ids = _shipment_order_ids(shipment_id)
                orders = lock_many(Order, order_ids)
                try:
                    shipment = lock_one(Shipment, shipment_id)
                except Shipment.DoesNotExist:
                    raise ShipmentNotFound(_("Shipment %(id)s does not exist.") % {"id": shipment_id}) from None
                if not _shipment_order_ids(shipment_id) <= order_ids:
                    raise _OrdersChanged
                return shipment, orders
        except _OrdersChanged:
            continue
    raise ConflictError(_("The shipment changed while it was being updated; try again."), code="retry")


# Orders whose parcels may be worked on: a held, cancelled or closed order stops its parcels.
WORKABLE_ORDER_STATES = {OrderStatus.READY, OrderStatus.IN_FULFILMENT, OrderStatus.PARTIALLY_SHIPPED}


def _require_workable_orders(shipment: Shipment, orders: list[Order]) -> None:
    """Refuse to pick, pack or ship a parcel while one of its orders is held (or no longer shippable)."""
    stopped = [o for o in orders if o.status not in WORKABLE_ORDER_STATES]
    if stopped:
        raise MoveRefused(_("Parcel %(number)s waits: order %(orders)s is %(status)s.") % {
            "number": shipment.number, "orders": ", ".join(o.number for o in stopped),
            "status": stopped[0].get_status_display()}, code="order_not_workable",
            data={"orders": [o.number for o in stopped]})


def _apply(shipment: Shipment, name: str, *, actor, actor_label: str = "system", reason: str = "",
           extra_fields: tuple[str, ...] = (), data: dict | None = None, refusal: str = "") -> None:
    """Run the FSM transition on a locked shipment, save it and write its event."""
    method = getattr(shipment, name)
    if not can_proceed(method, check_conditions=False):
        raise MoveRefused(_("Shipment %(number)s cannot “%(action)s” while it is %(status)s.") % {
            "number": shipment.number, "action": transition_label(Shipment, name), "status": shipment.get_status_display()},
            data={"status": shipment.status, "transition": name})
    if not can_proceed(method):
        raise MoveRefused(refusal or _("Shipment %(number)s is not ready to “%(action)s”.") % {
            "number": shipment.number, "action": transition_label(Shipment, name)}, data={"status": shipment.status})
    from_status = shipment.status
    method()
    shipment.save(update_fields=["status", "status_before_exception", "updated_at", *extra_fields])
    events.event_shipment_status_changed(shipment=shipment, from_status=from_status, transition=name, actor=actor,
                                         actor_label=actor_label, reason=reason, data=data)
