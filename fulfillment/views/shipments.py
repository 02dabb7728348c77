"""Fulfilment pages: the parcel list, a parcel's page with its actions (moves, waybill, overrides, merge and
split), and the list of parcels whose tracking went silent (for customer service)."""

from __future__ import annotations

from collections.abc import Callable

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from fulfillment import services
from fulfillment.carriers.base import CarrierError
from fulfillment.filters import ShipmentFilter
from fulfillment.forms import (
    MergeForm,
    OptionalReasonForm,
    OverrideCarrierForm,
    OverrideWarehouseForm,
    ReasonForm,
    ShipForm,
    SplitForm,
    TrackingNumberForm,
)
from fulfillment.models import (
    OPEN_SHIPMENT_STATES,
    CarrierKind,
    DecisionKind,
    RoutingDecision,
    Shipment,
    ShipmentStatus,
)
from fulfillment.selectors import customer_tracking_of, merge_candidates, shipment_detail, stale_shipments
from fulfillment.views.kanban import card_response, refused
from inventory.models import Warehouse
from inventory.selectors import scope_filter
from oms.exceptions import DomainError
from oms.inputs import query_without_page, safe_next
from oms.paging import paginate
from pipeline import shipping

PAGE_SIZE = 50
VIEW = "fulfillment.view_shipment"
MOVE = "fulfillment.move_shipment"
ROUTE = "fulfillment.route_shipment"
SS = ShipmentStatus


@login_required
@permission_required(VIEW, raise_exception=True)
def shipment_list(request: HttpRequest) -> HttpResponse:
    base = scope_filter(
        Shipment.objects.select_related("warehouse", "carrier", "store").order_by("-created_at", "-id"),
        user=request.user,
        store="store",
    )
    shipment_filter = ShipmentFilter(request.GET or None, queryset=base)
    # The picker offers only the user's warehouses (another one is an invalid choice, so the list stays scoped).
    shipment_filter.filters["warehouse"].queryset = scope_filter(
        Warehouse.objects.order_by("priority", "code"), user=request.user, warehouse="pk"
    )
    queryset = shipment_filter.qs if shipment_filter.is_bound and shipment_filter.is_valid() else base
    page = paginate(request, queryset, PAGE_SIZE)
    rows = [{"shipment": s, "tracking": customer_tracking_of(s)} for s in page.object_list]
    return render(
        request,
        "fulfillment/shipment_list.html",
        {
            "filter": shipment_filter,
            "page": page,
            "rows": rows,
            "query": query_without_page(request),
        },
    )


# --- The parcel's page ----------------------------------------------------------------------------


def _decisions(shipment: Shipment, order_ids: list[int]) -> list[dict]:
    """The parcel's carrier decisions and its orders' warehouse decisions, newest first, warehouses by code."""
    decisions = list(
        RoutingDecision.objects.filter(
            Q(shipment=shipment) | Q(order_id__in=order_ids, kind=DecisionKind.WAREHOUSE)
        )
        .select_related("order", "carrier", "actor", "preferred_warehouse")
        .order_by("-created_at", "-id")
    )
    ids = {w for d in decisions for w in (d.warehouse_ids or []) if isinstance(w, int)}
    codes = dict(Warehouse.objects.filter(pk__in=ids).values_list("pk", "code"))
    return [
        {"decision": d, "warehouses": [codes.get(w, str(w)) for w in d.warehouse_ids or []]}
        for d in decisions
    ]


def _override_warehouse_form(request: HttpRequest, shipment: Shipment, data=None) -> OverrideWarehouseForm:
    """The "ship from another warehouse" form, offering only the warehouses the user works for."""
    form = OverrideWarehouseForm(data, exclude_id=shipment.warehouse_id)
    form.fields["warehouse"].queryset = scope_filter(
        form.fields["warehouse"].queryset, user=request.user, warehouse="pk"
    )
    return form


def _forms(request: HttpRequest, shipment: Shipment, lines: list, bound: dict | None = None) -> dict:
    """Every action form of the page; ``bound`` replaces one with the submitted, invalid one."""
    forms = {
        "ship_form": ShipForm(),
        "exception_form": ReasonForm(),
        "resolve_form": OptionalReasonForm(),
        "tracking_form": TrackingNumberForm(),
        "carrier_form": OverrideCarrierForm(
            initial={"carrier": shipment.carrier_id, "service": shipment.service_level}
        ),
        "warehouse_form": _override_warehouse_form(request, shipment),
        "merge_form": MergeForm(candidates=merge_candidates(shipment)),
        "unmerge_form": OptionalReasonForm(),
        "split_form": SplitForm(lines=lines),
    }
    forms.update(bound or {})
    if shipment.status == SS.PACKED and not shipment.tracking_number:
        # Packed and waiting for its number: the cursor is in the field, so a scan lands there at once.
        forms["tracking_form"].fields["tracking_number"].widget.attrs["autofocus"] = True
    return forms


def _detail_context(request: HttpRequest, shipment: Shipment, bound: dict | None = None) -> dict:
    lines = list(shipment.lines.all())
    orders = sorted({line.order_id: line.order for line in lines}.values(), key=lambda o: o.number)
    number, url = customer_tracking_of(shipment)
    status = shipment.status
    user = request.user
    can_move, can_route = user.has_perm(MOVE), user.has_perm(ROUTE)
    manual = shipment.carrier is None or shipment.carrier.kind == CarrierKind.MANUAL
    candidates = list(merge_candidates(shipment)) if can_route and status == SS.TO_PICK else []
    return {
        "shipment": shipment,
        "lines": lines,
        "orders": orders,
        "customer_number": number,
        "customer_url": url,
        "decisions": _decisions(shipment, [o.pk for o in orders]),
        "events": list(shipment.events.all()),
        "tracking_events": list(shipment.tracking_events.all()),
        "merge_candidates": candidates,
        "needs_tracking": manual and not shipment.tracking_number,
        "can": {
            "start": can_move and status == SS.TO_PICK,
            "ship": can_move and status == SS.PACKED,
            "deliver": can_move and status == SS.SHIPPED,
            "exception": can_move and status in (SS.TO_PICK, SS.PICKING, SS.PACKED, SS.SHIPPED),
            "resolve": can_move and status == SS.EXCEPTION,
            "waybill": can_move
            and not manual
            and not shipment.tracking_number
            and status in (SS.TO_PICK, SS.PICKING, SS.PACKED),
            "tracking": can_move and status in (SS.TO_PICK, SS.PICKING, SS.PACKED),
            "pack": can_move and status == SS.PICKING,
            "carrier": can_route and status in OPEN_SHIPMENT_STATES and not shipment.tracking_number,
            "warehouse": can_route and status == SS.TO_PICK and len(orders) == 1,
            "merge": can_route and bool(candidates),
            "unmerge": can_route and status == SS.TO_PICK and len(orders) > 1,
            "split": can_route and status == SS.TO_PICK and sum(line.quantity for line in lines) > 1,
        },
        **_forms(request, shipment, lines, bound),
    }


def _shipment_or_404(request: HttpRequest, pk: int) -> Shipment:
    """The parcel, or 404 when it does not exist or lies outside the user's warehouses or stores."""
    if not scope_filter(Shipment.objects.filter(pk=pk), user=request.user, store="store").exists():
        raise Http404
    try:
        return shipment_detail(pk)
    except Shipment.DoesNotExist:
        raise Http404 from None


@login_required
@permission_required(VIEW, raise_exception=True)
def shipment_detail_page(request: HttpRequest, pk: int) -> HttpResponse:
    shipment = _shipment_or_404(request, pk)
    return render(request, "fulfillment/shipment_detail.html", _detail_context(request, shipment))


def _act(
    request: HttpRequest,
    pk: int,
    permission: str,
    call: Callable[[dict], object],
    done: Callable[[object], str],
    *,
    form_name: str = "",
    make_form: Callable[[Shipment], object] | None = None,
) -> HttpResponse:
    """One POST behind a button: check the input, call one service, say what happened (or why not).

    Bad input re-renders the page with the form's errors (400); a refusal by the service becomes a message
    on the parcel's page, like the order page's buttons.
    """
    if not request.user.has_perm(permission):
        raise PermissionDenied
    shipment = _shipment_or_404(request, pk)
    data: dict = {}
    if make_form is not None:
        form = make_form(shipment)
        if not form.is_valid():
            messages.error(request, _("Check the form below."))
            context = _detail_context(request, shipment, bound={form_name: form})
            return render(request, "fulfillment/shipment_detail.html", context, status=400)
        data = {**form.cleaned_data, "_form": form}
    try:
        result = call(data)
    except DomainError as exc:
        messages.error(request, _("Refused: %(why)s") % {"why": exc.message})
    except CarrierError as exc:  # an adapter that could not even be built (its settings): nothing changed
        messages.error(request, _("Refused: %(why)s") % {"why": exc})
    else:
        messages.success(request, done(result))
        if isinstance(result, Shipment) and result.pk != pk:
            return redirect("fulfillment:shipment", pk=result.pk)
    return redirect("fulfillment:shipment", pk=pk)


@login_required
@require_POST
def shipment_start(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(
        request,
        pk,
        MOVE,
        lambda data: shipping.shipment_start_picking(shipment_id=pk, actor=request.user),
        lambda s: _("Parcel %(number)s is being picked.") % {"number": s.number},
    )


@login_required
@require_POST
def shipment_ship(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(
        request,
        pk,
        MOVE,
        lambda data: shipping.shipment_ship(
            shipment_id=pk, actor=request.user, tracking_number=data["tracking_number"]
        ),
        lambda s: _("Parcel %(number)s shipped.") % {"number": s.number},
        form_name="ship_form",
        make_form=lambda s: ShipForm(request.POST),
    )


@login_required
@require_POST
def shipment_deliver(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(
        request,
        pk,
        MOVE,
        lambda data: shipping.shipment_deliver(shipment_id=pk, actor=request.user),
        lambda s: _("Parcel %(number)s delivered.") % {"number": s.number},
    )


@login_required
@require_POST
def shipment_exception(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(
        request,
        pk,
        MOVE,
        lambda data: services.shipment_raise_exception(
            shipment_id=pk, reason=data["reason"], actor=request.user
        ),
        lambda s: _("Exception reported on parcel %(number)s.") % {"number": s.number},
        form_name="exception_form",
        make_form=lambda s: ReasonForm(request.POST),
    )


@login_required
@require_POST
def shipment_resolve(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(
        request,
        pk,
        MOVE,
        lambda data: services.shipment_resolve(shipment_id=pk, actor=request.user, reason=data["reason"]),
        lambda s: (
            _("Parcel %(number)s is %(status)s again.")
            % {"number": s.number, "status": s.get_status_display()}
        ),
        form_name="resolve_form",
        make_form=lambda s: OptionalReasonForm(request.POST),
    )


@login_required
@require_POST
def shipment_waybill(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(
        request,
        pk,
        MOVE,
        lambda data: shipping.shipment_request_waybill(shipment_id=pk),
        lambda s: (
            _("Waybill %(tracking)s for parcel %(number)s.")
            % {"tracking": s.tracking_number, "number": s.number}
        ),
    )


@login_required
@require_POST
def shipment_tracking(request: HttpRequest, pk: int) -> HttpResponse:
    """The one tracking-number field, on the parcel page and on the kanban card (scanned or typed, then Enter).

    From the card (htmx) the answer is the card itself, or the refusal for the board's alert area; without
    JavaScript, or from the parcel page, a message and back to where the form was (``next``) or the parcel.
    """
    def save(data: dict) -> Shipment:
        return services.shipment_set_tracking_number(
            shipment_id=pk, tracking_number=data["tracking_number"], actor=request.user
        )

    if request.htmx:
        if not request.user.has_perm(MOVE):
            raise PermissionDenied
        _shipment_or_404(request, pk)
        form = TrackingNumberForm(request.POST)
        if not form.is_valid():
            error = form.errors.as_data()["tracking_number"][0]
            return refused(request, message=error.messages[0], code="tracking_invalid", status=400)
        try:
            shipment = save(form.cleaned_data)
        except DomainError as exc:
            return refused(request, message=exc.message, code=exc.code, status=exc.http_status)
        return card_response(request, shipment)
    response = _act(
        request,
        pk,
        MOVE,
        save,
        lambda s: _("Tracking number %(tracking)s saved.") % {"tracking": s.tracking_number},
        form_name="tracking_form",
        make_form=lambda s: TrackingNumberForm(request.POST),
    )
    back = safe_next(request)
    return redirect(back) if back and response.status_code == 302 else response


@login_required
@require_POST
def shipment_override_carrier(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(
        request,
        pk,
        ROUTE,
        lambda data: services.shipment_override_carrier(
            shipment_id=pk,
            carrier_id=data["carrier"].pk,
            service=data["service"],
            reason=data["reason"],
            actor=request.user,
        ),
        lambda s: (
            _("Parcel %(number)s now goes with %(carrier)s.")
            % {"number": s.number, "carrier": s.carrier.name}
        ),
        form_name="carrier_form",
        make_form=lambda s: OverrideCarrierForm(request.POST),
    )


@login_required
@require_POST
def shipment_override_warehouse(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(
        request,
        pk,
        ROUTE,
        lambda data: services.shipment_override_warehouse(
            shipment_id=pk, warehouse_id=data["warehouse"].pk, reason=data["reason"], actor=request.user
        ),
        lambda s: (
            _("Parcel %(number)s now ships from %(warehouse)s.")
            % {"number": s.number, "warehouse": s.warehouse.name}
        ),
        form_name="warehouse_form",
        make_form=lambda s: _override_warehouse_form(request, s, request.POST),
    )


@login_required
@require_POST
def shipment_merge(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(
        request,
        pk,
        ROUTE,
        lambda data: services.shipments_merge(
            shipment_ids=[pk, *(s.pk for s in data["shipments"])], actor=request.user, reason=data["reason"]
        ),
        lambda s: _("Parcels merged into %(number)s.") % {"number": s.number},
        form_name="merge_form",
        make_form=lambda s: MergeForm(request.POST, candidates=merge_candidates(s)),
    )


@login_required
@require_POST
def shipment_unmerge(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(
        request,
        pk,
        ROUTE,
        lambda data: services.shipment_unmerge(shipment_id=pk, actor=request.user, reason=data["reason"]),
        lambda created: (
            _("Unmerged: new parcels %(numbers)s.") % {"numbers": ", ".join(s.number for s in created)}
        ),
        form_name="unmerge_form",
        make_form=lambda s: OptionalReasonForm(request.POST),
    )


@login_required
@require_POST
def shipment_split(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(
        request,
        pk,
        ROUTE,
        lambda data: services.shipment_split(
            shipment_id=pk, quantities=data["_form"].quantities(), actor=request.user, reason=data["reason"]
        ),
        lambda new: _("Split: the units moved to the new parcel %(number)s.") % {"number": new.number},
        form_name="split_form",
        make_form=lambda s: SplitForm(request.POST, lines=list(s.lines.all())),
    )


# --- Stale tracking -------------------------------------------------------------------------------


@login_required
@permission_required(VIEW, raise_exception=True)
def shipment_stale(request: HttpRequest) -> HttpResponse:
    """Parcels in transit without a tracking update for days: customer service calls the carrier or the buyer."""
    page = paginate(request, scope_filter(stale_shipments(), user=request.user, store="store"), PAGE_SIZE)
    now = timezone.now()
    rows = []
    for shipment in page.object_list:
        last = shipment.last_tracking_at or shipment.shipped_at or shipment.tracking_stale_since
        number, url = customer_tracking_of(shipment)
        rows.append(
            {
                "shipment": shipment,
                "last": last,
                "days": (now - last).days if last else None,
                "tracking": number,
                "tracking_url": url,
            }
        )
    return render(request, "fulfillment/shipment_stale.html", {"page": page, "rows": rows, "query": ""})


urlpatterns: list = [
    path("shipments/", shipment_list, name="shipments"),
    path("shipments/stale/", shipment_stale, name="stale"),
    path("shipments/<int:pk>/", shipment_detail_page, name="shipment"),
    path("shipments/<int:pk>/start/", shipment_start, name="shipment-start"),
    path("shipments/<int:pk>/ship/", shipment_ship, name="shipment-ship"),
    path("shipments/<int:pk>/deliver/", shipment_deliver, name="shipment-deliver"),
    path("shipments/<int:pk>/exception/", shipment_exception, name="shipment-exception"),
    path("shipments/<int:pk>/resolve/", shipment_resolve, name="shipment-resolve"),
    path("shipments/<int:pk>/waybill/", shipment_waybill, name="shipment-waybill"),
    path("shipments/<int:pk>/tracking/", shipment_tracking, name="shipment-tracking"),
    path("shipments/<int:pk>/override-carrier/", shipment_override_carrier, name="shipment-override-carrier"),
    path(
        "shipments/<int:pk>/override-warehouse/",
        shipment_override_warehouse,
        name="shipment-override-warehouse",
    ),
    path("shipments/<int:pk>/merge/", shipment_merge, name="shipment-merge"),
    path("shipments/<int:pk>/unmerge/", shipment_unmerge, name="shipment-unmerge"),
    path("shipments/<int:pk>/split/", shipment_split, name="shipment-split"),
]
