"""Fulfilment pages: waves (波次): the list with both ways to create one (ticked parcels or a rule), and a
wave's consolidated pick list sorted by bin location, printable, with its "Start wave" button."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from fulfillment import services
from fulfillment.forms import WaveRuleForm, WaveSelectionForm
from fulfillment.models import Shipment, ShipmentStatus, Wave
from fulfillment.selectors import wave_pick_list
from inventory.models import Warehouse
from inventory.selectors import scope_filter, warehouses_for_user
from oms.exceptions import DomainError
from oms.inputs import parse_ids

PAGE_SIZE = 50
# The selection list shows the most urgent waiting parcels; a bigger batch is what "by rule" is for.
SELECTION_ROWS = 200
VIEW = "fulfillment.view_wave"
CREATE = "fulfillment.add_wave"


def _waiting(request: HttpRequest, warehouse: Warehouse | None):
    """Parcels of the warehouse that may join a wave: waiting to be picked, in no wave yet, and of the
    stores the user works for (the warehouse itself was chosen among the user's)."""
    if warehouse is None:
        return Shipment.objects.none()
    parcels = (
        Shipment.objects.filter(warehouse=warehouse, status=ShipmentStatus.TO_PICK, wave__isnull=True)
        .select_related("carrier")
        .order_by("-priority", "sla_due_at", "pk")
    )
    return scope_filter(parcels, user=request.user, store="store")


def _rule_form(request: HttpRequest, data=None, **kwargs) -> WaveRuleForm:
    """The "wave by rule" form, its warehouse picker limited to the user's warehouses."""
    form = WaveRuleForm(data, **kwargs)
    form.fields["warehouse"].queryset = warehouses_for_user(user=request.user)
    return form


def _waves(request: HttpRequest):
    """Waves of the warehouses the user works for (404 by id for the others)."""
    return scope_filter(Wave.objects.all(), user=request.user)


def _list_context(request: HttpRequest, *, selection_form=None, rule_form=None) -> dict:
    waves = (
        _waves(request)
        .select_related("warehouse", "created_by")
        .annotate(parcels=Count("shipments", filter=~Q(shipments__status=ShipmentStatus.CANCELLED)))
        .order_by("-created_at", "-id")
    )
    warehouses = list(warehouses_for_user(user=request.user))
    code = (
        selection_form.data.get("warehouse") if selection_form is not None else request.GET.get("warehouse")
    ) or ""
    chosen = next((w for w in warehouses if w.code == code), None)
    waiting = _waiting(request, chosen)
    return {
        "page": Paginator(waves, PAGE_SIZE).get_page(request.GET.get("page")),
        "query": "",
        "warehouses": warehouses,
        "chosen": chosen,
        "waiting": list(waiting[:SELECTION_ROWS]),
        "waiting_count": waiting.count(),
        "selection_form": selection_form or WaveSelectionForm(initial={"warehouse": code}),
        "rule_form": rule_form or _rule_form(request, initial={"warehouse": code}),
        "selected": set(parse_ids(selection_form.data.getlist("shipments")))
        if selection_form is not None
        else set(),
    }


@login_required
@permission_required(VIEW, raise_exception=True)
def wave_list(request: HttpRequest) -> HttpResponse:
    return render(request, "fulfillment/wave_list.html", _list_context(request))


def _created(request: HttpRequest, wave: Wave) -> HttpResponse:
    count = wave.shipments.count()
    message = ngettext(
        "Wave %(number)s created with %(count)s parcel.",
        "Wave %(number)s created with %(count)s parcels.",
        count,
    )
    messages.success(request, message % {"number": wave.number, "count": count})
    return redirect("fulfillment:wave", pk=wave.pk)


@login_required
@require_POST
@permission_required(CREATE, raise_exception=True)
def wave_create(request: HttpRequest) -> HttpResponse:
    """A wave of the ticked parcels."""
    warehouse = warehouses_for_user(user=request.user).filter(code=request.POST.get("warehouse", "")).first()
    form = WaveSelectionForm(request.POST, candidates=_waiting(request, warehouse))
    # Another warehouse's code is then an invalid choice: a form error (400), no wave.
    form.fields["warehouse"].queryset = warehouses_for_user(user=request.user)
    if not form.is_valid():
        context = _list_context(request, selection_form=form)
        return render(request, "fulfillment/wave_list.html", context, status=400)
    try:
        wave = services.wave_create(
            shipment_ids=[s.pk for s in form.cleaned_data["shipments"]],
            actor=request.user,
            description=form.cleaned_data["description"],
        )
    except DomainError as exc:
        messages.error(request, _("Refused: %(why)s") % {"why": exc.message})
        return redirect(f"{reverse('fulfillment:waves')}?warehouse={warehouse.code}#selection")
    return _created(request, wave)


@login_required
@require_POST
@permission_required(CREATE, raise_exception=True)
def wave_create_by_rule(request: HttpRequest) -> HttpResponse:
    """A wave of the most urgent waiting parcels of one warehouse, of a carrier and/or province, up to N."""
    form = _rule_form(request, request.POST)
    if not form.is_valid():
        return render(
            request, "fulfillment/wave_list.html", _list_context(request, rule_form=form), status=400
        )
    data = form.cleaned_data
    try:
        wave = services.wave_create_by_rule(
            warehouse_id=data["warehouse"].pk,
            carrier_id=data["carrier"].pk if data["carrier"] else None,
            province=data["province"].strip(),
            limit=data["limit"],
            actor=request.user,
        )
    except DomainError as exc:
        messages.error(request, _("Refused: %(why)s") % {"why": exc.message})
        return redirect("fulfillment:waves")
    return _created(request, wave)


@login_required
@permission_required(VIEW, raise_exception=True)
def wave_detail(request: HttpRequest, pk: int) -> HttpResponse:
    wave = get_object_or_404(_waves(request).select_related("warehouse", "created_by"), pk=pk)
    shipments = list(
        scope_filter(wave.shipments.all(), user=request.user, store="store")
        .select_related("carrier")
        .order_by("-priority", "sla_due_at", "pk")
    )
    rows = wave_pick_list(wave)
    return render(
        request,
        "fulfillment/wave_detail.html",
        {
            "wave": wave,
            "rows": rows,
            "shipments": shipments,
            "units": sum(row.quantity for row in rows),
            "waiting": sum(1 for s in shipments if s.status == ShipmentStatus.TO_PICK),
        },
    )


@login_required
@require_POST
@permission_required([CREATE, "fulfillment.move_shipment"], raise_exception=True)
def wave_start(request: HttpRequest, pk: int) -> HttpResponse:
    wave = get_object_or_404(_waves(request), pk=pk)
    try:
        services.wave_start(wave_id=wave.pk, actor=request.user)
    except DomainError as exc:
        messages.error(request, _("Refused: %(why)s") % {"why": exc.message})
    else:
        messages.success(
            request, _("Wave %(number)s started: its parcels are being picked.") % {"number": wave.number}
        )
    return redirect("fulfillment:wave", pk=wave.pk)


urlpatterns: list = [
    path("waves/", wave_list, name="waves"),
    path("waves/new/", wave_create, name="wave-create"),
    path("waves/new-by-rule/", wave_create_by_rule, name="wave-create-rule"),
    path("waves/<int:pk>/", wave_detail, name="wave"),
    path("waves/<int:pk>/start/", wave_start, name="wave-start"),
]
