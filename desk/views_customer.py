"""The customer view: one buyer across stores, with the desk's actions."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from customer.services import parcel_tracking_path
from desk.customers import DESK_PERMISSIONS, BuyerKey, NotABuyer, buyer_key_of_order, customer_view
from desk.models import NOTE_MAX_LENGTH
from desk.services import customer_note_add
from oms.exceptions import DomainError
from orders.models import Order
from pipeline.expedite import order_expedite, order_resend_shipping_notification


class CustomerNoteForm(forms.Form):
    text = forms.CharField(label=gettext_lazy("Note"), max_length=NOTE_MAX_LENGTH,
                           widget=forms.Textarea(attrs={"rows": 2}),
                           error_messages={"required": gettext_lazy("The note is empty."),
                                           "max_length": gettext_lazy("A note has at most %(limit_value)d characters.")})


def _buyer(order_id: int) -> tuple[Order, BuyerKey | None, str]:
    """The order the page was opened from and its buyer; no key (and the reason) when it identifies nobody.
    The URL carries that order's id, never a phone or a buyer id: no personal data in logs or history."""
    order = get_object_or_404(Order.objects.select_related("store"), pk=order_id)
    try:
        return order, buyer_key_of_order(order), ""
    except NotABuyer as exc:
        return order, None, exc.message


def _page(request: HttpRequest, order_id: int, *, note_form: CustomerNoteForm | None = None,
          status: int = 200) -> HttpResponse:
    order, key, not_a_buyer = _buyer(order_id)
    view = customer_view(key=key, user=request.user) if key else None
    for row in view.orders if view else []:
        for parcel in row.parcels:
            # The buyer's public tracking page, to read out or send: the desk sees what the buyer would.
            parcel["tracking_path"] = parcel_tracking_path(shipment=parcel["shipment"])
    return render(request, "desk/customer.html", {
        "anchor": order, "view": view, "not_a_buyer": not_a_buyer,
        "note_form": note_form or CustomerNoteForm(),
        "can_open_ticket": request.user.has_perm("aftersales.add_ticket"),
    }, status=status)


@login_required
@permission_required(DESK_PERMISSIONS, raise_exception=True)
def customer(request: HttpRequest, order_id: int) -> HttpResponse:
    return _page(request, order_id)


@login_required
@require_POST
@permission_required(DESK_PERMISSIONS, raise_exception=True)
def customer_note(request: HttpRequest, order_id: int) -> HttpResponse:
    _order, key, not_a_buyer = _buyer(order_id)
    form = CustomerNoteForm(request.POST)
    if key is None:
        messages.error(request, _("Refused: %(why)s") % {"why": not_a_buyer})
        return redirect("desk:customer", order_id=order_id)
    if not form.is_valid():
        return _page(request, order_id, note_form=form, status=400)
    try:
        customer_note_add(key=key, text=form.cleaned_data["text"], author=request.user)
    except DomainError as exc:
        form.add_error("text", exc.message)
        return _page(request, order_id, note_form=form, status=400)
    messages.success(request, _("Note added."))
    return redirect("desk:customer", order_id=order_id)


def _buyer_order(order_id: int, target_id: int) -> Order:
    """The order acted on, which must be one of this buyer's (a forged form cannot reach another buyer's)."""
    _order, key, _why = _buyer(order_id)
    orders = Order.objects.filter(pk=target_id)
    if target_id != order_id:
        if key is None:
            raise Http404
        orders = orders.filter(key.orders_q())
    found = orders.first()
    if found is None:
        raise Http404
    return found


@login_required
@require_POST
@permission_required(DESK_PERMISSIONS, raise_exception=True)
def customer_expedite(request: HttpRequest, order_id: int, target_id: int) -> HttpResponse:
    target = _buyer_order(order_id, target_id)
    try:
        done = order_expedite(order_id=target.pk, actor=request.user)
    except DomainError as exc:
        messages.error(request, _("Refused: %(why)s") % {"why": exc.message})
    else:
        messages.success(request, _("Order %(number)s expedited: priority %(priority)s; parcels moved up the "
                                    "kanban: %(count)d.") % {"number": done.order.number,
                                                         "priority": done.order.get_priority_display(),
                                                         "count": len(done.parcels)})
    return redirect("desk:customer", order_id=order_id)


@login_required
@require_POST
@permission_required(DESK_PERMISSIONS, raise_exception=True)
def customer_resend(request: HttpRequest, order_id: int, target_id: int) -> HttpResponse:
    target = _buyer_order(order_id, target_id)
    try:
        queued = order_resend_shipping_notification(order_id=target.pk)
    except DomainError as exc:
        messages.error(request, _("Refused: %(why)s") % {"why": exc.message})
    else:
        messages.success(request, _("Shipping notification of order %(number)s queued again; messages: %(count)d.")
                         % {"number": target.number, "count": len(queued)})
    return redirect("desk:customer", order_id=order_id)


urlpatterns = [
    path("customer/<int:order_id>/", customer, name="customer"),
    path("customer/<int:order_id>/note/", customer_note, name="customer-note"),
    path("customer/<int:order_id>/orders/<int:target_id>/expedite/", customer_expedite, name="customer-expedite"),
    path("customer/<int:order_id>/orders/<int:target_id>/resend/", customer_resend, name="customer-resend"),
]
