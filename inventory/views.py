"""Stock pages: levels and low stock, a SKU's stock and ledger, receipt / stock take / adjustment forms, Excel."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from inventory.excel import CountSheetUnreadable, stock_levels_xlsx
from inventory.filters import StockLevelFilter
from inventory.forms import StockAdjustForm, StockReceiveForm, StockTakeForm, StockTakeImportForm
from inventory.models import SKU, StockLevel
from inventory.selectors import (
    sku_movements,
    sku_stock_levels,
    stock_level_low,
    stock_level_low_count,
    stock_level_queryset,
)
from oms.exceptions import DomainError
from oms.inputs import query_without_page
from oms.paging import paginate
from pipeline import stock as pipeline_stock

PAGE_SIZE = 50
# A refused import lists at most this many bad rows; its summary still counts every row.
REPORT_ROWS = 1000
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

VIEW_STOCK = "inventory.view_stocklevel"
MOVE_STOCK = "inventory.add_stockmovement"


def _filtered_levels(request: HttpRequest) -> tuple[StockLevelFilter, QuerySet[StockLevel]]:
    """The stock levels the request's filters select; an invalid filter shows its error over all rows."""
    level_filter = StockLevelFilter(request.GET or None, queryset=stock_level_queryset())
    valid = level_filter.is_bound and level_filter.is_valid()
    return level_filter, level_filter.qs if valid else stock_level_queryset()


@login_required
@permission_required(VIEW_STOCK, raise_exception=True)
def stock_list(request: HttpRequest) -> HttpResponse:
    level_filter, levels = _filtered_levels(request)
    return render(request, "inventory/stock_list.html", {
        "filter": level_filter,
        "page": paginate(request, levels, PAGE_SIZE),
        "query": query_without_page(request),
        "low_count": stock_level_low_count(),
    })


@login_required
@permission_required(VIEW_STOCK, raise_exception=True)
def stock_low(request: HttpRequest) -> HttpResponse:
    page = paginate(request, stock_level_low(stock_level_queryset()).order_by("free", "warehouse__code", "sku__code",
                                                                              "pk"), PAGE_SIZE)
    return render(request, "inventory/stock_low.html", {"page": page, "query": ""})


@login_required
@permission_required(VIEW_STOCK, raise_exception=True)
def sku_detail(request: HttpRequest, sku_id: int) -> HttpResponse:
    sku = get_object_or_404(SKU, pk=sku_id)
    # The ledger shows who moved what; roles that may only see stock figures get the figures alone.
    ledger = None
    if request.user.has_perm("inventory.view_stockmovement"):
        ledger = paginate(request, sku_movements(sku_id=sku.pk), PAGE_SIZE)
    return render(request, "inventory/sku_detail.html", {
        "sku": sku, "levels": sku_stock_levels(sku_id=sku.pk), "page": ledger, "query": "",
    })


def _movement_page(request: HttpRequest, *, form_class, title, intro: str, perform, done) -> HttpResponse:
    """GET shows the form (prefilled from the query string); POST calls one service.

    A service refusal becomes a form error with its message; success goes to the SKU's page.
    """
    if request.method == "POST":
        form = form_class(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            try:
                level = perform(data)
            except DomainError as exc:
                form.add_domain_error(exc)
            else:
                messages.success(request, done(data, level))
                return redirect("inventory:sku", sku_id=data["sku"].pk)
    else:
        form = form_class(initial={key: request.GET[key] for key in ("warehouse", "sku") if request.GET.get(key)})
    return render(request, "inventory/movement_form.html", {"form": form, "title": title, "intro": intro})


@login_required
@permission_required(MOVE_STOCK, raise_exception=True)
def stock_receive(request: HttpRequest) -> HttpResponse:
    return _movement_page(
        request, form_class=StockReceiveForm, title=gettext_lazy("Receive stock"),
        intro=gettext_lazy("Goods arrived: on hand goes up by the quantity received."),
        perform=lambda data: pipeline_stock.stock_receive(
            warehouse_id=data["warehouse"].pk, sku_id=data["sku"].pk, quantity=data["quantity"],
            reference=data["reference"], note=data["note"], actor=request.user),
        done=lambda data, level: _("Received %(quantity)s × %(sku)s into %(warehouse)s; on hand is now %(on_hand)s.")
        % {"quantity": data["quantity"], "sku": data["sku"].code, "warehouse": data["warehouse"].code,
           "on_hand": level.on_hand})


@login_required
@permission_required(MOVE_STOCK, raise_exception=True)
def stock_take(request: HttpRequest) -> HttpResponse:
    return _movement_page(
        request, form_class=StockTakeForm, title=gettext_lazy("Stock take"),
        intro=gettext_lazy("On hand is set to the counted quantity; the difference is written to the ledger."),
        perform=lambda data: pipeline_stock.stock_take(
            warehouse_id=data["warehouse"].pk, sku_id=data["sku"].pk, counted=data["counted"],
            reference=data["reference"], actor=request.user),
        done=lambda data, level: _("Counted %(counted)s × %(sku)s in %(warehouse)s.")
        % {"counted": level.on_hand, "sku": data["sku"].code, "warehouse": data["warehouse"].code})


@login_required
@permission_required(MOVE_STOCK, raise_exception=True)
def stock_adjust(request: HttpRequest) -> HttpResponse:
    return _movement_page(
        request, form_class=StockAdjustForm, title=gettext_lazy("Adjust stock"),
        intro=gettext_lazy("Correct on hand for damage, loss or goods found; the reason goes into the ledger."),
        perform=lambda data: pipeline_stock.stock_adjust(
            warehouse_id=data["warehouse"].pk, sku_id=data["sku"].pk, delta=data["delta"], reason=data["reason"],
            actor=request.user),
        done=lambda data, level: _("Adjusted %(sku)s in %(warehouse)s by %(delta)+d; on hand is now %(on_hand)s.")
        % {"delta": data["delta"], "sku": data["sku"].code, "warehouse": data["warehouse"].code,
           "on_hand": level.on_hand})


@login_required
@permission_required(VIEW_STOCK, raise_exception=True)
def stock_export(request: HttpRequest) -> HttpResponse:
    """The stock levels the list's filters select, as .xlsx (all rows, not one page)."""
    _filter, levels = _filtered_levels(request)
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    response = HttpResponse(stock_levels_xlsx(levels.iterator(chunk_size=2000)), content_type=XLSX)
    response["Content-Disposition"] = f'attachment; filename="stock-levels-{stamp}.xlsx"'
    return response


@login_required
@permission_required(MOVE_STOCK, raise_exception=True)
def stock_import(request: HttpRequest) -> HttpResponse:
    """Upload a count sheet: every row is checked first; only a sheet without errors is applied, in full."""
    report = None
    if request.method == "POST":
        form = StockTakeImportForm(request.POST, request.FILES)
        if form.is_valid():
            upload = form.cleaned_data["file"]
            reference = form.cleaned_data["reference"] or f"import:{upload.name}"[:100]
            try:
                report = pipeline_stock.count_sheet_import(file=upload, reference=reference, actor=request.user)
            except CountSheetUnreadable as exc:
                form.add_error("file", exc.message)
            else:
                if report.applied:
                    # Redirect after applying, so reloading the page cannot count the sheet twice.
                    messages.success(request, _("Applied %(count)s counted rows.") % {"count": report.applied})
                    return redirect("inventory:import")
    else:
        form = StockTakeImportForm()
    invalid = report.invalid if report is not None else []
    return render(request, "inventory/stock_import.html", {
        "form": form, "report": report, "invalid": invalid[:REPORT_ROWS], "invalid_count": len(invalid),
        "hidden": max(len(invalid) - REPORT_ROWS, 0),
    })
