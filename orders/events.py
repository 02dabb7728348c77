"""One function per order event type; each writes one OrderEvent row in the caller's transaction."""

from oms.events import event_build, event_record, events_record_many
from orders.models import Order, OrderEvent, OrderEventType


def event_order_created(*, order: Order, actor, actor_label: str, data: dict | None = None) -> OrderEvent:
    return events_record_many([event_order_created_row(order=order, actor=actor, actor_label=actor_label,
                                                       data=data)])[0]


def event_order_created_row(*, order: Order, actor, actor_label: str, data: dict | None = None) -> OrderEvent:
    """The "created" event unsaved, for a batch written with oms.events.events_record_many."""
    return event_build(OrderEvent, order=order, type=OrderEventType.CREATED, to_status=order.status,
                       data=data or {}, actor=actor, actor_label=actor_label)


def event_order_status_changed_row(*, order: Order, from_status: str, to_status: str, transition: str, actor,
                                   actor_label: str, reason: str = "", data: dict | None = None) -> OrderEvent:
    """A status change unsaved, for a batch written with oms.events.events_record_many."""
    return event_build(OrderEvent, order=order, type=OrderEventType.STATUS_CHANGED, from_status=from_status,
                       to_status=to_status, reason=reason, data={"transition": transition, **(data or {})},
                       actor=actor, actor_label=actor_label)


def event_order_stock_reserved_row(*, order: Order, warehouse_ids: list[int]) -> OrderEvent:
    return event_build(OrderEvent, order=order, type=OrderEventType.STOCK_RESERVED, from_status=order.status,
                       to_status=order.status, data={"warehouse_ids": warehouse_ids}, actor=None,
                       actor_label="system")


def event_order_status_changed(*, order: Order, from_status: str, to_status: str, transition: str, actor,
                               actor_label: str, reason: str = "", data: dict | None = None) -> OrderEvent:
    return events_record_many([event_order_status_changed_row(
        order=order, from_status=from_status, to_status=to_status, transition=transition, actor=actor,
        actor_label=actor_label, reason=reason, data=data)])[0]


def _hold_event(type_: str, *, order: Order, hold_reason: str, note: str, actor, actor_label: str) -> OrderEvent:
    return event_record(OrderEvent, order=order, type=type_, reason=note, data={"hold_reason": hold_reason},
                        from_status=order.status, to_status=order.status, actor=actor, actor_label=actor_label)


def event_order_hold_added(*, order: Order, hold_reason: str, note: str, actor, actor_label: str) -> OrderEvent:
    return _hold_event(OrderEventType.HOLD_ADDED, order=order, hold_reason=hold_reason, note=note, actor=actor,
                       actor_label=actor_label)


def event_order_hold_released(*, order: Order, hold_reason: str, note: str, actor, actor_label: str) -> OrderEvent:
    return _hold_event(OrderEventType.HOLD_RELEASED, order=order, hold_reason=hold_reason, note=note, actor=actor,
                       actor_label=actor_label)


def event_order_note_added(*, order: Order, note: str, actor, actor_label: str) -> OrderEvent:
    return event_record(OrderEvent, order=order, type=OrderEventType.NOTE_ADDED, reason=note, actor=actor,
                        actor_label=actor_label)


def event_order_priority_raised(*, order: Order, from_priority: int, reason: str, actor, actor_label: str,
                                data: dict | None = None) -> OrderEvent:
    """The order's priority went up (an expedite). An "updated" row with ``data.priority`` rather than a type of
    its own, so the event type choices, and with them the orders schema, stay as they are."""
    return _unchanged(order, OrderEventType.UPDATED, actor=actor, actor_label=actor_label, reason=reason,
                      data={"priority": {"from": from_priority, "to": order.priority}, **(data or {})})


def _unchanged(order: Order, type_: str, *, actor=None, actor_label: str = "system", **fields) -> OrderEvent:
    """An event that leaves the order where it is (from and to are both its current status)."""
    return event_record(OrderEvent, order=order, type=type_, from_status=order.status, to_status=order.status,
                        actor=actor, actor_label=actor_label, **fields)


def event_order_stock_reserved(*, order: Order, warehouse_ids: list[int]) -> OrderEvent:
    return _unchanged(order, OrderEventType.STOCK_RESERVED, data={"warehouse_ids": warehouse_ids})


def event_order_stock_released(*, order: Order, units: int, reason: str) -> OrderEvent:
    return _unchanged(order, OrderEventType.STOCK_RELEASED, reason=reason, data={"units": units})


def event_order_stock_shipped(*, order: Order, units: int) -> OrderEvent:
    return _unchanged(order, OrderEventType.STOCK_SHIPPED, data={"units": units})


def event_order_channel_mismatch(*, order: Order, target: str, raw_status: str) -> OrderEvent:
    """The platform reports a status the hub cannot follow from where the order is."""
    return _unchanged(order, OrderEventType.CHANNEL_MISMATCH, actor_label="channel", reason=raw_status,
                      data={"platform_status": target, "raw_status": raw_status})


def event_order_shipment_push(*, order: Order, state: str, carrier: str, tracking: str, line_ids: list,
                              attempts: int = 0, error: str = "", reason: str = "", actor=None,
                              data: dict | None = None) -> OrderEvent:
    """A shipment confirmation to the platform was queued, confirmed (wholly or in part), gave up, or a person
    retried or discarded it. ``state`` says which; ``reason`` is the sentence shown, ``error`` the platform's."""
    return _unchanged(order, OrderEventType.SHIPMENT_PUSH, actor=actor, actor_label="channel",
                      reason=error or reason,
                      data={"state": state, "carrier": carrier, "tracking": tracking, "line_ids": line_ids,
                            "attempts": attempts, **(data or {})})


def event_order_replacement_linked(*, order: Order, replaces: Order, replacement: Order, reason: str, actor=None,
                                   actor_label: str = "system", data: dict | None = None) -> OrderEvent:
    """A replacement order (after-sales exchange or resend) was made for ``replaces``; written on both orders.

    An "updated" row (``data.replacement`` says which side this order is) rather than a type of its own, so the
    event type choices, and with them the orders schema, stay as they are."""
    side = "replacement" if order.pk == replacement.pk else "original"
    return _unchanged(order, OrderEventType.UPDATED, actor=actor, actor_label=actor_label, reason=reason,
                      data={"replacement": side, "replaces_order": replaces.number,
                            "replacement_order": replacement.number, **(data or {})})


def event_order_payment_capture(*, order: Order, state: str, reason: str, error: str = "", attempts: int = 0,
                                data: dict | None = None) -> OrderEvent:
    """The hub queued, made or gave up the capture of an authorized payment on the platform.

    Kept as an "updated" row (with ``data.payment_capture`` saying which step) rather than a type of its own,
    so the event type choices, and with them the orders schema, stay as they are."""
    return _unchanged(order, OrderEventType.UPDATED, actor_label="channel", reason=reason,
                      data={"payment_capture": state, "attempts": attempts, "error": error, **(data or {})})
