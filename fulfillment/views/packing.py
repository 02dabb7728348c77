"""Fulfilment pages: the scan-to-verify packing station (one scan input: the parcel's label, then each item).

With htmx the station (``#station``) is swapped in place, a refusal answering 400/409 with its red banner;
without JavaScript every POST redirects back to ``pack/<pk>/`` and the outcome travels in the session.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required, permission_required
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST
from django_htmx.http import push_url

from fulfillment import services
from fulfillment.exceptions import ScanRefused
from fulfillment.forms import PackForm, ScanForm
from fulfillment.models import Shipment, ShipmentStatus
from inventory.selectors import scope_filter
from oms.exceptions import DomainError
from pipeline import shipping

PACK = "fulfillment.move_shipment"
# Where the no-JS flow keeps the last outcome between the POST and the page it redirects to.
FEEDBACK_KEY = "packing_feedback"
OK, BAD, INFO = "ok", "bad", "info"


def _feedback(level: str, message: str, *, shipment: Shipment | None = None, sku: str = "") -> dict:
    return {
        "level": level,
        "message": str(message),
        "sku": sku,
        "shipment_id": shipment.pk if shipment else None,
        "shipment_number": shipment.number if shipment else "",
    }


def _is_item_of(shipment: Shipment, code: str) -> bool:
    """Whether the scanned code names an item of the parcel (the service's rule: barcode or SKU code)."""
    return bool(code) and shipment.lines.filter(Q(sku__barcode=code) | Q(sku__code=code)).exists()


def _in_scope(request: HttpRequest):
    """The parcels this user may pack: those of their warehouses and stores (others are "no such parcel")."""
    return scope_filter(Shipment.objects.all(), user=request.user, store="store")


def _parcel_for(request: HttpRequest, code: str) -> Shipment | None:
    try:
        parcel = services.shipment_find_for_scan(code=code)
    except ScanRefused:
        return None
    # Another warehouse's label reads like an unknown one: the station says nothing about that parcel.
    return parcel if _in_scope(request).filter(pk=parcel.pk).exists() else None


def _opened(shipment: Shipment) -> dict:
    """What the station says when a parcel's label is scanned, by the parcel's state."""
    if shipment.status == ShipmentStatus.PICKING:
        return _feedback(
            INFO, _("Parcel %(number)s: scan each item.") % {"number": shipment.number}, shipment=shipment
        )
    if shipment.status == ShipmentStatus.TO_PICK:
        return _feedback(
            BAD,
            _("Parcel %(number)s has not been picked yet: start picking before scanning its items.")
            % {"number": shipment.number},
            shipment=shipment,
        )
    if shipment.status == ShipmentStatus.PACKED:
        return _feedback(
            INFO, _("Parcel %(number)s is already packed.") % {"number": shipment.number}, shipment=shipment
        )
    return _feedback(
        BAD,
        _("Parcel %(number)s is %(status)s: there is nothing to pack.")
        % {"number": shipment.number, "status": shipment.get_status_display()},
        shipment=shipment,
    )


def _station_context(
    shipment: Shipment | None, *, feedback: dict | None = None, scan_form=None, pack_form=None
) -> dict:
    rows, complete, last_sku = [], False, (feedback or {}).get("sku", "")
    if shipment is not None:
        for line in shipment.lines.select_related("sku", "order").order_by("pk"):
            state = (
                "done"
                if line.verified_quantity >= line.quantity
                else "partial"
                if line.verified_quantity
                else "todo"
            )
            rows.append({"line": line, "sku": line.sku, "state": state, "last": line.sku.code == last_sku})
        complete = bool(rows) and all(row["state"] == "done" for row in rows)
    return {
        "shipment": shipment,
        "rows": rows,
        "complete": complete,
        "scanned": sum(row["line"].verified_quantity for row in rows),
        "needed": sum(row["line"].quantity for row in rows),
        "feedback": feedback,
        "scan_form": scan_form or ScanForm(),
        "pack_form": pack_form or PackForm(),
        "scan_url": reverse("fulfillment:packing-scan-item", args=[shipment.pk])
        if shipment
        else reverse("fulfillment:packing-scan"),
    }


def _answer(
    request: HttpRequest,
    shipment: Shipment | None,
    feedback: dict,
    *,
    status: int = 200,
    scan_form=None,
    pack_form=None,
) -> HttpResponse:
    """htmx: the station partial (the URL follows the open parcel); otherwise redirect to the station page."""
    url = (
        reverse("fulfillment:packing-parcel", args=[shipment.pk])
        if shipment
        else reverse("fulfillment:packing")
    )
    if request.htmx:
        context = _station_context(shipment, feedback=feedback, scan_form=scan_form, pack_form=pack_form)
        response = render(request, "fulfillment/_packing_station.html", context, status=status)
        return push_url(response, url)
    request.session[FEEDBACK_KEY] = feedback
    return redirect(url)


@login_required
@permission_required(PACK, raise_exception=True)
def packing(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    shipment = get_object_or_404(_in_scope(request), pk=pk) if pk else None
    feedback = request.session.pop(FEEDBACK_KEY, None)
    if feedback is None and shipment is not None and shipment.status != ShipmentStatus.PICKING:
        feedback = _opened(shipment)
    return render(request, "fulfillment/packing.html", _station_context(shipment, feedback=feedback))


@login_required
@require_POST
@permission_required(PACK, raise_exception=True)
def packing_scan(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    """One scan: an item of the open parcel is counted; another parcel's label opens that parcel."""
    shipment = get_object_or_404(_in_scope(request), pk=pk) if pk else None
    form = ScanForm(request.POST)
    if not form.is_valid():
        message = " ".join(form.errors.get("code", [])) or _("Scan a barcode first.")
        return _answer(request, shipment, _feedback(BAD, message, shipment=shipment), status=400)
    code = form.cleaned_data["code"]
    if shipment is None or not _is_item_of(shipment, code):
        parcel = _parcel_for(request, code)
        if parcel is not None and (shipment is None or parcel.pk != shipment.pk):
            return _answer(request, parcel, _opened(parcel))
        if parcel is not None:
            return _answer(request, shipment, _feedback(INFO, _("This is the open parcel's own label.")))
        if shipment is None:
            message = _("No parcel has the number %(code)s.") % {"code": code[:64]}
            return _answer(request, None, _feedback(BAD, message), status=400)
    try:
        result = services.shipment_scan_item(shipment_id=shipment.pk, barcode=code, actor=request.user)
    except DomainError as exc:
        return _answer(
            request, shipment, _feedback(BAD, exc.message, shipment=shipment), status=exc.http_status
        )
    message = _("%(sku)s: %(verified)s of %(quantity)s scanned.") % {
        "sku": result.sku_code,
        "verified": result.verified,
        "quantity": result.quantity,
    }
    if result.complete:
        message = _("%(scan)s Every item is verified: pack the parcel.") % {"scan": message}
    return _answer(request, shipment, _feedback(OK, message, shipment=shipment, sku=result.sku_code))


@login_required
@require_POST
@permission_required(PACK, raise_exception=True)
def packing_pack(request: HttpRequest, pk: int) -> HttpResponse:
    shipment = get_object_or_404(_in_scope(request), pk=pk)
    form = PackForm(request.POST)
    if not form.is_valid():
        message = " ".join(form.errors.get("weight_grams", [])) or _("Check the weight.")
        return _answer(
            request, shipment, _feedback(BAD, message, shipment=shipment), status=400, pack_form=form
        )
    weight = form.cleaned_data["weight_grams"]
    try:
        packed = shipping.shipment_pack(shipment_id=pk, actor=request.user, weight_grams=weight)
    except DomainError as exc:
        return _answer(
            request,
            shipment,
            _feedback(BAD, exc.message, shipment=shipment),
            status=exc.http_status,
            pack_form=form,
        )
    if weight:
        message = _("Parcel %(number)s packed (%(weight)s g). Scan the next parcel.") % {
            "number": packed.number,
            "weight": weight,
        }
    else:
        message = _("Parcel %(number)s packed. Scan the next parcel.") % {"number": packed.number}
    # The station is free again: the next scan is the next parcel's label.
    return _answer(request, None, _feedback(OK, message, shipment=packed))


@login_required
@require_POST
@permission_required(PACK, raise_exception=True)
def packing_reset(request: HttpRequest, pk: int) -> HttpResponse:
    shipment = get_object_or_404(_in_scope(request), pk=pk)
    try:
        services.shipment_scan_reset(shipment_id=pk, actor=request.user)
    except DomainError as exc:
        return _answer(
            request, shipment, _feedback(BAD, exc.message, shipment=shipment), status=exc.http_status
        )
    message = _("Scans of parcel %(number)s cleared: scan every item again.") % {"number": shipment.number}
    return _answer(request, shipment, _feedback(INFO, message, shipment=shipment))


@login_required
@require_POST
@permission_required(PACK, raise_exception=True)
def packing_start(request: HttpRequest, pk: int) -> HttpResponse:
    shipment = get_object_or_404(_in_scope(request), pk=pk)
    try:
        shipping.shipment_start_picking(shipment_id=pk, actor=request.user)
    except DomainError as exc:
        return _answer(
            request, shipment, _feedback(BAD, exc.message, shipment=shipment), status=exc.http_status
        )
    shipment.refresh_from_db()
    return _answer(request, shipment, _opened(shipment))


urlpatterns: list = [
    path("pack/", packing, name="packing"),
    path("pack/scan/", packing_scan, name="packing-scan"),
    path("pack/<int:pk>/", packing, name="packing-parcel"),
    path("pack/<int:pk>/scan/", packing_scan, name="packing-scan-item"),
    path("pack/<int:pk>/pack/", packing_pack, name="packing-pack"),
    path("pack/<int:pk>/reset/", packing_reset, name="packing-reset"),
    path("pack/<int:pk>/start/", packing_start, name="packing-start"),
]
