"""Month-end pages: the period report with close and reopen, and the downloads (report, journal, profit)."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from finance.closing import period_close, period_reopen, period_report, period_report_xlsx
from finance.forms import MonthField
from finance.journal import journal_csv_plain, journal_csv_quickbooks
from finance.matching import payouts_match
from finance.profit import orders_paid_in_month, orders_profit_csv
from finance.selectors import finance_period_of
from oms.exceptions import DomainError
from orders.models import Store

REOPEN_REASON_MAX_LENGTH = 500
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


class PeriodForm(forms.Form):
    """Which month, of which store (empty: all stores)."""

    month = MonthField(label=gettext_lazy("Month"))
    store = forms.ModelChoiceField(Store.objects.order_by("name"), required=False, label=gettext_lazy("Store"),
                                   empty_label=gettext_lazy("All stores"))


class CloseForm(PeriodForm):
    force = forms.BooleanField(required=False, label=gettext_lazy("Close with open differences"))


class ReopenForm(PeriodForm):
    reason = forms.CharField(label=gettext_lazy("Why reopen"), max_length=REOPEN_REASON_MAX_LENGTH)


def _period_form(request: HttpRequest) -> PeriodForm:
    data = request.GET.copy()
    data.setdefault("month", timezone.localdate().strftime("%Y-%m"))
    return PeriodForm(data)


def _page_url(month, store) -> str:
    query = {"month": month.strftime("%Y-%m")}
    if store is not None:
        query["store"] = store.pk
    return f"{reverse('finance:close')}?{urlencode(query)}"


@login_required
@permission_required("finance.view_financeperiod", raise_exception=True)
def close_page(request: HttpRequest) -> HttpResponse:
    form = _period_form(request)
    context = {"form": form, "report": None, "period": None,
               "can_change": request.user.has_perm("finance.change_financeperiod")}
    if form.is_valid():
        month, store = form.cleaned_data["month"], form.cleaned_data["store"]
        context["report"] = report = period_report(store, month)
        # QuickBooks takes one currency a journal: a link each.
        context["currencies"] = sorted({line.currency for line in report.lines})
        context["period"] = finance_period_of(month=month, store=store)
        context["query"] = urlencode({"month": month.strftime("%Y-%m"), "store": store.pk if store else ""})
        context["close_form"] = CloseForm(initial={"month": month, "store": store})
        context["reopen_form"] = ReopenForm(initial={"month": month, "store": store})
    return render(request, "finance/close.html", context, status=200 if form.is_valid() else 400)


@login_required
@permission_required("finance.view_financeperiod", raise_exception=True)
def report_download(request: HttpRequest) -> HttpResponse:
    form = _period_form(request)
    if not form.is_valid():
        return render(request, "finance/close.html", {"form": form}, status=400)
    month, store = form.cleaned_data["month"], form.cleaned_data["store"]
    response = HttpResponse(period_report_xlsx(store, month), content_type=XLSX)
    response["Content-Disposition"] = f'attachment; filename="period-{month:%Y-%m}-{store.code if store else "all"}.xlsx"'
    return response


@login_required
@permission_required("finance.view_financeperiod", raise_exception=True)
def journal_download(request: HttpRequest, layout: str) -> HttpResponse:
    """The month's journal for the accounting system: QuickBooks Online's import, or plain double entry."""
    if layout not in ("quickbooks", "plain"):
        return HttpResponse(status=404)
    form = _period_form(request)
    if not form.is_valid():
        return render(request, "finance/close.html", {"form": form}, status=400)
    month, store = form.cleaned_data["month"], form.cleaned_data["store"]
    currency = (request.GET.get("currency") or "").strip().upper()[:3] or None
    try:
        body = (journal_csv_quickbooks if layout == "quickbooks" else journal_csv_plain)(month, store,
                                                                                         currency=currency)
    except DomainError as exc:
        messages.error(request, exc.message)
        return redirect(_page_url(month, store))
    response = HttpResponse(body, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = (f'attachment; filename="journal-{layout}-{month:%Y-%m}-'
                                       f'{store.code if store else "all"}.csv"')
    return response


@login_required
@permission_required("finance.change_financeperiod", raise_exception=True)
@require_POST
def close_period(request: HttpRequest) -> HttpResponse:
    form = CloseForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose a month to close."))
        return redirect("finance:close")
    month, store = form.cleaned_data["month"], form.cleaned_data["store"]
    try:
        period_close(store, month, request.user, force=form.cleaned_data["force"])
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("%(month)s is closed: new imports for it are refused until it is reopened.")
                         % {"month": f"{month:%Y-%m}"})
    return redirect(_page_url(month, store))


@login_required
@permission_required("finance.change_financeperiod", raise_exception=True)
@require_POST
def reopen_period(request: HttpRequest) -> HttpResponse:
    form = ReopenForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Say why the month is reopened (at most %(limit)d characters).")
                       % {"limit": REOPEN_REASON_MAX_LENGTH})
        month = form.cleaned_data.get("month")
        return redirect(_page_url(month, form.cleaned_data.get("store")) if month else reverse("finance:close"))
    month, store = form.cleaned_data["month"], form.cleaned_data["store"]
    try:
        period_reopen(store, month, request.user, form.cleaned_data["reason"])
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("%(month)s is open again.") % {"month": f"{month:%Y-%m}"})
    return redirect(_page_url(month, store))


@login_required
@permission_required("finance.change_difference", raise_exception=True)
@require_POST
def payouts_recheck(request: HttpRequest) -> HttpResponse:
    """Match the month's platform payouts against the bank statements' lines; what is unpaired is a difference."""
    form = PeriodForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose a month."))
        return redirect("finance:close")
    month, store = form.cleaned_data["month"], form.cleaned_data["store"]
    try:
        summary = payouts_match(month=month)
    except DomainError as exc:
        messages.error(request, exc.message)
        return redirect(_page_url(month, store))
    unpaired = sum(summary.differences_by_reason.values())
    messages.success(request, _("%(matched)s of %(payouts)s payouts found on the bank statements; %(unpaired)s "
                                "unpaired payouts or bank lines are listed as differences.")
                     % {"matched": summary.matched, "payouts": summary.payouts, "unpaired": unpaired})
    return redirect(_page_url(month, store))


@login_required
@permission_required("finance.view_paymentsnapshot", raise_exception=True)
def profit_download(request: HttpRequest) -> HttpResponse:
    """Per-order profit of the orders paid in the month (of one store, or all), one line each, as CSV."""
    form = _period_form(request)
    if not form.is_valid():
        return render(request, "finance/close.html", {"form": form}, status=400)
    month, store = form.cleaned_data["month"], form.cleaned_data["store"]
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response.write("\ufeff")  # Excel opens a UTF-8 CSV with Chinese names right only after a BOM
    orders_profit_csv(orders_paid_in_month(month=month, store=store), response)
    response["Content-Disposition"] = f'attachment; filename="profit-{month:%Y-%m}-{store.code if store else "all"}.csv"'
    return response
