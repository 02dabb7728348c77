"""Reconciliation pages of the finance role: settlement imports with their progress, and the difference list."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from finance.forms import DifferenceFilterForm, DifferenceResolveForm, RecheckForm, SettlementUploadForm
from finance.imports import settlement_file_import, settlement_file_upload
from finance.matching import period_match
from finance.models import (
    Difference,
    DifferenceReason,
    SettlementFile,
    SettlementFileStatus,
)
from finance.selectors import differences_listed, settlement_files_listed
from finance.services import difference_resolve
from oms.effects import task_after_commit
from oms.exceptions import DomainError
from oms.inputs import query_without_page
from oms.paging import paginate

PAGE_SIZE = 50
# A file this small reads in well under a second: it is imported in the request, so a closed period or a
# duplicate is said on the form at once. Larger files go to the Celery task and the page shows their progress.
INLINE_IMPORT_MAX_BYTES = 256 * 1024
# The error report shows this many rows; a file with more errors says how many were left out.
REPORT_ROWS = 500
RUNNING = (SettlementFileStatus.PENDING, SettlementFileStatus.IMPORTING)
# The distinct periods of the listed differences offered for a re-check.
RECHECK_PERIODS = 20


def _files():
    return settlement_files_listed()


@login_required
@permission_required("finance.view_settlementfile", raise_exception=True)
def settlement_imports(request: HttpRequest) -> HttpResponse:
    """The uploaded files, newest first, and the upload form (for those who may import)."""
    can_upload = request.user.has_perm("finance.add_settlementfile")
    if request.method == "POST":
        if not can_upload:
            raise PermissionDenied
        form = SettlementUploadForm(request.POST, request.FILES)
        if form.is_valid():
            settlement_file = _upload(request, form)
            if settlement_file is not None:
                return redirect("finance:import-detail", pk=settlement_file.pk)
        status = 400
    else:
        form = SettlementUploadForm()
        status = 200
    return render(request, "finance/imports.html", {
        "form": form if can_upload else None, "page": paginate(request, _files(), PAGE_SIZE),
        "query": query_without_page(request)}, status=status)


def _upload(request: HttpRequest, form: SettlementUploadForm) -> SettlementFile | None:
    """Keep the file and import it (here when small, else in the task); a refusal becomes a form error."""
    data = form.cleaned_data
    upload = data["file"]
    content = upload.read()
    arguments = {"source": data["source"], "data": content, "file_name": upload.name, "user": request.user,
                 "store": data["store"]}
    try:
        if len(content) <= INLINE_IMPORT_MAX_BYTES:
            settlement_file = settlement_file_import(**arguments, mapping=data["bank_mapping"])
        else:
            with transaction.atomic():
                settlement_file = settlement_file_upload(**arguments, bank_mapping=data["bank_mapping"])
                task_after_commit("finance.tasks.run_settlement_import_task", file_id=settlement_file.pk)
    except DomainError as exc:
        form.add_error("file", exc.message)
        return None
    if settlement_file.status == SettlementFileStatus.IMPORTED:
        messages.success(request, _("Imported %(count)d rows from %(name)s.")
                         % {"count": settlement_file.row_count, "name": settlement_file.file_name})
    elif settlement_file.status == SettlementFileStatus.FAILED:
        messages.error(request, _("%(name)s was not imported: %(why)s.")
                       % {"name": settlement_file.file_name, "why": settlement_file.get_failure_display()})
    else:
        messages.success(request, _("%(name)s is being imported; this page shows its progress.")
                         % {"name": settlement_file.file_name})
    return settlement_file


@login_required
@permission_required("finance.view_settlementfile", raise_exception=True)
def settlement_file_detail(request: HttpRequest, pk: int) -> HttpResponse:
    settlement_file = get_object_or_404(_files(), pk=pk)
    report = settlement_file.error_report or []
    return render(request, "finance/import_detail.html", {
        "file": settlement_file, "report": report[:REPORT_ROWS], "hidden": max(len(report) - REPORT_ROWS, 0)})


@login_required
@permission_required("finance.view_settlementfile", raise_exception=True)
def settlement_file_progress(request: HttpRequest, pk: int) -> HttpResponse:
    """The progress partial the page polls every second while the file imports."""
    settlement_file = get_object_or_404(SettlementFile.objects.only(
        "status", "progress_done", "progress_total", "row_count", "failure"), pk=pk)
    response = render(request, "finance/partials/import_progress.html", {"file": settlement_file})
    if request.htmx and settlement_file.status not in RUNNING:
        # Done: the whole page reloads once, to show the counts and the error report (its partial stops polling).
        response["HX-Refresh"] = "true"
    return response


def _differences():
    return differences_listed()


@login_required
@permission_required("finance.view_difference", raise_exception=True)
def difference_list(request: HttpRequest) -> HttpResponse:
    return _difference_page(request)


def _difference_page(request: HttpRequest, *, summary=None, recheck_form=None, status: int = 200) -> HttpResponse:
    filter_form = DifferenceFilterForm(request.GET or None)
    queryset = _differences()
    if filter_form.is_bound and filter_form.is_valid():
        queryset = filter_form.filter(queryset)
    page = paginate(request, queryset, PAGE_SIZE)
    periods = (queryset.order_by().values("month", "source", "store_id", "store__name")
               .distinct().order_by("-month", "source", "store__name")[:RECHECK_PERIODS])
    source_labels = dict(Difference._meta.get_field("source").choices)
    context = {
        "filter": filter_form, "page": page, "query": query_without_page(request),
        "can_change": request.user.has_perm("finance.change_difference"),
        "resolve_form": DifferenceResolveForm(), "recheck_form": recheck_form or RecheckForm(),
        "periods": [{**period, "source_label": source_labels.get(period["source"], period["source"])}
                    for period in periods if period["store_id"] is not None],
        "summary": summary,
    }
    # The filters refresh the table alone (htmx); without JavaScript the form reloads the whole page.
    template = ("finance/partials/difference_table.html" if request.htmx and summary is None
                and recheck_form is None else "finance/differences.html")
    return render(request, template, context, status=status)


@login_required
@permission_required("finance.change_difference", raise_exception=True)
@require_POST
def difference_resolve_view(request: HttpRequest, pk: int) -> HttpResponse:
    difference = get_object_or_404(Difference.objects.only("pk"), pk=pk)
    form = DifferenceResolveForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Write a note saying why the difference is resolved (at most %(limit)d characters).")
                       % {"limit": form.fields["note"].max_length})
    else:
        try:
            difference_resolve(difference_id=difference.pk, user=request.user, note=form.cleaned_data["note"])
        except DomainError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, _("Difference %(id)d resolved.") % {"id": difference.pk})
    return redirect(_back_to_list(request))


def _back_to_list(request: HttpRequest) -> str:
    # The filters the list was showing travel in the form's action, so the user lands where they were.
    query = request.GET.urlencode()
    return f"{_list_url()}?{query}" if query else _list_url()


def _list_url() -> str:
    return reverse("finance:differences")


@login_required
@permission_required("finance.change_difference", raise_exception=True)
@require_POST
def difference_recheck(request: HttpRequest) -> HttpResponse:
    """Match one store's source for one month again and show what it found, above the list."""
    form = RecheckForm(request.POST)
    if not form.is_valid():
        return _difference_page(request, recheck_form=form, status=400)
    data = form.cleaned_data
    # Fees are checked against the store's fee rate (Store.fee_rate), else what the platform reported per order.
    try:
        summary = period_match(store_id=data["store"].pk, source=data["source"], month=data["month"])
    except DomainError as exc:
        messages.error(request, exc.message)
        return _difference_page(request, recheck_form=form, status=409)
    reasons = dict(DifferenceReason.choices)
    summary_view = {
        "store": data["store"], "source_label": dict(form.fields["source"].choices)[data["source"]],
        "month": summary.month, "rows": summary.rows, "matched": summary.matched,
        "matched_amount": summary.matched_amount, "differences": summary.differences,
        "by_reason": [(reasons.get(reason, reason), count) for reason, count in summary.differences_by_reason.items()],
    }
    return _difference_page(request, summary=summary_view, recheck_form=form)


urlpatterns = [
    path("imports/", settlement_imports, name="imports"),
    path("imports/<int:pk>/", settlement_file_detail, name="import-detail"),
    path("imports/<int:pk>/progress/", settlement_file_progress, name="import-progress"),
    path("differences/", difference_list, name="differences"),
    path("differences/<int:pk>/resolve/", difference_resolve_view, name="difference-resolve"),
    path("differences/recheck/", difference_recheck, name="difference-recheck"),
]
