"""Order pages: the filtered list, the detail with its timeline, and the POST actions behind its buttons."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from finance.profit import order_profit
from fulfillment.selectors import customer_tracking_of, shipments_for_order
from inventory.selectors import reservations_for_order
from oms.exceptions import DomainError
from oms.inputs import query_without_page
from oms.paging import paginate
from oms.pii import can_view_pii, mask_address, mask_name, mask_phone
from orders import services
from orders.filters import OrderFilter
from orders.forms import CancelForm, HoldForm, NoteForm, ShipmentForm, TransitionForm
from orders.models import CancelReason, HoldReason, OrderStatus
from orders.selectors import (
    order_can_hold,
    order_detail_queryset,
    order_hold_choices,
    order_list_queryset,
    order_transitions_for_user,
)
from pipeline import orders as flows
from pipeline.channel import shipment_confirm

PAGE_SIZE = 50


@login_required
@permission_required("orders.view_order", raise_exception=True)
def order_list(request: HttpRequest) -> HttpResponse:
    order_filter = OrderFilter(request.GET or None, queryset=order_list_queryset())
    queryset = order_filter.qs if order_filter.is_bound and order_filter.is_valid() else order_list_queryset()
    page = paginate(request, queryset, PAGE_SIZE)
    pii = can_view_pii(request.user)
    rows = [{"order": order, "receiver": order.receiver_name if pii else mask_name(order.receiver_name)}
            for order in page.object_list]
    return render(request, "orders/order_list.html", {
        "filter": order_filter, "page": page, "rows": rows, "query": query_without_page(request),
    })


def _timeline(order) -> list:
    """The order's events with their states and cancel reason in words (the rows keep the codes)."""
    states = dict(OrderStatus.choices)
    cancel_reasons = dict(CancelReason.choices)
    hold_labels = dict(HoldReason.choices)
    events = list(order.events.all())
    for event in events:
        event.from_label = states.get(event.from_status, event.from_status)
        event.to_label = states.get(event.to_status, event.to_status)
        code = (event.data or {}).get("cancel_reason", "")
        event.cancel_reason_label = cancel_reasons.get(code, code)
        hold = (event.data or {}).get("hold_reason", "")
        event.hold_label = hold_labels.get(hold, hold)
    return events


def _detail_page(request: HttpRequest, order_id: int, *, cancel_form: CancelForm | None = None,
                 status: int = 200) -> HttpResponse:
    order = get_object_or_404(order_detail_queryset(), pk=order_id)
    pii = can_view_pii(request.user)
    receiver = {
        "name": order.receiver_name if pii else mask_name(order.receiver_name),
        "phone": order.receiver_phone if pii else mask_phone(order.receiver_phone),
        "address": order.full_address if pii else " ".join(
            p for p in [order.receiver_province, order.receiver_city, order.receiver_district,
                        mask_address(order.receiver_address)] if p),
        "masked": not pii,
    }
    hold_labels = dict(HoldReason.choices)
    # The order's parcels: an order with parcels ships through them, not by the form below.
    shipments = [{"shipment": s, "tracking": customer_tracking_of(s)} for s in shipments_for_order(order.pk)]
    return render(request, "orders/order_detail.html", {
        "order": order,
        "receiver": receiver,
        "transitions": order_transitions_for_user(order=order, user=request.user),
        "cancel_form": cancel_form or CancelForm(),
        # A refused cancel form opens its panel again, with the seller's choice and words kept.
        "cancel_open": cancel_form is not None,
        "holds": [{"code": code, "label": hold_labels.get(code, code)} for code in order.hold_reasons],
        "can_hold": order_can_hold(order=order, user=request.user),
        "hold_form": HoldForm(initial={}) if order_can_hold(order=order, user=request.user) else None,
        "hold_choices": order_hold_choices(order=order),
        "note_form": NoteForm(),
        "events": _timeline(order),
        "reservations": reservations_for_order(order_id=order.pk),
        "shipment_form": ShipmentForm() if order.status in ("in_fulfilment", "partially_shipped")
        and not any(row["shipment"].status != "cancelled" for row in shipments) else None,
        "shipments": shipments,
        "shipment_pushes": list(order.shipment_pushes.order_by("id")),
        # After-sales: the order this one replaces, and the replacements sent for it.
        "replaces": order.replaces,
        "replacements": list(order.replacements.order_by("pk")),
        # What the order earned: money figures for finance and managers only.
        "profit": order_profit(order) if request.user.has_perm("finance.view_paymentsnapshot") else None,
    }, status=status)


@login_required
@permission_required("orders.view_order", raise_exception=True)
def order_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return _detail_page(request, pk)


def _done(request: HttpRequest, pk: int, action) -> HttpResponse:
    """Run a service call; a refusal becomes a message on the order page saying why."""
    try:
        action()
    except DomainError as exc:
        messages.error(request, _("Refused: %(why)s") % {"why": exc.message})
    else:
        messages.success(request, _("Done."))
    return redirect("orders:detail", pk=pk)


@login_required
@require_POST
def order_transition(request: HttpRequest, pk: int, name: str) -> HttpResponse:
    if name == "cancel" and request.user.has_perm("orders.cancel_order"):
        # Cancelling needs a reason; without one the page comes back with the form error and nothing changes.
        # (Without the permission the service refuses first, with its own message.)
        cancel_form = CancelForm(request.POST)
        if not cancel_form.is_valid():
            return _detail_page(request, pk, cancel_form=cancel_form, status=400)
        return _done(request, pk, lambda: flows.order_apply_user_transition(
            order_id=pk, name=name, user=request.user, reason=cancel_form.cleaned_data["reason"],
            reason_code=cancel_form.cleaned_data["reason_code"]))
    form = TransitionForm(request.POST)
    reason = form.cleaned_data["reason"] if form.is_valid() else ""
    return _done(request, pk, lambda: flows.order_apply_user_transition(
        order_id=pk, name=name, user=request.user, reason=reason))


@login_required
@require_POST
@permission_required("orders.hold_order", raise_exception=True)
def order_hold(request: HttpRequest, pk: int) -> HttpResponse:
    form = HoldForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose a hold reason."))
        return redirect("orders:detail", pk=pk)
    return _done(request, pk, lambda: services.order_hold(
        order_id=pk, hold_reason=form.cleaned_data["reason"], note=form.cleaned_data["note"], actor=request.user))


@login_required
@require_POST
@permission_required("orders.hold_order", raise_exception=True)
def order_release(request: HttpRequest, pk: int, reason: str) -> HttpResponse:
    note = request.POST.get("note", "")[:500]
    return _done(request, pk, lambda: flows.order_release_hold(
        order_id=pk, hold_reason=reason, note=note, actor=request.user))


@login_required
@require_POST
@permission_required("orders.view_order", raise_exception=True)
def order_note(request: HttpRequest, pk: int) -> HttpResponse:
    form = NoteForm(request.POST)
    if not form.is_valid():
        messages.error(request, form.errors["note"][0])
        return redirect("orders:detail", pk=pk)
    return _done(request, pk, lambda: services.order_add_note(order_id=pk, note=form.cleaned_data["note"],
                                                              actor=request.user))


@login_required
@require_POST
@permission_required("orders.ship_order", raise_exception=True)
def order_shipment(request: HttpRequest, pk: int) -> HttpResponse:
    """Record carrier + tracking number: the order ships and the platform is told (outbox)."""
    form = ShipmentForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Give the carrier and the tracking number."))
        return redirect("orders:detail", pk=pk)
    return _done(request, pk, lambda: shipment_confirm(
        order_id=pk, carrier_code=form.cleaned_data["carrier_code"], tracking_number=form.cleaned_data["tracking_number"],
        line_nos=form.cleaned_data["line_nos"] or None, actor=request.user))
