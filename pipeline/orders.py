"""The order flows that cross apps: entry (validate → snapshot → reserve → route → approve → parcels),
payment, approval, cancel and close, shipping outside the parcel flow, the sweeps, following the
platform's status, and the transitions a person triggers.

Each flow is one transaction that calls the domain services in the fixed lock order (order →
parcels → stock rows) and schedules outside work after commit. Steps take a list of orders (a batch
of one today) so the batched ingestion can call them with many.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django_fsm import can_proceed

from finance.services import payment_snapshot_take
from fulfillment import routing
from fulfillment.models import Shipment, ShipmentStatus
from fulfillment.services import routing_record_warehouses, shipments_create_for_orders
from inventory import services as stock
from inventory.models import BundleComponent, Reservation, ReservationStatus
from inventory.selectors import sku_ids_and_titles
from oms.events import events_record_many
from oms.exceptions import DomainError
from orders import events
from orders import services as order_services
from orders.exceptions import OrderInvalid, OrderNotFound, TransitionNotAllowed
from orders.models import HoldReason, Order, OrderStatus, ReserveOn, Store
from orders.services import (
    SHIPMENT_DRIVEN,
    USER_TRANSITION_PERMISSIONS,
    OrderInput,
    order_complete,
    order_deliver,
    order_hold,
    order_ship_partially,
    order_start_fulfilment,
    order_user_transition_refusal,
    transition_label,
)
from pipeline import stock as stock_flows
from pipeline.shipping import shipment_deliver, shipment_start_picking, shipments_cancel_for_order

# --- Entry -------------------------------------------------------------------------------------

def order_create(*, store: Store, data: OrderInput, actor=None, actor_label: str = "system") -> Order:
    """Create an order with its lines and the "created" event; a paid order is paid, the rest processed."""
    skus = sku_ids_and_titles([line.sku_code for line in data.lines])
    with transaction.atomic():
        order = order_services.order_insert(store=store, data=data, skus=skus, actor=actor, actor_label=actor_label)
        if data.paid:
            return order_pay(order_id=order.pk, actor=actor, actor_label=actor_label,
                             paid_at=data.paid_at or timezone.now(), paid_amount=order.total_amount)
        return orders_process([order.pk])[0]


def order_create_manual(*, store: Store, data: OrderInput, actor=None) -> Order:
    """Manual channel (WeChat/offline): the store must be a manual one; the id defaults to a new number."""
    order_services.order_check_manual_store(store=store)
    return order_create(store=store, data=data, actor=actor, actor_label="manual")


# --- Payment and approval ----------------------------------------------------------------------

def order_pay(*, order_id: int, actor=None, actor_label: str = "system", paid_at: datetime | None = None,
              paid_amount: Decimal | None = None, reason: str = "", payment_event: str = "payment") -> Order:
    """Paid (or, with ``payment_event="authorization"``, authorized for a later capture): snapshot, reserve, route."""
    with transaction.atomic():
        order = order_services.order_mark_paid(order_id=order_id, actor=actor, actor_label=actor_label,
                                               paid_at=paid_at, paid_amount=paid_amount, reason=reason)
        payment_snapshot_take(order=order, event=payment_event)
        return orders_process([order.pk])[0]


def order_approve(*, order_id: int, actor=None, actor_label: str = "system", reason: str = "") -> Order:
    """Ready for the warehouse: the reserved units become parcels on the warehouse's kanban."""
    with transaction.atomic():
        order = order_services.order_mark_approved(order_id=order_id, actor=actor, actor_label=actor_label,
                                                   reason=reason)
        shipments_create_for_orders(order_ids=[order.pk], actor=actor, actor_label=actor_label)
    return order


# --- Processing: reserve, route, approve -------------------------------------------------------

def orders_process(order_ids: list[int], *, created: list[Order] | None = None) -> list[Order]:
    """Move each order forward as far as the rules allow. Every path that changes an order runs this,
    with one order or a whole batch (the inbox's, the awaiting-stock sweep's): the same steps, set-based.

    1. Reserve-on-creation stores hold stock for unpaid orders (retried at payment if short).
    2. A paid order without holds reserves its stock, in one warehouse or split where the store
       allows; when it cannot, it waits in "awaiting stock" with the shortages listed.
    3. An awaiting order whose stock arrived goes back to paid.
    4. A paid, reserved order is approved (ready) when the store approves automatically, and its
       reserved units become parcels.
    The orders are served in the order given (the sweep gives the most urgent first). ``created``: orders
    the caller inserted in its own transaction (no one else can see them, so they need no lock and no read).
    """
    if not order_ids:
        return []
    with transaction.atomic():
        locked = {order.pk: order for order in created or ()}
        locked.update(order_services.orders_lock([order_id for order_id in order_ids if order_id not in locked]))
        orders = [locked[order_id] for order_id in dict.fromkeys(order_ids) if order_id in locked]
        to_reserve = [order for order in orders if not order.hold_reasons and (
            order.status in (OrderStatus.PAID, OrderStatus.AWAITING_STOCK)
            or (order.status == OrderStatus.PENDING_PAYMENT and order.store.reserve_on == ReserveOn.CREATION))]
        facts = routing.order_facts_many(to_reserve)
        results = _reserve(to_reserve, facts)
        moving = [order for order in to_reserve if order.status != OrderStatus.PENDING_PAYMENT]
        waiting = [order for order in moving if order.status == OrderStatus.PAID and not results[order.pk].reserved]
        order_services.orders_wait_for_stock(orders=waiting,
                                             shortages={o.pk: results[o.pk].shortages for o in waiting})
        just_waiting = {order.pk for order in waiting}
        for order in moving:
            if (order.status == OrderStatus.AWAITING_STOCK and not results[order.pk].reserved
                    and order.pk not in just_waiting):
                order_services.order_update_shortages(order=order, shortages=results[order.pk].shortages)
        arrived = [order for order in moving
                   if order.status == OrderStatus.AWAITING_STOCK and results[order.pk].reserved]
        order_services.orders_stock_arrived(orders=arrived)
        # A replacement order (exchange, resend) was approved with its after-sales ticket, whatever the store's
        # setting, also when it first had to wait for stock.
        approving = [order for order in moving if order.status == OrderStatus.PAID and results[order.pk].reserved
                     and (order.store.auto_approve or order.replaces_id is not None)]
        if approving:
            order_services.orders_transition_many(orders=approving, name="approve", actor_label="system",
                                                  reason=_("No holds: approved automatically."))
            shipments_create_for_orders(order_ids=[order.pk for order in approving], actor_label="system",
                                        facts=facts, locked=locked)
    return orders


def order_process(*, order_id: int) -> Order:
    return orders_process([order_id])[0]


def _reserve(orders: list[Order], facts: dict) -> dict:
    """Reserve where the routing rules point first (stock has the last word) and record why, for a batch."""
    if not orders:
        return {}
    rules, warehouses = routing.active_warehouse_rules(), routing.active_warehouses()
    routes = {order.pk: routing.warehouse_route(facts[order.pk], rules=rules, warehouses=warehouses)
              for order in orders}
    results = stock.stock_reserve_for_orders([
        stock.ReserveRequest(order_id=order.pk, allow_split=order.store.allow_split,
                             province=order.receiver_province, reference=f"order:{order.number}",
                             preferred_warehouse_ids=routes[order.pk].ranking)
        for order in orders])
    fresh = [order for order in orders if results[order.pk].reserved and not results[order.pk].already]
    if fresh:
        events_record_many([events.event_order_stock_reserved_row(order=order,
                                                                  warehouse_ids=results[order.pk].warehouse_ids)
                            for order in fresh])
        routing_record_warehouses(decisions=[(order, routes[order.pk], results[order.pk].warehouse_ids)
                                             for order in fresh])
        stock_flows.channel_stock_flush_soon()  # the platforms see the smaller number within a second
    return results


# --- Holds --------------------------------------------------------------------------------------

def order_release_hold(*, order_id: int, hold_reason: str, note: str = "", actor=None,
                       actor_label: str = "system") -> Order:
    """Lift one hold; when none is left the order returns to where it was and moves on from there."""
    with transaction.atomic():
        order = order_services.order_release_hold(order_id=order_id, hold_reason=hold_reason, note=note,
                                                  actor=actor, actor_label=actor_label)
        if order.status != OrderStatus.HELD:
            order = orders_process([order.pk])[0]
    return order


# --- Cancel, close, shipped outside the parcels ----------------------------------------------------

def order_cancel(*, order_id: int, actor=None, actor_label: str = "system", reason: str = "",
                 reason_code: str = "") -> Order:
    """Cancel before fulfilment: open parcels are cancelled and reserved stock goes back, in one transaction."""
    sentence = order_services.order_cancel_sentence(reason=reason, reason_code=reason_code)
    with transaction.atomic():
        order = order_services.order_mark_cancelled(order_id=order_id, actor=actor, actor_label=actor_label,
                                                    reason=reason, reason_code=reason_code)
        shipments_cancel_for_order(order_id=order.pk, reason=sentence, actor=actor)
        _release_stock(order, reason=sentence)
    return order


def order_close(*, order_id: int, actor=None, actor_label: str = "system", reason: str = "") -> Order:
    """Close after fulfilment started (e.g. refunded in full); anything still reserved is released."""
    with transaction.atomic():
        order = order_services.order_mark_closed(order_id=order_id, actor=actor, actor_label=actor_label,
                                                 reason=reason)
        shipments_cancel_for_order(order_id=order.pk, reason=reason or "closed", actor=actor)
        _release_stock(order, reason=reason or "closed")
    return order


def order_ship(*, order_id: int, actor=None, actor_label: str = "system", reason: str = "") -> Order:
    """Shipped outside the warehouse flow (the platform says so, or a person with the right): the
    order's open parcels must not be picked and shipped a second time, and its reservations leave the
    pool. (Parcels that ship go through pipeline.shipping, which never comes here.)"""
    with transaction.atomic():
        order = order_services.order_mark_shipped(order_id=order_id, actor=actor, actor_label=actor_label,
                                                  reason=reason)
        # Parcels are locked before stock rows, as everywhere (orders → parcels → stock).
        shipments_cancel_for_order(order_id=order.pk, actor=actor, reason=_(
            "Shipped outside the warehouse flow: %(reason)s") % {"reason": reason or actor_label})
        units = stock.stock_ship(order_id=order.pk, reference=f"order:{order.number}")
        if units:
            events.event_order_stock_shipped(order=order, units=units)
    return order


def _release_stock(order: Order, *, reason: str) -> None:
    units = stock_flows.stock_release_for_order(order_id=order.pk, reference=f"order:{order.number}")
    if units:
        events.event_order_stock_released(order=order, units=units, reason=reason)


# --- Sweeps ----------------------------------------------------------------------------------------

def orders_retry_awaiting_stock(*, sku_ids: list[int] | None = None, limit: int = 500) -> int:
    """Try to reserve orders waiting for stock, highest priority and oldest first. Returns how many moved on."""
    waiting = Order.objects.filter(status=OrderStatus.AWAITING_STOCK)
    if sku_ids:
        bundles = BundleComponent.objects.filter(component_id__in=sku_ids).values_list("bundle_id", flat=True)
        waiting = waiting.filter(lines__sku_id__in=[*sku_ids, *bundles]).distinct()
    order_ids = list(waiting.order_by("-priority", "placed_at", "pk").values_list("pk", flat=True)[:limit])
    return sum(1 for order in orders_process(order_ids) if order.status != OrderStatus.AWAITING_STOCK)


def orders_release_stale_reservations() -> int:
    """Safety net: stock still reserved for cancelled or closed orders goes back (normally done inline)."""
    stale = (Reservation.objects.filter(status=ReservationStatus.ACTIVE,
                                        order__status__in=[OrderStatus.CANCELLED, OrderStatus.CLOSED])
             .values_list("order_id", flat=True).distinct())
    released = 0
    for order_id in list(stale):
        with transaction.atomic():
            order = order_services.order_lock(order_id)
            released += stock_flows.stock_release_for_order(order_id=order.pk, reference=f"order:{order.number}")
    return released


def orders_cancel_expired_unpaid(*, now=None) -> int:
    """Cancel unpaid orders of reserve-on-creation stores past their timeout; their stock is released."""
    now = now or timezone.now()
    cancelled = 0
    candidates = Order.objects.filter(status=OrderStatus.PENDING_PAYMENT, store__reserve_on=ReserveOn.CREATION)
    for order_id, placed_at, timeout in candidates.values_list("pk", "placed_at", "store__unpaid_timeout_minutes"):
        if placed_at + timedelta(minutes=timeout) > now:
            continue
        try:
            order_cancel(order_id=order_id, actor_label="system",
                         reason=_("Not paid within %(minutes)s minutes.") % {"minutes": timeout})
            cancelled += 1
        except TransitionNotAllowed:
            continue  # paid or cancelled a moment ago
    return cancelled


# --- Following the platform ---------------------------------------------------------------------

# Unified platform statuses (connectors.base.UNIFIED_STATUSES) and how far along each is.
_SHIPPING_TARGETS = {"partially_shipped": 1, "shipped": 2, "completed": 3}

_CHANNEL_REACHED = {
    "pending_payment": {OrderStatus.PENDING_PAYMENT},
    "group_pending": {OrderStatus.HELD},
    "paid": {OrderStatus.PAID, OrderStatus.AWAITING_STOCK, OrderStatus.READY, OrderStatus.IN_FULFILMENT,
             OrderStatus.PARTIALLY_SHIPPED, OrderStatus.SHIPPED, OrderStatus.DELIVERED, OrderStatus.COMPLETED},
    "partially_shipped": {OrderStatus.PARTIALLY_SHIPPED, OrderStatus.SHIPPED, OrderStatus.DELIVERED,
                          OrderStatus.COMPLETED},
    "shipped": {OrderStatus.SHIPPED, OrderStatus.DELIVERED, OrderStatus.COMPLETED},
    "completed": {OrderStatus.COMPLETED},
    "cancelled": {OrderStatus.CANCELLED, OrderStatus.CLOSED},
    "closed": {OrderStatus.CANCELLED, OrderStatus.CLOSED},
}


def _channel_next_step(order: Order, target: str):
    """The one flow that brings the order closer to the platform's status, or None."""
    status, holds = order.status, order.hold_reasons
    S_ = OrderStatus
    if target in ("cancelled", "closed"):
        if status in (S_.CANCELLED, S_.CLOSED):
            return None
        if can_proceed(order.cancel):
            return order_cancel, {}
        if can_proceed(order.close):
            return order_close, {}
        return None
    if status == S_.HELD:
        if target != "group_pending" and HoldReason.GROUP_PENDING in holds:
            return order_release_hold, {"hold_reason": HoldReason.GROUP_PENDING,
                                        "note": _("The group formed on the platform.")}
        return None  # other holds are a person's decision; the platform cannot lift them
    if status == S_.PENDING_PAYMENT and target != "pending_payment":
        return order_pay, {}
    if target == "group_pending":
        if status in (S_.PAID, S_.AWAITING_STOCK, S_.READY):
            return order_hold, {"hold_reason": HoldReason.GROUP_PENDING,
                                "note": _("Group buy not formed yet on the platform.")}
        return None
    rank = _SHIPPING_TARGETS.get(target)
    if rank is None:
        return None
    if status == S_.READY:
        return order_start_fulfilment, {}
    if status == S_.IN_FULFILMENT:
        return (order_ship_partially, {}) if rank == 1 else (order_ship, {})
    if status == S_.PARTIALLY_SHIPPED and rank >= 2:
        return order_ship, {}
    if status in (S_.SHIPPED, S_.DELIVERED) and rank == 3:
        return order_complete, {}
    return None


def _channel_reached(order: Order, target: str) -> bool:
    return order.status in _CHANNEL_REACHED.get(target, set())


def order_follow_channel(*, order_id: int, target: str, platform_updated_at, raw_status: str = "",
                         paid_at=None, actor_label: str = "channel", payment_event: str = "payment",
                         payment_id: str = "", platform_fee=None) -> tuple[Order, bool]:
    """Move the order toward the platform's status through the ordinary flows; newer updates only.

    Returns ``(order, applied)``; ``applied`` is False for an update older than (or as old as) the
    one already applied, which changes nothing. When the platform's status cannot be reached from
    the hub's (say the platform reports shipped while the hub still waits for stock), the order
    stays where it is and an event says so for a person to look at.
    """
    with transaction.atomic():
        # The payment id first, so the payment snapshot taken on the way to "paid" carries it.
        order, applied = order_services.order_record_platform_update(
            order_id=order_id, platform_updated_at=platform_updated_at, payment_id=payment_id,
            platform_fee=platform_fee)
        if not applied:
            return order, False
        for _step in range(8):
            if _channel_reached(order, target):
                break
            step = _channel_next_step(order, target)
            if step is None:
                break
            flow, kwargs = step
            if flow is order_pay:
                kwargs = {"paid_at": paid_at, "payment_event": payment_event}
            order = flow(order_id=order.pk, actor_label=actor_label,
                         **({"reason": raw_status} if flow not in (order_hold, order_release_hold) else {}),
                         **kwargs)
        if not _channel_reached(order, target) and not (target == "paid" and order.status == OrderStatus.HELD):
            events.event_order_channel_mismatch(order=order, target=target, raw_status=raw_status)
    return order, True


# --- What a person triggers ---------------------------------------------------------------------

USER_TRANSITIONS = {
    "pay": order_pay,
    "approve": order_approve,
    "start_fulfilment": order_start_fulfilment,
    "ship_partially": order_ship_partially,
    "ship": order_ship,
    "deliver": order_deliver,
    "complete": order_complete,
    "cancel": order_cancel,
    "close": order_close,
}


def order_has_shipments(*, order_id: int) -> bool:
    return Shipment.objects.filter(lines__order_id=order_id).exclude(status=ShipmentStatus.CANCELLED).exists()


def _move_shipments_of(*, order_id: int, name: str, user) -> Order:
    """An order with parcels moves through them: starting fulfilment starts picking every waiting
    parcel, delivering delivers every parcel in transit; shipping needs the scan and a tracking number."""
    steps = {"start_fulfilment": (ShipmentStatus.TO_PICK, shipment_start_picking),
             "deliver": (ShipmentStatus.SHIPPED, shipment_deliver)}
    if name not in steps:
        raise TransitionNotAllowed(_("This order ships in parcels: pack and ship them at the warehouse."),
                                   code="follows_shipments")
    if not user.has_perm("fulfillment.move_shipment"):
        raise DomainError(_("This order's parcels move at the warehouse: you are not allowed to move them."),
                          code="permission_denied", http_status=403)
    status, step = steps[name]
    ids = list(Shipment.objects.filter(lines__order_id=order_id, status=status).distinct().order_by("pk")
               .values_list("pk", flat=True))
    if not ids:
        order = Order.objects.get(pk=order_id)
        raise TransitionNotAllowed(_("Order %(number)s cannot be changed by “%(action)s” while it is %(status)s.") % {
            "number": order.number, "action": transition_label(name), "status": order.get_status_display()},
            data={"status": order.status, "transition": name})
    with transaction.atomic():
        for shipment_id in ids:
            step(shipment_id=shipment_id, actor=user)
    return Order.objects.get(pk=order_id)


def order_apply_user_transition(*, order_id: int, name: str, user, reason: str = "", reason_code: str = "") -> Order:
    """Run one of USER_TRANSITIONS for a person, checking their permission and the store's rule first."""
    if name not in USER_TRANSITIONS:
        raise OrderInvalid(_("Unknown action %(name)s.") % {"name": name}, code="unknown_transition")
    if not user.has_perm(USER_TRANSITION_PERMISSIONS[name]):
        raise DomainError(_("You are not allowed to do this."), code="permission_denied", http_status=403)
    order = Order.objects.select_related("store").filter(pk=order_id).first()
    if order is None:
        raise OrderNotFound(_("Order %(id)s does not exist.") % {"id": order_id})
    # The platform never changes on a store with orders, so checking outside the row lock is safe.
    refusal = order_user_transition_refusal(order=order, name=name)
    if refusal is not None:
        raise refusal
    if name in SHIPMENT_DRIVEN and order_has_shipments(order_id=order_id):
        return _move_shipments_of(order_id=order_id, name=name, user=user)
    flow = USER_TRANSITIONS[name]
    if name == "cancel":
        return flow(order_id=order_id, actor=user, reason=reason, reason_code=reason_code)
    return flow(order_id=order_id, actor=user, reason=reason)
