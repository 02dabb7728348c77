"""Fulfilment pages: waves (波次): the list with both ways to create one (ticked parcels or a rule), and a
wave's consolidated pick list sorted by bin location, printable, with its "Start wave" button."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
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
from fulfillment.selectors import shipment_held_q, shipment_holds, wave_pick_list
from inventory.models import Warehouse
from inventory.selectors import scope_filter, warehouses_for_user
from oms.exceptions import DomainError
from oms.inputs import parse_ids
from oms.paging import paginate
from pipeline import shipping

PAGE_SIZE = 50
# The selection list shows the most urgent waiting parcels; a bigger batch is what "by rule" is for.
SELECTION_ROWS = 200
VIEW = "fulfillment.view_wave"
CREATE = "fulfillment.add_wave"


def _waiting(request: HttpRequest, warehouse: Warehouse | None, *, held: bool = False):
    """Parcels of the warehouse that may join a wave: waiting to be picked, in no wave yet, and of the
    stores the user works for (the warehouse itself was chosen among the user's).

    Parcels whose order is on hold are not offered; ``held=True`` keeps them for checking a posted choice, so
    that one ticked on a page shown before the hold is refused by the service with its number, not as a
    bare invalid choice."""
    if warehouse is None:
        return Shipment.objects.none()
    parcels = Shipment.objects.filter(warehouse=warehouse, status=ShipmentStatus.TO_PICK, wave__isnull=True)
    if not held:
        parcels = parcels.exclude(shipment_held_q())
    parcels = parcels.select_related("carrier").order_by("-priority", "sla_due_at", "pk")
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
        "page": paginate(request, waves, PAGE_SIZE),
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
    form = WaveSelectionForm(request.POST, candidates=_waiting(request, warehouse, held=True))
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
    holds = shipment_holds(shipment_ids=[s.pk for s in shipments if s.status == ShipmentStatus.TO_PICK])
    for shipment in shipments:
        shipment.hold = holds.get(shipment.pk, "")
        shipment.removable = wave.status in (Wave.Status.OPEN, Wave.Status.PICKING) and (
            shipment.status in services.waves.REMOVABLE_STATES
        )
    return render(
        request,
        "fulfillment/wave_detail.html",
        {
            "wave": wave,
            "rows": rows,
            "shipments": shipments,
            "units": sum(row.quantity for row in rows),
            "waiting": sum(1 for s in shipments if s.status == ShipmentStatus.TO_PICK and not s.hold),
            "held": sum(1 for s in shipments if s.hold),
            "cancellable": wave.status in (Wave.Status.OPEN, Wave.Status.PICKING)
            and all(s.status in services.waves.REMOVABLE_STATES for s in shipments),
        },
    )


@login_required
@require_POST
@permission_required([CREATE, "fulfillment.move_shipment"], raise_exception=True)
def wave_start(request: HttpRequest, pk: int) -> HttpResponse:
    """Start picking what can be picked; the parcels left waiting (held, cancelled) are named in the message."""
    wave = get_object_or_404(_waves(request), pk=pk)
    try:
        result = shipping.wave_start(wave_id=wave.pk, actor=request.user)
    except DomainError as exc:
        messages.error(request, _("Refused: %(why)s") % {"why": exc.message})
        return redirect("fulfillment:wave", pk=wave.pk)
    if not result.held and not result.cancelled:
        messages.success(
            request, _("Wave %(number)s started: its parcels are being picked.") % {"number": wave.number}
        )
        return redirect("fulfillment:wave", pk=wave.pk)
    messages.success(
        request,
        ngettext(
            "Wave %(number)s started: %(count)s parcel is being picked.",
            "Wave %(number)s started: %(count)s parcels are being picked.",
            len(result.started),
        )
        % {"number": wave.number, "count": len(result.started)},
    )
    if result.held:
        messages.warning(
            request,
            _("Not picked, their order is on hold: %(numbers)s. Remove them from the wave or release the order.")
            % {"numbers": ", ".join(result.held)},
        )
    if result.cancelled:
        messages.warning(
            request,
            _("Not picked, cancelled: %(numbers)s.") % {"numbers": ", ".join(result.cancelled)},
        )
    return redirect("fulfillment:wave", pk=wave.pk)


@login_required
@require_POST
@permission_required([CREATE, "fulfillment.move_shipment"], raise_exception=True)
def wave_remove_shipment(request: HttpRequest, pk: int) -> HttpResponse:
    """Drop one parcel (POST ``shipment=<id>``) from the wave; it waits again on its own."""
    wave = get_object_or_404(_waves(request), pk=pk)
    ids = parse_ids([request.POST.get("shipment", "")])
    # A parcel outside the user's stores is refused exactly like one that is not in the wave.
    shipment = scope_filter(wave.shipments.filter(pk__in=ids), user=request.user, store="store").first()
    if shipment is None:
        messages.error(request, _("Refused: %(why)s") % {"why": _("That parcel is not in this wave.")})
        return redirect("fulfillment:wave", pk=wave.pk)
    try:
        services.wave_remove_shipment(wave_id=wave.pk, shipment_id=shipment.pk, actor=request.user)
    except DomainError as exc:
        messages.error(request, _("Refused: %(why)s") % {"why": exc.message})
    else:
        messages.success(
            request,
            _("Parcel %(parcel)s left wave %(wave)s: it waits to be picked again.")
            % {"parcel": shipment.number, "wave": wave.number},
        )
    return redirect("fulfillment:wave", pk=wave.pk)


@login_required
@require_POST
@permission_required([CREATE, "fulfillment.move_shipment"], raise_exception=True)
def wave_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    """Cancel the wave while nothing of it was picked; its parcels go back to the waiting list."""
    wave = get_object_or_404(_waves(request), pk=pk)
    try:
        services.wave_cancel(wave_id=wave.pk, actor=request.user)
    except DomainError as exc:
        messages.error(request, _("Refused: %(why)s") % {"why": exc.message})
    else:
        messages.success(
            request,
            _("Wave %(number)s cancelled: its parcels wait to be picked again.") % {"number": wave.number},
        )
    return redirect("fulfillment:wave", pk=wave.pk)


urlpatterns: list = [
    path("waves/", wave_list, name="waves"),
    path("waves/new/", wave_create, name="wave-create"),
    path("waves/new-by-rule/", wave_create_by_rule, name="wave-create-rule"),
    path("waves/<int:pk>/", wave_detail, name="wave"),
    path("waves/<int:pk>/start/", wave_start, name="wave-start"),
    path("waves/<int:pk>/remove/", wave_remove_shipment, name="wave-remove"),
    path("waves/<int:pk>/cancel/", wave_cancel, name="wave-cancel"),
]
