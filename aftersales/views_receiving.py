"""Warehouse pages of after-sales: the expected returns and the receiving (scan and grade) station.

The station works like the packing station: one scan input (the return's RMA or tracking number, then each
item); a scanned item waits for a grade button (完好 / 轻微磨损 / 不可二次销售). With htmx the station
(``#station``) is swapped in place, a refusal answering 400/404/409 with its red banner; without JavaScript
every POST redirects back to ``receiving/<pk>/`` and the outcome travels in the session.
"""

from __future__ import annotations

from django import forms
from django.contrib.auth.decorators import login_required, permission_required
from django.db.models import Prefetch, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST
from django_htmx.http import push_url

from aftersales import returns
from aftersales.models import Grade, Ticket, TicketLine, TicketStatus
from inventory.selectors import warehouses_for_user
from oms.exceptions import DomainError
from oms.paging import paginate
from oms.pii import can_view_pii, mask_name
from pipeline import returns as return_flows

RECEIVE = "aftersales.receive_return"
# Where the no-JS flow keeps the last outcome between the POST and the page it redirects to.
FEEDBACK_KEY = "receiving_feedback"
# The receiving site the user last chose (a warehouse id).
SITE_KEY = "receiving_warehouse"
OK, BAD, INFO = "ok", "bad", "info"
GRADE_BUTTONS = [Grade.RESALABLE, Grade.MINOR_WEAR, Grade.NOT_RESALABLE]


class ReturnScanForm(forms.Form):
    code = forms.CharField(label=gettext_lazy("Scan"), max_length=64, strip=True,
                           error_messages={"required": gettext_lazy("Scan a barcode first."),
                                           "max_length": gettext_lazy("At most 64 characters.")})


class GradeForm(forms.Form):
    scan = forms.CharField(max_length=64, strip=True)
    line = forms.IntegerField(min_value=1, max_value=2**31 - 1)
    unit = forms.IntegerField(min_value=1, max_value=1_000_000)
    grade = forms.ChoiceField(choices=Grade.choices)
    warehouse = forms.IntegerField(min_value=1, max_value=2**31 - 1)


def _feedback(level: str, message: str, *, pending: dict | None = None, sku: str = "") -> dict:
    return {"level": level, "message": str(message), "pending": pending, "sku": sku}


def _sites(request: HttpRequest) -> list:
    """The sellable warehouses this user receives returns at (never a quarantine warehouse)."""
    return list(warehouses_for_user(user=request.user).filter(is_quarantine=False)
                .select_related("quarantine_warehouse"))


def _site(request: HttpRequest, sites: list):
    """The receiving site: ``?warehouse=`` when it is one of the user's, else the last chosen, else the first."""
    by_id = {str(site.pk): site for site in sites}
    wanted = request.GET.get("warehouse")
    if wanted in by_id:
        request.session[SITE_KEY] = wanted
        return by_id[wanted]
    return by_id.get(str(request.session.get(SITE_KEY, ""))) or (sites[0] if sites else None)


def _opened(ticket: Ticket) -> dict:
    """What the station says when a return's RMA or tracking number is scanned, by the ticket's state."""
    if ticket.status in returns.RECEIVABLE:
        return _feedback(INFO, _("Return %(number)s (order %(order)s): scan each item, then choose its grade.") % {
            "number": ticket.number, "order": ticket.order.number})
    return _feedback(INFO, _("Return %(number)s is %(status)s: nothing is left to grade.") % {
        "number": ticket.number, "status": ticket.get_status_display()})


def _context(request: HttpRequest, ticket: Ticket | None, *, feedback: dict | None, scan_form=None) -> dict:
    sites = _sites(request)
    site = _site(request, sites)
    rows = returns.ticket_return_progress(ticket_id=ticket.pk) if ticket is not None else []
    pending = (feedback or {}).get("pending")
    return {
        "ticket": ticket,
        "rows": rows,
        "graded": sum(row.graded for row in rows),
        "expected": sum(row.quantity for row in rows),
        "complete": bool(rows) and all(row.done for row in rows),
        "receivable": ticket is not None and ticket.status in returns.RECEIVABLE,
        "feedback": feedback,
        "pending": pending,
        "last_sku": (feedback or {}).get("sku", ""),
        "grades": [(grade.value, grade.label) for grade in GRADE_BUTTONS],
        "sites": sites,
        "site": site,
        "quarantine_missing": site is not None and site.quarantine_warehouse_id is None,
        "scan_form": scan_form or ReturnScanForm(),
        "scan_url": reverse("aftersales:receiving-scan-item", args=[ticket.pk]) if ticket
        else reverse("aftersales:receiving-scan"),
    }


def _answer(request: HttpRequest, ticket: Ticket | None, feedback: dict, *, status: int = 200) -> HttpResponse:
    """htmx: the station partial (the URL follows the open return); otherwise redirect to the station page."""
    url = reverse("aftersales:receiving-ticket", args=[ticket.pk]) if ticket else reverse("aftersales:receiving")
    if request.htmx:
        response = render(request, "aftersales/receiving_station.html",
                          _context(request, ticket, feedback=feedback), status=status)
        return push_url(response, url)
    request.session[FEEDBACK_KEY] = feedback
    return redirect(url)


@login_required
@permission_required(RECEIVE, raise_exception=True)
def receiving(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    ticket = get_object_or_404(Ticket.objects.select_related("order"), pk=pk) if pk else None
    feedback = request.session.pop(FEEDBACK_KEY, None)
    if feedback is None and ticket is not None:
        feedback = _opened(ticket)
    return render(request, "aftersales/receiving.html", _context(request, ticket, feedback=feedback))


def _open_return(request: HttpRequest, code: str) -> tuple[Ticket | None, DomainError | None]:
    try:
        return return_flows.return_open(scan=code, actor=request.user), None
    except DomainError as exc:
        return None, exc


@login_required
@require_POST
@permission_required(RECEIVE, raise_exception=True)
def receiving_scan(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    """One scan: an item of the open return waits for its grade; an RMA or tracking number opens that return."""
    ticket = get_object_or_404(Ticket.objects.select_related("order"), pk=pk) if pk else None
    form = ReturnScanForm(request.POST)
    if not form.is_valid():
        message = " ".join(form.errors.get("code", [])) or _("Scan a barcode first.")
        return _answer(request, ticket, _feedback(BAD, message), status=400)
    code = form.cleaned_data["code"]
    if ticket is None:
        opened, refused = _open_return(request, code)
        if refused is not None:
            return _answer(request, None, _feedback(BAD, refused.message), status=refused.http_status)
        return _answer(request, opened, _opened(opened))
    try:
        row = returns.return_item_match(ticket_id=ticket.pk, scan=code)
    except DomainError as item_refused:
        if item_refused.code != "wrong_item":
            return _answer(request, ticket, _feedback(BAD, item_refused.message), status=item_refused.http_status)
        # Not an item of this return: the next parcel's RMA or tracking number opens that return.
        opened, _refused = _open_return(request, code)
        if opened is not None:
            if opened.pk == ticket.pk:
                return _answer(request, ticket, _feedback(INFO, _("This is the open return's own number.")))
            return _answer(request, opened, _opened(opened))
        return _answer(request, ticket, _feedback(BAD, item_refused.message), status=item_refused.http_status)
    if ticket.status not in returns.RECEIVABLE:
        return _answer(request, ticket, _opened(ticket), status=409)
    pending = {"scan": code, "line": row.line.pk, "unit": row.next_unit_no, "sku": row.sku_code,
               "name": row.sku_name}
    message = _("%(sku)s, unit %(unit)s of %(quantity)s: choose its grade.") % {
        "sku": row.sku_code, "unit": row.next_unit_no, "quantity": row.quantity}
    return _answer(request, ticket, _feedback(INFO, message, pending=pending, sku=row.sku_code))


@login_required
@require_POST
@permission_required(RECEIVE, raise_exception=True)
def receiving_grade(request: HttpRequest, pk: int) -> HttpResponse:
    """A grade button: grade the scanned unit and move its stock (pipeline.returns.return_unit_receive)."""
    ticket = get_object_or_404(Ticket.objects.select_related("order"), pk=pk)
    form = GradeForm(request.POST)
    if not form.is_valid():
        return _answer(request, ticket, _feedback(BAD, _("Scan the item again, then choose its grade.")), status=400)
    data = form.cleaned_data
    if data["warehouse"] not in {site.pk for site in _sites(request)}:
        return _answer(request, ticket, _feedback(BAD, _("Choose the warehouse receiving the return.")), status=400)
    try:
        graded = return_flows.return_unit_receive(
            ticket_id=ticket.pk, scan=data["scan"], grade=data["grade"], warehouse_id=data["warehouse"],
            unit_no=data["unit"], ticket_line_id=data["line"], actor=request.user)
    except DomainError as exc:
        return _answer(request, ticket, _feedback(BAD, exc.message), status=exc.http_status)
    message = _("%(sku)s unit %(unit)s: %(grade)s → %(warehouse)s. %(graded)s of %(quantity)s graded.") % {
        "sku": graded.sku_code, "unit": graded.unit.unit_no, "grade": Grade(graded.unit.grade).label,
        "warehouse": graded.destination.name, "graded": graded.graded, "quantity": graded.quantity}
    if graded.complete:
        ticket.refresh_from_db()
        message = _("%(unit)s Every unit is graded: return %(number)s is now %(status)s.") % {
            "unit": message, "number": ticket.number, "status": ticket.get_status_display()}
    return _answer(request, ticket, _feedback(OK, message, sku=graded.sku_code))


@login_required
@permission_required(RECEIVE, raise_exception=True)
def expected_returns(request: HttpRequest) -> HttpResponse:
    """Tickets whose parcel the warehouse is waiting for, oldest first, with what should be in the parcel."""
    query = (request.GET.get("q") or "").strip()[:64]
    tickets = (Ticket.objects.filter(status=TicketStatus.AWAITING_RETURN).select_related("order", "store")
               .prefetch_related(Prefetch("lines", queryset=TicketLine.objects.select_related("order_line")
                                          .order_by("order_line__line_no")))
               .order_by("created_at", "id"))
    if query:
        tickets = tickets.filter(Q(number__iexact=query) | Q(return_tracking_number=query)
                                 | Q(order__number__iexact=query))
    page = paginate(request, tickets, 50)
    pii = can_view_pii(request.user)
    rows = [{"ticket": ticket, "buyer": ticket.order.buyer_name if pii else mask_name(ticket.order.buyer_name),
             "lines": list(ticket.lines.all())} for ticket in page]
    return render(request, "aftersales/expected_returns.html",
                  {"page": page, "rows": rows, "query": query, "now": timezone.now()})


urlpatterns: list = [
    path("receiving/", receiving, name="receiving"),
    path("receiving/scan/", receiving_scan, name="receiving-scan"),
    path("receiving/<int:pk>/", receiving, name="receiving-ticket"),
    path("receiving/<int:pk>/scan/", receiving_scan, name="receiving-scan-item"),
    path("receiving/<int:pk>/grade/", receiving_grade, name="receiving-grade"),
    path("returns/expected/", expected_returns, name="expected-returns"),
]
