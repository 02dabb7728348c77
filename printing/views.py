"""Printing pages: the print queue per warehouse (retry, reprint, cancel), label previews as PNG, the print
buttons of parcels, waves and the kanban selection, and the set-up of printers and LAN print bridges.

Every action is a POST that calls one service of printing.services or one flow of pipeline.printing (those
that send to a printer or ask a carrier); reads come from printing.selectors. A refusal becomes a message
(never a 500) and an unknown id a 404. The job list of the queue page is an htmx partial that refreshes itself.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET, require_POST

from fulfillment.carriers.base import CarrierError
from inventory.models import Warehouse
from inventory.selectors import warehouse_check_access, warehouses_for_user
from oms.exceptions import DomainError, NotFoundError
from oms.inputs import parse_ids, safe_next
from oms.paging import page_number
from pipeline import printing as print_flows
from printing import escpos_decode, labels, preview, renderers, selectors, services
from printing.forms import BridgeForm, PrinterForm, ReprintForm
from printing.models import JobStatus, PaperWidth, PrintJob
from printing.selectors import offline_printers

VIEW_JOBS = "printing.view_printjob"
PRINT = "printing.print"
VIEW_PRINTERS = "printing.view_printer"
ADD_PRINTER = "printing.add_printer"
CHANGE_PRINTER = "printing.change_printer"
ADD_BRIDGE = "printing.add_printbridge"
CHANGE_BRIDGE = "printing.change_printbridge"
PAGE = 50
# One click prints at most this many labels: a kanban selection or a wave, not the whole warehouse.
MAX_BATCH = 500
# Refused parcels named one by one in the messages; the rest are counted.
MAX_REFUSALS_LISTED = 10
# States whose jobs are counted on the filter tabs (printed grows without end; it is not counted).
COUNTED = (JobStatus.QUEUED, JobStatus.SENDING, JobStatus.FAILED)


# --- Helpers --------------------------------------------------------------------------------------


def _back(request: HttpRequest, default: str) -> HttpResponse:
    return redirect(safe_next(request) or default)


def _attempt(request: HttpRequest, call: Callable[[], object]) -> object | None:
    """Call one service; a refusal becomes an error message (None), an unknown id a 404."""
    try:
        return call()
    except NotFoundError as exc:
        raise Http404(exc.message) from exc
    except DomainError as exc:
        messages.error(request, _("Refused: %(why)s") % {"why": exc.message})
    except CarrierError as exc:  # an adapter that could not be built (its settings): nothing was printed
        messages.error(request, _("Refused: %(why)s") % {"why": exc})
    return None


def _plain(message: str, status: int) -> HttpResponse:
    response = HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")
    response["Cache-Control"] = "no-store"
    return response


def _png(payload: bytes, paper_width: int, *, cache: str) -> HttpResponse:
    response = HttpResponse(
        preview.render_png(escpos_decode.decode(payload), paper_width=paper_width), content_type="image/png"
    )
    response["Cache-Control"] = cache
    return response


def _first_warehouse(request: HttpRequest) -> Warehouse | None:
    return warehouses_for_user(user=request.user).first()


# --- Scope: a user works with the printers, jobs, parcels and waves of their own warehouses ----------
# By id an object outside the scope is a 404 (ids cannot be probed); a warehouse page by code is a 403.


def _warehouse(request: HttpRequest, code: str) -> Warehouse:
    warehouse = get_object_or_404(Warehouse, code=code)
    warehouse_check_access(user=request.user, warehouse=warehouse)
    return warehouse


def _jobs(request: HttpRequest):
    return selectors.jobs_for_user(user=request.user)


def _printers(request: HttpRequest):
    return selectors.printers_for_user(user=request.user)


def _shipments(request: HttpRequest):
    return selectors.shipments_for_user(user=request.user)


def _waves(request: HttpRequest):
    return selectors.waves_for_user(user=request.user)


def _queue_url(warehouse_code: str, **query) -> str:
    url = reverse("printing:queue", args=[warehouse_code])
    query = {key: value for key, value in query.items() if value}
    return f"{url}?{urlencode(query)}" if query else url


def _say_batch(request: HttpRequest, result: dict, asked: int) -> None:
    """The summary of a batch: queued, already there, refused (with the reasons), unknown."""
    refused = result["refused"]
    unknown = asked - result["queued"] - result["already"] - len(refused)
    summary = _("Labels: %(queued)s queued, %(already)s already queued or printed, %(refused)s refused.") % {
        "queued": result["queued"],
        "already": result["already"],
        "refused": len(refused),
    }
    (messages.warning if refused else messages.success)(request, summary)
    if refused:
        numbers = selectors.shipment_numbers(shipment_ids=[r["shipment_id"] for r in refused])
        for row in refused[:MAX_REFUSALS_LISTED]:
            messages.error(
                request,
                _("Parcel %(number)s not printed: %(why)s")
                % {"number": numbers.get(row["shipment_id"], row["shipment_id"]), "why": row["message"]},
            )
        if len(refused) > MAX_REFUSALS_LISTED:
            messages.error(
                request,
                _("… and %(count)s more parcels not printed.")
                % {"count": len(refused) - MAX_REFUSALS_LISTED},
            )
    if unknown > 0:
        messages.error(
            request,
            ngettext(
                "%(count)s selected parcel does not exist any more.",
                "%(count)s selected parcels do not exist any more.",
                unknown,
            )
            % {"count": unknown},
        )


def _ids(values: list[str]) -> list[int]:
    """Shipment ids from a form (checkboxes); anything that is not a positive number is ignored."""
    return parse_ids(values)


# --- The print queue ------------------------------------------------------------------------------


def _queue_context(request: HttpRequest, warehouse: Warehouse) -> dict:
    status = request.GET.get("status", "")
    if status not in JobStatus.values:
        status = ""
    page = page_number(request.GET.get("page"), max_page=1000)
    jobs, has_older = selectors.queue_jobs(user=request.user, warehouse=warehouse, status=status, page=page,
                                           per_page=PAGE)
    counts = selectors.queue_counts(user=request.user, warehouse=warehouse, statuses=COUNTED)
    tabs = [("", _("All"), None)] + [
        (str(value), str(label), counts.get(value, 0) if value in COUNTED else None)
        for value, label in JobStatus.choices
    ]
    return {
        "warehouse": warehouse,
        "warehouses": list(warehouses_for_user(user=request.user)),
        "status": status,
        "tabs": tabs,
        "jobs": jobs,
        "page": page,
        "has_older": has_older,
        "older_url": _queue_url(warehouse.code, status=status, page=page + 1),
        "newer_url": _queue_url(warehouse.code, status=status, page=page - 1 if page > 2 else None),
        "self_url": _queue_url(warehouse.code, status=status, page=page if page > 1 else None),
        "jobs_url": reverse("printing:queue-jobs", args=[warehouse.code])
        + (f"?{request.GET.urlencode()}" if request.GET else ""),
        "offline_printers": offline_printers(warehouse=warehouse),
        "can_print": request.user.has_perm(PRINT),
    }


@login_required
@permission_required(VIEW_JOBS, raise_exception=True)
@require_GET
def queue_home(request: HttpRequest) -> HttpResponse:
    warehouse = _first_warehouse(request)
    if warehouse is None:
        return render(request, "printing/queue.html", {"warehouse": None, "warehouses": []})
    return redirect("printing:queue", code=warehouse.code)


@login_required
@permission_required(VIEW_JOBS, raise_exception=True)
@require_GET
def queue_page(request: HttpRequest, code: str) -> HttpResponse:
    warehouse = _warehouse(request, code)
    return render(request, "printing/queue.html", _queue_context(request, warehouse))


@login_required
@permission_required(VIEW_JOBS, raise_exception=True)
@require_GET
def queue_jobs_partial(request: HttpRequest, code: str) -> HttpResponse:
    """The refreshing part of the queue page: the off-line alert, the state tabs and the job list."""
    warehouse = _warehouse(request, code)
    return render(request, "printing/_queue_jobs.html", _queue_context(request, warehouse))


@login_required
@require_GET
def offline_banner(request: HttpRequest, code: str) -> HttpResponse:
    """The printer-off-line alert alone (the kanban polls it)."""
    if not (request.user.has_perm(VIEW_PRINTERS) or request.user.has_perm("fulfillment.view_shipment")):
        raise PermissionDenied
    warehouse = _warehouse(request, code)
    return render(
        request,
        "printing/_offline_banner.html",
        {"warehouse": warehouse, "offline_printers": offline_printers(warehouse=warehouse)},
    )


def _job_or_404(request: HttpRequest, pk: int, *, payload: bool = False) -> PrintJob:
    jobs = _jobs(request).select_related(
        "printer", "printer__warehouse", "shipment", "wave", "requested_by"
    )
    if not payload:
        jobs = jobs.defer("payload")
    return get_object_or_404(jobs, pk=pk)


def _job_done_url(request: HttpRequest, job: PrintJob) -> str:
    return safe_next(request) or _queue_url(job.printer.warehouse.code)


@login_required
@require_POST
@permission_required(PRINT, raise_exception=True)
def job_retry(request: HttpRequest, pk: int) -> HttpResponse:
    job = _job_or_404(request, pk)
    if _attempt(request, lambda: print_flows.job_retry(job_id=job.pk, actor=request.user)) is not None:
        messages.success(request, _("Print job #%(id)s is queued again.") % {"id": job.pk})
    return redirect(_job_done_url(request, job))


@login_required
@require_POST
@permission_required(PRINT, raise_exception=True)
def job_reprint(request: HttpRequest, pk: int) -> HttpResponse:
    job = _job_or_404(request, pk)
    form = ReprintForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Refused: %(why)s") % {"why": _("Say why the label is printed again.")})
        return redirect(_job_done_url(request, job))
    copy = _attempt(
        request,
        lambda: print_flows.job_reprint(job_id=job.pk, reason=form.cleaned_data["reason"], actor=request.user),
    )
    if copy is not None:
        messages.success(
            request, _("Reprint queued as job #%(new)s (copy of #%(id)s).") % {"new": copy.pk, "id": job.pk}
        )
    return redirect(_job_done_url(request, job))


@login_required
@require_POST
@permission_required(PRINT, raise_exception=True)
def job_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    job = _job_or_404(request, pk)
    if _attempt(request, lambda: services.job_cancel(job_id=job.pk, actor=request.user)) is not None:
        messages.success(request, _("Print job #%(id)s cancelled: it will not print.") % {"id": job.pk})
    return redirect(_job_done_url(request, job))


# --- Previews -------------------------------------------------------------------------------------


@login_required
@permission_required(VIEW_JOBS, raise_exception=True)
@require_GET
def job_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """A job with its own bytes decoded: the picture and the text that the printer received."""
    job = _job_or_404(request, pk, payload=True)
    decoded = escpos_decode.decode(bytes(job.payload))
    return render(
        request,
        "printing/job_detail.html",
        {
            "job": job,
            "text": decoded.text,
            "size": len(job.payload),
            "reprints": selectors.job_reprints(job=job),
            "can_print": request.user.has_perm(PRINT),
            "queue_url": _queue_url(job.printer.warehouse.code),
        },
    )


@login_required
@permission_required(VIEW_JOBS, raise_exception=True)
@require_GET
def job_preview(request: HttpRequest, pk: int) -> HttpResponse:
    """The job's own bytes drawn as the printer would: what printed is what is shown."""
    job = get_object_or_404(
        _jobs(request).select_related("printer").only("payload", "printer__paper_width"), pk=pk
    )
    # The bytes of a job never change: the browser may keep the picture.
    return _png(bytes(job.payload), job.printer.paper_width, cache="private, max-age=86400")


@login_required
@permission_required(VIEW_JOBS, raise_exception=True)
@require_GET
def shipment_preview(request: HttpRequest, pk: int) -> HttpResponse:
    """A parcel's label before it is printed (no job is created), on the warehouse's first printer's paper."""
    shipment = get_object_or_404(_shipments(request).select_related("carrier", "warehouse"), pk=pk)
    if not shipment.tracking_number:
        return _plain(
            _("Parcel %(number)s has no tracking number yet: a label needs one.")
            % {"number": shipment.number},
            409,
        )
    printer = selectors.printer_first_active(warehouse_id=shipment.warehouse_id)
    width = printer.paper_width if printer else PaperWidth.MM80
    try:
        payload = renderers.render_label(labels.label_data(shipment), paper_width=width)
    except DomainError as exc:
        return _plain(exc.message, exc.http_status)
    return _png(payload, width, cache="private, no-cache")


# --- Print buttons --------------------------------------------------------------------------------


def _report_job(request: HttpRequest, result, number: str, *, queued: str, already: str) -> None:
    """Say what a print button did: a new job queued, or the existing one (dedup) and how to reprint."""
    if result is None:  # refused: _attempt already said why
        return
    job = result.job
    if result.created:
        messages.success(request, queued % {"number": number, "printer": job.printer.name, "id": job.pk})
    else:
        messages.info(request, already % {"number": number, "status": job.get_status_display(), "id": job.pk})


@login_required
@require_POST
@permission_required(PRINT, raise_exception=True)
def shipment_label(request: HttpRequest, pk: int) -> HttpResponse:
    shipment = get_object_or_404(_shipments(request).only("pk", "number"), pk=pk)
    result = _attempt(request, lambda: print_flows.label_print(shipment_id=shipment.pk, actor=request.user))
    _report_job(
        request,
        result,
        shipment.number,
        queued=_("Label of parcel %(number)s queued on %(printer)s (job #%(id)s)."),
        already=_(
            "The label of parcel %(number)s is already %(status)s (job #%(id)s); to print it again, "
            "use Reprint on the print queue."
        ),
    )
    return _back(request, reverse("fulfillment:shipment", args=[shipment.pk]))


@login_required
@require_POST
@permission_required(PRINT, raise_exception=True)
def wave_pick_list(request: HttpRequest, pk: int) -> HttpResponse:
    wave = get_object_or_404(_waves(request).only("pk", "number"), pk=pk)
    result = _attempt(request, lambda: print_flows.pick_list_print(wave_id=wave.pk, actor=request.user))
    _report_job(
        request,
        result,
        wave.number,
        queued=_("Pick list of wave %(number)s queued on %(printer)s (job #%(id)s)."),
        already=_(
            "The pick list of wave %(number)s is already %(status)s (job #%(id)s); to print it again, "
            "use Reprint on the print queue."
        ),
    )
    return _back(request, reverse("fulfillment:wave", args=[wave.pk]))


@login_required
@require_POST
@permission_required(PRINT, raise_exception=True)
def wave_labels(request: HttpRequest, pk: int) -> HttpResponse:
    wave = get_object_or_404(_waves(request).only("pk", "number"), pk=pk)
    ids = selectors.wave_shipment_ids_for_user(wave=wave, user=request.user)
    if not ids:
        messages.error(request, _("Refused: %(why)s") % {"why": _("The wave has no parcel to label.")})
    else:
        result = print_flows.labels_print_batch(shipment_ids=ids, actor=request.user)
        _say_batch(request, result, len(ids))
    return _back(request, reverse("fulfillment:wave", args=[wave.pk]))


@login_required
@require_POST
@permission_required(PRINT, raise_exception=True)
def print_batch(request: HttpRequest) -> HttpResponse:
    """The labels of the parcels ticked on the kanban (``shipments``), in carrier order."""
    ids = _ids(request.POST.getlist("shipments"))
    default = reverse("fulfillment:kanban-home")
    if not ids:
        messages.error(request, _("Refused: %(why)s") % {"why": _("Tick the parcels whose labels to print.")})
        return _back(request, default)
    if len(ids) > MAX_BATCH:
        messages.error(
            request,
            _("Refused: %(why)s")
            % {"why": _("At most %(max)s labels in one batch: print a wave instead.") % {"max": MAX_BATCH}},
        )
        return _back(request, default)
    # Parcels outside the user's warehouses or stores are left out and counted as "do not exist".
    allowed = set(_shipments(request).filter(pk__in=ids).values_list("pk", flat=True))
    result = print_flows.labels_print_batch(shipment_ids=[pk for pk in ids if pk in allowed], actor=request.user)
    _say_batch(request, result, len(ids))
    return _back(request, default)


@login_required
@require_POST
@permission_required(PRINT, raise_exception=True)
def printer_test(request: HttpRequest, pk: int) -> HttpResponse:
    printer = get_object_or_404(_printers(request), pk=pk)
    result = _attempt(request, lambda: print_flows.test_page_print(printer_id=printer.pk, actor=request.user))
    if result is not None:
        messages.success(
            request,
            _("Test page queued on %(printer)s (job #%(id)s).")
            % {"printer": printer.name, "id": result.job.pk},
        )
    return _back(request, reverse("printing:printers"))


# --- Printers and bridges -------------------------------------------------------------------------


def _printers_context(request: HttpRequest, *, bridge_form: BridgeForm | None = None) -> dict:
    return {
        "printers": list(
            _printers(request).select_related("warehouse").order_by("warehouse__code", "name", "pk")
        ),
        "bridges": list(
            selectors.bridges_for_user(user=request.user)
            .select_related("warehouse")
            .order_by("warehouse__code", "name", "pk")
        ),
        "bridge_form": bridge_form or BridgeForm(user=request.user),
        "can": {
            "add_printer": request.user.has_perm(ADD_PRINTER),
            "change_printer": request.user.has_perm(CHANGE_PRINTER),
            "add_bridge": request.user.has_perm(ADD_BRIDGE),
            "change_bridge": request.user.has_perm(CHANGE_BRIDGE),
            "print": request.user.has_perm(PRINT),
        },
    }


@login_required
@permission_required(VIEW_PRINTERS, raise_exception=True)
@require_GET
def printer_list(request: HttpRequest) -> HttpResponse:
    return render(request, "printing/printers.html", _printers_context(request))


@login_required
def printer_edit(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    # Printers are configuration that managers edit like the admin does (a ModelForm), as carriers are.
    if not request.user.has_perm(CHANGE_PRINTER if pk else ADD_PRINTER):
        raise PermissionDenied
    printer = get_object_or_404(_printers(request), pk=pk) if pk else None
    form = PrinterForm(request.POST or None, instance=printer, user=request.user)
    if request.method == "POST" and form.is_valid():
        saved = form.save()
        messages.success(request, _("Printer %(name)s saved.") % {"name": saved.name})
        return redirect("printing:printers")
    status = 400 if request.method == "POST" else 200
    return render(request, "printing/printer_form.html", {"form": form, "printer": printer}, status=status)


@login_required
@require_POST
@permission_required(ADD_BRIDGE, raise_exception=True)
def bridge_create(request: HttpRequest) -> HttpResponse:
    """Register a bridge and show its token this once, with the command that starts the agent."""
    form = BridgeForm(request.POST, user=request.user)
    if not form.is_valid():
        return render(
            request, "printing/printers.html", _printers_context(request, bridge_form=form), status=400
        )
    bridge, token = services.bridge_create(
        name=form.cleaned_data["name"], warehouse_id=form.cleaned_data["warehouse"].pk
    )
    server = request.build_absolute_uri("/").rstrip("/")
    response = render(
        request,
        "printing/bridge_created.html",
        {
            "bridge": bridge,
            "token": token,
            "server": server,
            "command": f"python -m printing.bridge --server {server} --token {token} --workers 2",
        },
    )
    # The token is in this page only: no cache may keep it.
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_POST
@permission_required(CHANGE_BRIDGE, raise_exception=True)
def bridge_deactivate(request: HttpRequest, pk: int) -> HttpResponse:
    bridge = get_object_or_404(selectors.bridges_for_user(user=request.user), pk=pk)
    services.bridge_deactivate(bridge_id=bridge.pk)
    messages.success(
        request, _("Print bridge %(name)s deactivated: its token no longer works.") % {"name": bridge.name}
    )
    return redirect("printing:printers")


urlpatterns: list = [
    path("", queue_home, name="queue-home"),
    path("queue/<slug:code>/", queue_page, name="queue"),
    path("queue/<slug:code>/jobs/", queue_jobs_partial, name="queue-jobs"),
    path("offline/<slug:code>/", offline_banner, name="offline-banner"),
    path("jobs/<int:pk>/", job_detail, name="job"),
    path("jobs/<int:pk>/preview.png", job_preview, name="job-preview"),
    path("jobs/<int:pk>/retry/", job_retry, name="job-retry"),
    path("jobs/<int:pk>/reprint/", job_reprint, name="job-reprint"),
    path("jobs/<int:pk>/cancel/", job_cancel, name="job-cancel"),
    path("shipments/<int:pk>/preview.png", shipment_preview, name="shipment-preview"),
    path("shipments/<int:pk>/label/", shipment_label, name="shipment-label"),
    path("waves/<int:pk>/pick-list/", wave_pick_list, name="wave-pick-list"),
    path("waves/<int:pk>/labels/", wave_labels, name="wave-labels"),
    path("batch/", print_batch, name="batch"),
    path("printers/", printer_list, name="printers"),
    path("printers/new/", printer_edit, name="printer-create"),
    path("printers/<int:pk>/", printer_edit, name="printer-edit"),
    path("printers/<int:pk>/test/", printer_test, name="printer-test"),
    path("bridges/new/", bridge_create, name="bridge-create"),
    path("bridges/<int:pk>/deactivate/", bridge_deactivate, name="bridge-deactivate"),
]
