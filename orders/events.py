"""One function per order event type; each writes one OrderEvent row in the caller's transaction."""

from orders.models import Order, OrderEvent, OrderEventType


def _actor_fields(actor, actor_label: str) -> dict:
    if actor is not None and getattr(actor, "is_authenticated", False):
        return {"actor": actor, "actor_label": ""}
    return {"actor": None, "actor_label": actor_label or "system"}


def event_order_created(*, order: Order, actor, actor_label: str, data: dict | None = None) -> OrderEvent:
    return OrderEvent.objects.create(order=order, type=OrderEventType.CREATED, to_status=order.status,
                                     data=data or {}, **_actor_fields(actor, actor_label))


def event_order_status_changed(*, order: Order, from_status: str, to_status: str, transition: str, actor,
                               actor_label: str, reason: str = "", data: dict | None = None) -> OrderEvent:
    return OrderEvent.objects.create(order=order, type=OrderEventType.STATUS_CHANGED, from_status=from_status,
                                     to_status=to_status, reason=reason[:500],
                                     data={"transition": transition, **(data or {})},
                                     **_actor_fields(actor, actor_label))


def event_order_hold_added(*, order: Order, hold_reason: str, note: str, actor, actor_label: str) -> OrderEvent:
    return OrderEvent.objects.create(order=order, type=OrderEventType.HOLD_ADDED, reason=note[:500],
                                     data={"hold_reason": hold_reason}, from_status=order.status,
                                     to_status=order.status, **_actor_fields(actor, actor_label))


def event_order_hold_released(*, order: Order, hold_reason: str, note: str, actor, actor_label: str) -> OrderEvent:
    return OrderEvent.objects.create(order=order, type=OrderEventType.HOLD_RELEASED, reason=note[:500],
                                     data={"hold_reason": hold_reason}, from_status=order.status,
                                     to_status=order.status, **_actor_fields(actor, actor_label))


def event_order_note_added(*, order: Order, note: str, actor, actor_label: str) -> OrderEvent:
    return OrderEvent.objects.create(order=order, type=OrderEventType.NOTE_ADDED, reason=note[:500],
                                     **_actor_fields(actor, actor_label))


def event_order_stock_reserved(*, order: Order, warehouse_ids: list[int]) -> OrderEvent:
    return OrderEvent.objects.create(order=order, type=OrderEventType.STOCK_RESERVED, actor_label="system",
                                     from_status=order.status, to_status=order.status,
                                     data={"warehouse_ids": warehouse_ids})


def event_order_stock_released(*, order: Order, units: int, reason: str) -> OrderEvent:
    return OrderEvent.objects.create(order=order, type=OrderEventType.STOCK_RELEASED, actor_label="system",
                                     reason=reason[:500], from_status=order.status, to_status=order.status,
                                     data={"units": units})


def event_order_stock_shipped(*, order: Order, units: int) -> OrderEvent:
    return OrderEvent.objects.create(order=order, type=OrderEventType.STOCK_SHIPPED, actor_label="system",
                                     from_status=order.status, to_status=order.status, data={"units": units})


def event_order_channel_mismatch(*, order: Order, target: str, raw_status: str) -> OrderEvent:
    """The platform reports a status the hub cannot follow from where the order is."""
    return OrderEvent.objects.create(order=order, type=OrderEventType.CHANNEL_MISMATCH, actor_label="channel",
                                     from_status=order.status, to_status=order.status, reason=raw_status[:500],
                                     data={"platform_status": target, "raw_status": raw_status})


def event_order_shipment_push(*, order: Order, state: str, carrier: str, tracking: str, line_ids: list,
                              attempts: int = 0, error: str = "", reason: str = "", actor=None,
                              data: dict | None = None) -> OrderEvent:
    """A shipment confirmation to the platform was queued, confirmed (wholly or in part), gave up, or a person
    retried or discarded it. ``state`` says which; ``reason`` is the sentence shown, ``error`` the platform's."""
    return OrderEvent.objects.create(order=order, type=OrderEventType.SHIPMENT_PUSH,
                                     from_status=order.status, to_status=order.status, reason=(error or reason)[:500],
                                     data={"state": state, "carrier": carrier, "tracking": tracking,
                                           "line_ids": line_ids, "attempts": attempts, **(data or {})},
                                     **_actor_fields(actor, "channel"))


def event_order_payment_capture(*, order: Order, state: str, reason: str, error: str = "", attempts: int = 0,
                                data: dict | None = None) -> OrderEvent:
    """The hub queued, made or gave up the capture of an authorized payment on the platform.

    Kept as an "updated" row (with ``data.payment_capture`` saying which step) rather than a type of its own,
    so the event type choices, and with them the orders schema, stay as they are."""
    return OrderEvent.objects.create(order=order, type=OrderEventType.UPDATED, actor_label="channel",
                                     from_status=order.status, to_status=order.status,
                                     reason=reason[:500],
                                     data={"payment_capture": state, "attempts": attempts, "error": error,
                                           **(data or {})})
