"""Customer-service pages of after-sales: the ticket queue, a ticket, opening one from an order."""

from decimal import Decimal

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from aftersales import services
from aftersales.forms import (
    ApproveForm,
    NoteForm,
    ReasonForm,
    TicketFilter,
    TicketNewForm,
    TrackingForm,
)
from aftersales.models import (
    Grade,
    RefundStatus,
    Ticket,
    TicketEventType,
    TicketStatus,
    TicketType,
)
from aftersales.selectors import (
    order_units_shipped,
    ticket_claimed_on_lines,
    ticket_escalated_q,
    ticket_is_overdue,
)
from fulfillment.selectors import customer_tracking_of, shipments_for_order
from oms.exceptions import DomainError, NotFoundError, ValidationFailed
from oms.fsm import transition_label
from oms.inputs import query_without_page
from oms.paging import paginate
from orders.models import Order
from pipeline import tickets as flows

PAGE_SIZE = 50
# Receiving and grading happen at the warehouse's receiving station, unit by unit (stock and grades follow);
# the desk offers every other move the ticket's state allows.
WAREHOUSE_TRANSITIONS = {"receive", "grade"}
DESK_TRANSITIONS = [name for name in flows.TICKET_ACTIONS if name not in WAREHOUSE_TRANSITIONS]


def _queue_queryset():
    return Ticket.objects.select_related("order", "store", "owner").order_by("-created_at", "-id")


@login_required
@permission_required("aftersales.view_ticket", raise_exception=True)
def ticket_queue(request: HttpRequest) -> HttpResponse:
    ticket_filter = TicketFilter(request.GET or None, queryset=_queue_queryset(), request=request)
    queryset = ticket_filter.qs if ticket_filter.is_bound and ticket_filter.is_valid() else _queue_queryset()
    page = paginate(request, queryset, PAGE_SIZE)
    now = timezone.now()
    escalated = set(Ticket.objects.filter(ticket_escalated_q(), pk__in=[t.pk for t in page.object_list])
                    .values_list("pk", flat=True))
    context = {"filter": ticket_filter, "page": page, "query": query_without_page(request), "now": now,
               "rows": [{"ticket": t, "overdue": ticket_is_overdue(t, now), "escalated": t.pk in escalated,
                         "amount": t.requested_amount + t.requested_shipping} for t in page.object_list]}
    # The filters refresh the table alone (htmx); without JavaScript the form reloads the whole page.
    template = "aftersales/partials/ticket_table.html" if request.htmx else "aftersales/ticket_list.html"
    return render(request, template, context)


def _timeline(ticket: Ticket) -> list:
    """The ticket's events with their states in words (the rows keep the codes)."""
    states = dict(TicketStatus.choices)
    grades = dict(Grade.choices)
    events = list(ticket.events.select_related("actor"))
    for event in events:
        event.from_label = states.get(event.from_status, event.from_status)
        event.to_label = states.get(event.to_status, event.to_status)
        event.grade_label = grades.get((event.data or {}).get("grade", ""), "")
    return events


def _checks(ticket: Ticket) -> list[dict]:
    """The stored checks, each with what it is about in words (the rows keep only a code)."""
    labels = {"window": _("Return window"), "line": _("Line"), "auto_approval": _("Auto-approval")}
    checks = []
    for check in ticket.checks or []:
        name = check.get("check", "")
        label = labels.get(name, _("Check"))
        if name == "line" and check.get("line_no"):
            label = _("Line %(number)s") % {"number": check["line_no"]}
        checks.append({**check, "label": label})
    return checks


def _actions(ticket: Ticket, user) -> list[dict]:
    """The moves the ticket's state allows, for a user who may work tickets, with their labels."""
    if not user.has_perm("aftersales.work_ticket"):
        return []
    allowed = flows.ticket_actions_available(ticket)
    # The two actions that are not a ticket transition of their own carry their own labels.
    labels = {"retry_refund": _("Try the refund again"), "create_replacement": _("Create the replacement order")}
    return [{"name": name, "label": labels.get(name) or transition_label(ticket, name, state=ticket.status)}
            for name in DESK_TRANSITIONS if name in allowed]


def _refund_errors(ticket: Ticket) -> dict[int, str]:
    """Why each failed refund of the ticket failed (the platform's answer), by refund id."""
    return {event.data["refund"]: event.data.get("error", "") for event in
            ticket.events.filter(type=TicketEventType.REFUND_FAILED).order_by("id")
            if isinstance(event.data, dict) and "refund" in event.data}


def _replacement_held(ticket: Ticket, actions: list[dict]) -> str:
    """Why the flow could not create the replacement order, while a person still can (the latest reason)."""
    if not any(action["name"] == "create_replacement" for action in actions):
        return ""
    event = ticket.events.filter(type=TicketEventType.NOTE_ADDED, data__has_key="replacement_held").order_by(
        "-id").first()
    return event.reason if event else ""


def _detail_page(request: HttpRequest, pk: int) -> HttpResponse:
    ticket = get_object_or_404(Ticket.objects.select_related("order", "store", "owner", "replacement_order"), pk=pk)
    lines = list(ticket.lines.select_related("order_line", "replacement_sku").order_by("order_line__line_no"))
    refunds = list(ticket.refunds.order_by("created_at", "id"))
    errors = _refund_errors(ticket)
    for refund in refunds:
        refund.error = errors.get(refund.pk, "") if refund.status == RefundStatus.FAILED else ""
    actions = _actions(ticket, request.user)
    replacement = None
    if ticket.replacement_order is not None:
        replacement = {"order": ticket.replacement_order,
                       "shipments": [{"shipment": s, "tracking": customer_tracking_of(s)}
                                     for s in shipments_for_order(ticket.replacement_order_id)]}
    now = timezone.now()
    return render(request, "aftersales/ticket_detail.html", {
        "ticket": ticket,
        "lines": lines,
        "checks": _checks(ticket),
        "refunds": refunds,
        # Starts at 0.00, not 0: a ticket without a refund shows "0.00 CNY" like every other amount.
        "refunded": sum((r.amount for r in refunds if r.status != RefundStatus.FAILED), start=Decimal("0.00")),
        "units": list(ticket.units.select_related("sku", "warehouse", "graded_by", "ticket_line__order_line")
                      .order_by("ticket_line__order_line__line_no", "unit_no")),
        "replacement": replacement,
        "events": _timeline(ticket),
        "actions": actions,
        "replacement_held": _replacement_held(ticket, actions),
        "exchange": ticket.type == TicketType.EXCHANGE,
        "approve_amount": ticket.requested_amount + ticket.requested_shipping,
        "overdue": ticket_is_overdue(ticket, now),
        "escalated": Ticket.objects.filter(ticket_escalated_q(), pk=ticket.pk).exists(),
        "awaiting_return": ticket.status == TicketStatus.AWAITING_RETURN,
        "note_form": NoteForm(),
        "tracking_form": TrackingForm(initial={"tracking_number": ticket.return_tracking_number}),
        "can_work": request.user.has_perm("aftersales.work_ticket"),
    })


@login_required
@permission_required("aftersales.view_ticket", raise_exception=True)
def ticket_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return _detail_page(request, pk)


def _done(request: HttpRequest, pk: int, action, success: str | None = None) -> HttpResponse:
    """Run a service call; a refusal becomes a red banner on the ticket page saying why, nothing changed."""
    try:
        action()
    except NotFoundError:
        raise Http404 from None
    except DomainError as exc:
        # The per-field reasons too (a SKU no longer sold…): the banner alone must say what to fix.
        details = [str(message) for found in (exc.data or {}).values() if isinstance(found, list)
                   for message in found] if isinstance(exc, ValidationFailed) else []
        messages.error(request, _("Refused: %(why)s") % {"why": " ".join([exc.message, *details])})
    else:
        messages.success(request, success or _("Done."))
    return redirect("aftersales:detail", pk=pk)


def _refused(request: HttpRequest, pk: int, form) -> HttpResponse:
    messages.error(request, _("Refused: %(why)s") % {
        "why": " ".join(str(error) for errors in form.errors.values() for error in errors)})
    return redirect("aftersales:detail", pk=pk)


@login_required
@require_POST
@permission_required("aftersales.work_ticket", raise_exception=True)
def ticket_transition(request: HttpRequest, pk: int, name: str) -> HttpResponse:
    if name in WAREHOUSE_TRANSITIONS:
        messages.error(request, _("Refused: %(why)s") % {
            "why": _("returns are received and graded at the receiving station.")})
        return redirect("aftersales:detail", pk=pk)
    if name == "approve":
        form = ApproveForm(request.POST)
        if not form.is_valid():
            return _refused(request, pk, form)
        return _done(request, pk, lambda: flows.ticket_apply_transition(
            ticket_id=pk, name=name, actor=request.user, reason=form.cleaned_data["reason"],
            approved_amount=form.cleaned_data["approved_amount"]))
    form = ReasonForm(request.POST)
    if not form.is_valid():
        return _refused(request, pk, form)
    reason = form.cleaned_data["reason"].strip()
    if name == "reject" and not reason:
        messages.error(request, _("Refused: %(why)s") % {"why": _("say why the request is rejected.")})
        return redirect("aftersales:detail", pk=pk)
    return _done(request, pk, lambda: flows.ticket_apply_transition(ticket_id=pk, name=name, actor=request.user,
                                                                    reason=reason))


@login_required
@require_POST
@permission_required("aftersales.work_ticket", raise_exception=True)
def ticket_assign_to_me(request: HttpRequest, pk: int) -> HttpResponse:
    owner = None if request.POST.get("owner") == "none" else request.user
    return _done(request, pk, lambda: services.ticket_assign(ticket_id=pk, owner=owner, actor=request.user))


@login_required
@require_POST
@permission_required("aftersales.work_ticket", raise_exception=True)
def ticket_tracking(request: HttpRequest, pk: int) -> HttpResponse:
    form = TrackingForm(request.POST)
    if not form.is_valid():
        return _refused(request, pk, form)
    return _done(request, pk, lambda: services.ticket_return_tracking_set(
        ticket_id=pk, tracking_number=form.cleaned_data["tracking_number"], actor=request.user))


@login_required
@require_POST
@permission_required("aftersales.work_ticket", raise_exception=True)
def ticket_note(request: HttpRequest, pk: int) -> HttpResponse:
    form = NoteForm(request.POST)
    if not form.is_valid():
        return _refused(request, pk, form)
    return _done(request, pk, lambda: services.ticket_note_add(ticket_id=pk, text=form.cleaned_data["text"],
                                                               actor=request.user))


def _order_lines_left(order: Order, *, ticket_type: str, shipped: dict[int, int]) -> list[dict]:
    """Each line of the order with its shipped units, the units the ticket type can still claim (a return,
    exchange or resend counts the shipped units, a refund only or compensation the bought ones, less what other
    open or refunded tickets hold) and what the buyer paid for them: the form's starting values (the service
    checks them again under the order's lock)."""
    lines = list(order.lines.order_by("line_no"))
    taken, _amounts = ticket_claimed_on_lines([line.pk for line in lines])
    rows = []
    for line in lines:
        units = shipped.get(line.pk, 0) if ticket_type in services.AFTER_SHIPPING else line.quantity
        left = max(units - taken[line.pk], 0)
        rows.append({"line": line, "shipped": shipped.get(line.pk, 0), "left": left,
                     "paid": services.line_paid_amount(line, left)})
    return rows


@login_required
@permission_required("aftersales.add_ticket", raise_exception=True)
def ticket_new(request: HttpRequest, order_id: int) -> HttpResponse:
    order = get_object_or_404(Order.objects.select_related("store"), pk=order_id)
    shipped = order_units_shipped(order)
    # Nothing shipped yet: only a refund only or a compensation can be opened, so the form starts there.
    default_type = TicketType.RETURN_REFUND if any(shipped.values()) else TicketType.REFUND_ONLY
    ticket_type = request.POST.get("type") if request.method == "POST" else default_type
    if ticket_type not in TicketType.values:
        ticket_type = default_type
    rows = _order_lines_left(order, ticket_type=ticket_type, shipped=shipped)
    form = TicketNewForm(request.POST or None, lines=rows, initial={"type": default_type})
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                ticket = flows.ticket_open(
                    order_id=order.pk, type=form.cleaned_data["type"], reason=form.cleaned_data["reason"],
                    lines=form.line_inputs(), reason_text=form.cleaned_data["reason_text"],
                    shipping_amount=form.cleaned_data["shipping_amount"],
                    return_tracking_number=form.cleaned_data["return_tracking_number"], source="desk",
                    actor=request.user)
            except ValidationFailed as exc:
                form.add_service_errors(exc.data or {"__all__": [exc.message]})
            except NotFoundError:
                raise Http404 from None
            except DomainError as exc:
                form.add_error(None, exc.message)
            else:
                messages.success(request, _("After-sales ticket %(number)s opened.") % {"number": ticket.number})
                return redirect("aftersales:detail", pk=ticket.pk)
        status = 400
    return render(request, "aftersales/ticket_new.html", {"order": order, "form": form}, status=status)


urlpatterns = [
    path("", ticket_queue, name="queue"),
    path("<int:pk>/", ticket_detail, name="detail"),
    path("<int:pk>/transition/<slug:name>/", ticket_transition, name="transition"),
    path("<int:pk>/assign/", ticket_assign_to_me, name="assign"),
    path("<int:pk>/tracking/", ticket_tracking, name="tracking"),
    path("<int:pk>/note/", ticket_note, name="note"),
    path("new/<int:order_id>/", ticket_new, name="new"),
]
