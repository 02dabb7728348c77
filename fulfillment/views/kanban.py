"""Warehouse kanban pages: the board per warehouse, its column and count partials, and the card move POST."""

from __future__ import annotations

from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST

from fulfillment.exceptions import ShipmentNotFound
from fulfillment.forms import ShipmentMoveForm
from fulfillment.kanban import (
    LANES,
    KanbanFilters,
    count_display,
    duration_formats,
    kanban_board,
    kanban_card,
    kanban_column,
    kanban_counts,
)
from fulfillment.models import Carrier, Shipment
from inventory.models import Warehouse
from inventory.selectors import scope_filter, store_ids_for_user, warehouse_check_access, warehouses_for_user
from oms.exceptions import DomainError
from oms.inputs import safe_next
from oms.paging import page_number
from orders.models import Platform
from pipeline import shipping
from printing.selectors import offline_printers

VIEW_SHIPMENTS = "fulfillment.view_shipment"
MOVE_SHIPMENTS = "fulfillment.move_shipment"
# Ticking cards and printing their labels in one go (the selection form posts to /printing/batch/).
PRINT = "printing.print"
# "Load more" goes no further than this page (40 cards each): past it, filter the board instead.
MAX_PAGE = 500


class KanbanFilterForm(forms.Form):
    carrier = forms.ModelChoiceField(
        queryset=Carrier.objects.order_by("code"),
        required=False,
        label=gettext_lazy("Carrier"),
        empty_label=gettext_lazy("All carriers"),
    )
    channel = forms.ChoiceField(
        choices=[("", gettext_lazy("All channels")), *Platform.choices],
        required=False,
        label=gettext_lazy("Channel"),
    )
    priority = forms.TypedChoiceField(
        choices=[
            ("", gettext_lazy("Any priority")),
            ("1", gettext_lazy("High and VIP")),
            ("2", gettext_lazy("VIP only")),
        ],
        coerce=int,
        empty_value=None,
        required=False,
        label=gettext_lazy("Priority"),
    )


def _filters(request: HttpRequest) -> tuple[KanbanFilterForm, KanbanFilters, str]:
    """The filter form, the filters it selected (an invalid field is ignored) and their query string."""
    form = KanbanFilterForm(request.GET or None)
    form.is_valid()
    data = getattr(form, "cleaned_data", {})
    carrier = data.get("carrier")
    filters = KanbanFilters(
        carrier_id=carrier.pk if carrier else None,
        channel=data.get("channel") or "",
        min_priority=data.get("priority"),
        store_ids=store_ids_for_user(request.user),
    )
    query = {"carrier": filters.carrier_id, "channel": filters.channel, "priority": filters.min_priority}
    return form, filters, urlencode({key: value for key, value in query.items() if value})


def _board_url(code: str, query: str = "") -> str:
    url = reverse("fulfillment:kanban", args=[code])
    return f"{url}?{query}" if query else url


def _active_warehouses(request: HttpRequest) -> list[Warehouse]:
    """The warehouses of the picker: the active ones the user works for."""
    return list(warehouses_for_user(user=request.user))


def _warehouse(request: HttpRequest, code: str) -> Warehouse:
    """The board's warehouse: 404 if unknown, 403 if it is not one the user works for."""
    warehouse = get_object_or_404(Warehouse, code=code)
    warehouse_check_access(user=request.user, warehouse=warehouse)
    return warehouse


def _context(request: HttpRequest, warehouse: Warehouse, query: str, **extra) -> dict:
    return {
        "warehouse": warehouse,
        "filter_query": query,
        "return_to": _board_url(warehouse.code, query),
        "can_move": request.user.has_perm(MOVE_SHIPMENTS),
        "can_print": request.user.has_perm(PRINT),
        **extra,
    }


@login_required
@permission_required(VIEW_SHIPMENTS, raise_exception=True)
@require_GET
def kanban_home(request: HttpRequest) -> HttpResponse:
    """The first active warehouse's board; with none active, a page that says so."""
    warehouses = _active_warehouses(request)
    if warehouses:
        return redirect("fulfillment:kanban", code=warehouses[0].code)
    return render(request, "fulfillment/kanban.html", {"warehouses": [], "board": None})


@login_required
@permission_required(VIEW_SHIPMENTS, raise_exception=True)
@require_GET
def kanban_page(request: HttpRequest, code: str) -> HttpResponse:
    warehouse = _warehouse(request, code)
    form, filters, query = _filters(request)
    return render(
        request,
        "fulfillment/kanban.html",
        _context(
            request,
            warehouse,
            query,
            form=form,
            warehouses=_active_warehouses(request),
            board=kanban_board(warehouse=warehouse, filters=filters),
            duration_formats=duration_formats(),
            offline_printers=offline_printers(warehouse=warehouse),
        ),
    )


@login_required
@permission_required(VIEW_SHIPMENTS, raise_exception=True)
@require_GET
def kanban_column_partial(request: HttpRequest, code: str, status: str) -> HttpResponse:
    """One page of one column: the next cards for "load more" (htmx), or that column alone as a page."""
    if status not in LANES:
        raise Http404(_("There is no such column on the kanban."))
    warehouse = _warehouse(request, code)
    form, filters, query = _filters(request)
    page = page_number(request.GET.get("page"), max_page=MAX_PAGE)
    column = kanban_column(warehouse=warehouse, status=status, filters=filters, page=page)
    if request.htmx:
        return render(
            request, "fulfillment/_kanban_column.html", _context(request, warehouse, query, column=column)
        )
    # Without JavaScript "load more" is a link: show that column's page inside the board layout.
    column.count = kanban_counts(warehouse=warehouse, filters=filters)[status]
    board = {"warehouse": warehouse, "columns": [column]}
    return render(
        request,
        "fulfillment/kanban.html",
        _context(
            request,
            warehouse,
            query,
            form=form,
            warehouses=_active_warehouses(request),
            board=board,
            single_column=True,
            duration_formats=duration_formats(),
        ),
    )


@login_required
@permission_required(VIEW_SHIPMENTS, raise_exception=True)
@require_GET
def kanban_counts_partial(request: HttpRequest, code: str) -> HttpResponse:
    """Every column's count as out-of-band swaps: polled, and fetched after each move (kanban-changed)."""
    warehouse = _warehouse(request, code)
    _form, filters, _query = _filters(request)
    counts = kanban_counts(warehouse=warehouse, filters=filters)
    return render(
        request,
        "fulfillment/_kanban_counts.html",
        {"counts": [(lane, count_display(counts[lane])) for lane in LANES], "oob": True},
    )


def refused(request: HttpRequest, *, message: str, code: str, status: int) -> HttpResponse:
    """A refused move: a fragment for the page's alert area (htmx / fetch), or a message and back to the board."""
    text = _("Refused: %(why)s") % {"why": message}
    if not request.htmx:
        messages.error(request, text)
        return redirect(safe_next(request) or reverse("fulfillment:kanban-home"))
    response = HttpResponse(
        format_html('<p class="kanban-refusal" data-code="{}">{}</p>', code, text), status=status
    )
    response["X-Refusal-Code"] = code
    return response


@login_required
@permission_required(MOVE_SHIPMENTS, raise_exception=True)
@require_POST
def shipment_move(request: HttpRequest, pk: int) -> HttpResponse:
    """Move a card (POST ``to=<status>``, optional ``reason``): the re-rendered card, or the refusal and why."""
    form = ShipmentMoveForm(request.POST)
    if not form.is_valid():
        # Checked here and again by the service: nothing moves, and the person reads what to fix.
        if "to" in form.errors:
            message = _("“%(to)s” is not a column of the kanban.") % {"to": request.POST.get("to", "")[:40]}
            return refused(request, message=message, code="invalid_status", status=400)
        error = form.errors.as_data()["reason"][0]
        code = "reason_too_long" if error.code == "max_length" else "reason_required"
        return refused(request, message=error.messages[0], code=code, status=400)
    to_status, reason = form.cleaned_data["to"], form.cleaned_data["reason"]
    try:
        # A parcel outside the user's warehouses or stores is refused exactly like one that does not exist.
        if not scope_filter(Shipment.objects.filter(pk=pk), user=request.user, store="store").exists():
            raise ShipmentNotFound(_("Shipment %(id)s does not exist.") % {"id": pk})
        shipment = shipping.shipment_move(shipment_id=pk, to_status=to_status, actor=request.user, reason=reason)
    except DomainError as exc:
        return refused(request, message=exc.message, code=exc.code, status=exc.http_status)
    if not request.htmx:
        messages.success(
            request,
            _("Parcel %(number)s is now “%(status)s”.")
            % {"number": shipment.number, "status": shipment.get_status_display()},
        )
        return redirect(safe_next(request) or reverse("fulfillment:kanban-home"))
    return card_response(request, shipment)


def card_response(request: HttpRequest, shipment: Shipment) -> HttpResponse:
    """The card re-rendered after a change (a move, a tracking number), for htmx to swap in and place."""
    response = render(
        request,
        "fulfillment/_kanban_card.html",
        {
            "card": kanban_card(shipment),
            "moved": True,
            "can_move": request.user.has_perm(MOVE_SHIPMENTS),
            "can_print": request.user.has_perm(PRINT),
            "return_to": safe_next(request) or reverse("fulfillment:kanban-home"),
        },
    )
    response["HX-Trigger"] = "kanban-changed"
    return response


urlpatterns: list = [
    path("kanban/", kanban_home, name="kanban-home"),
    path("kanban/<slug:code>/", kanban_page, name="kanban"),
    path("kanban/<slug:code>/column/<str:status>/", kanban_column_partial, name="kanban-column"),
    path("kanban/<slug:code>/counts/", kanban_counts_partial, name="kanban-counts"),
    path("shipments/<int:pk>/move/", shipment_move, name="shipment-move"),
]
