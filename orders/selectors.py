"""Read-side queries of the order core: lists, details, and what a user may do with an order."""

from django.db.models import Prefetch, QuerySet
from django_fsm import can_proceed

from oms.fsm import transition_label
from orders.models import HoldReason, Order, OrderEvent, OrderStatus
from orders.services import USER_TRANSITION_PERMISSIONS, order_user_transition_refusal


def order_list_queryset() -> QuerySet[Order]:
    return Order.objects.select_related("store").order_by("-placed_at", "-id")


def order_detail_queryset() -> QuerySet[Order]:
    return Order.objects.select_related("store").prefetch_related(
        "lines", Prefetch("events", queryset=OrderEvent.objects.select_related("actor").order_by("created_at", "id")))


def order_transitions_for_user(*, order: Order, user) -> list[dict]:
    """The transitions the order's state allows and the user may trigger, with their labels."""
    allowed = []
    for name, permission in USER_TRANSITION_PERMISSIONS.items():
        if (can_proceed(getattr(order, name)) and user.has_perm(permission)
                and order_user_transition_refusal(order=order, name=name) is None):
            allowed.append({"name": name, "label": transition_label(order, name, state=order.status),
                            "needs_reason": name in {"cancel", "close"}})
    return allowed


def order_can_hold(*, order: Order, user) -> bool:
    if not user.has_perm("orders.hold_order"):
        return False
    return order.status == OrderStatus.HELD or can_proceed(order.hold)


def order_hold_choices(*, order: Order) -> list[tuple[str, str]]:
    return [(value, label) for value, label in HoldReason.choices if value not in order.hold_reasons]
