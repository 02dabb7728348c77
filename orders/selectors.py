"""Read-side queries of the order core: lists, details, and what a user may do with an order."""

from django.db.models import Prefetch, QuerySet
from django_fsm import can_proceed

from orders.models import HoldReason, Order, OrderEvent, OrderStatus
from orders.services import USER_TRANSITIONS, order_user_transition_refusal


def order_list_queryset() -> QuerySet[Order]:
    return Order.objects.select_related("store").order_by("-placed_at", "-id")


def order_detail_queryset() -> QuerySet[Order]:
    return Order.objects.select_related("store").prefetch_related(
        "lines", Prefetch("events", queryset=OrderEvent.objects.select_related("actor").order_by("created_at", "id")))


def order_transitions_for_user(*, order: Order, user) -> list[dict]:
    """The transitions the order's state allows and the user may trigger, with their labels."""
    allowed = []
    for name, (_service, permission) in USER_TRANSITIONS.items():
        method = getattr(order, name)
        if (can_proceed(method) and user.has_perm(permission)
                and order_user_transition_refusal(order=order, name=name) is None):
            meta = method._django_fsm.get_transition(order.status)
            allowed.append({"name": name, "label": str(meta.custom.get("label", name)),
                            "needs_reason": name in {"cancel", "close"}})
    return allowed


def order_can_hold(*, order: Order, user) -> bool:
    if not user.has_perm("orders.hold_order"):
        return False
    return order.status == OrderStatus.HELD or can_proceed(order.hold)


def order_hold_choices(*, order: Order) -> list[tuple[str, str]]:
    return [(value, label) for value, label in HoldReason.choices if value not in order.hold_reasons]


def order_reservations(*, order: Order) -> list:
    """The stock held (or once held) for the order, line by line and warehouse by warehouse."""
    from inventory.models import Reservation

    return list(Reservation.objects.filter(order=order).select_related("warehouse", "sku", "order_line")
                .order_by("order_line__line_no", "pk"))
