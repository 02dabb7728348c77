"""Returns at the warehouse: finding the ticket of a returned parcel, and grading each returned unit once.

What a grade means for stock (restock, quarantine, write-off) is the pipeline's (pipeline/returns.py), which
calls return_unit_grade inside its own transaction so the unit and its ledger rows commit together.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.db.models import Count, Max, Q
from django.utils.translation import gettext as _

from aftersales.models import Grade, ReturnUnit, Ticket, TicketEventType, TicketLine, TicketStatus
from aftersales.services import ticket_event_record, ticket_transition
from inventory.models import Warehouse
from oms.exceptions import ConflictError, NotFoundError, ValidationFailed
from oms.locks import lock_one

# A returned parcel is expected (awaiting return) or being graded (received).
RECEIVABLE = (TicketStatus.AWAITING_RETURN, TicketStatus.RECEIVED)
# Grades whose units do not go back into sellable stock: they go to the site's quarantine warehouse.
QUARANTINED = (Grade.MINOR_WEAR, Grade.NOT_RESALABLE)
MAX_SCAN = 64


def _clean_scan(scan: str, *, field: str = "scan") -> str:
    scan = (scan or "").strip()
    if not scan or len(scan) > MAX_SCAN or not scan.isprintable():
        raise ValidationFailed(_("Scan a code of up to %(max)s characters.") % {"max": MAX_SCAN}, code="scan_invalid",
                               data={field: [_("Not valid.")]})
    return scan


def ticket_find_for_return(*, scan: str) -> Ticket:
    """The ticket of a returned parcel, by its RMA number or the return parcel's tracking number.

    Unknown: return_not_found. A ticket that expects no parcel (not approved yet, refund only, already graded)
    is refused with return_not_expected, saying its state.
    """
    scan = _clean_scan(scan)
    tickets = list(Ticket.objects.filter(Q(number=scan.upper()) | Q(return_tracking_number=scan))
                   .select_related("order").order_by("-created_at", "-id")[:10])
    if not tickets:
        raise NotFoundError(_("No return has the RMA or tracking number %(scan)s.") % {"scan": scan},
                            code="return_not_found", data={"scan": scan})
    receivable = [ticket for ticket in tickets if ticket.status in RECEIVABLE]
    if receivable:
        return receivable[0]
    ticket = tickets[0]
    raise ConflictError(_("Return %(number)s is %(status)s: no parcel is expected for it.") % {
        "number": ticket.number, "status": ticket.get_status_display()}, code="return_not_expected",
        data={"ticket": ticket.pk, "status": ticket.status})


@dataclass(frozen=True)
class LineProgress:
    line: TicketLine
    sku_code: str
    sku_name: str
    barcode: str
    graded: int

    @property
    def quantity(self) -> int:
        return self.line.quantity

    @property
    def done(self) -> bool:
        return self.graded >= self.line.quantity

    @property
    def next_unit_no(self) -> int | None:
        return None if self.done else self.graded + 1


def ticket_return_progress(*, ticket_id: int) -> list[LineProgress]:
    """Each line of the ticket with the units expected and already graded."""
    lines = (TicketLine.objects.filter(ticket_id=ticket_id).select_related("order_line__sku")
             .annotate(graded=Count("units")).order_by("order_line__line_no", "pk"))
    rows = []
    for line in lines:
        sku = line.order_line.sku
        rows.append(LineProgress(line=line, sku_code=sku.code if sku else line.order_line.sku_code,
                                 sku_name=sku.name if sku else line.order_line.title,
                                 barcode=sku.barcode if sku else "", graded=line.graded))
    return rows


def _scan_names(line: TicketLine, scan: str) -> bool:
    """The packing station's rule: a unit is named by its SKU's barcode or code."""
    sku = line.order_line.sku
    return sku is not None and scan in {code for code in (sku.barcode, sku.code) if code}


def return_site(*, warehouse_id) -> Warehouse:
    """The receiving site: an active warehouse that is not itself a quarantine warehouse."""
    try:
        warehouse = Warehouse.objects.select_related("quarantine_warehouse").get(pk=int(warehouse_id))
    except (Warehouse.DoesNotExist, ValueError, TypeError, OverflowError):
        warehouse = None
    if warehouse is None or not warehouse.active or warehouse.is_quarantine:
        raise ValidationFailed(_("Choose the warehouse receiving the return."), code="warehouse_invalid",
                               data={"warehouse": [_("Not an active sellable warehouse.")]})
    return warehouse


def return_destination(*, site: Warehouse, grade: str) -> Warehouse:
    """Where a unit of this grade goes: resalable back to the site, the rest to the site's quarantine warehouse."""
    if grade not in QUARANTINED:
        return site
    quarantine = site.quarantine_warehouse
    if quarantine is None or not quarantine.active or not quarantine.is_quarantine:
        raise ConflictError(
            _("Warehouse %(code)s has no quarantine warehouse for returns: a manager sets one up under Django admin "
              "→ Warehouses → “quarantine warehouse for returns”. Until then only resalable units can be "
              "received here.") % {"code": site.code}, code="quarantine_missing", data={"warehouse": site.pk})
    return quarantine


@dataclass(frozen=True)
class GradedUnit:
    """A unit just graded, with where its stock goes and how far the ticket's return is."""

    unit: ReturnUnit
    ticket: Ticket
    line: TicketLine
    sku_code: str
    graded: int  # units of the line graded, this one included
    quantity: int
    complete: bool  # every unit of every line is graded
    site: Warehouse
    destination: Warehouse


def return_unit_grade(*, ticket_id: int, scan: str, grade: str, warehouse_id, unit_no: int | None = None,
                      ticket_line_id: int | None = None, actor=None, actor_label: str = "system") -> GradedUnit:
    """Grade one scanned unit of a returned parcel under the ticket's row lock; one UNIT_GRADED event.

    The scan names the line (SKU barcode or code); the unit gets the line's next unit number. ``unit_no``
    (what the station showed when the item was scanned) makes a second submission of the same unit a refusal:
    (ticket line, unit number) is unique, so a unit is graded once however many stations or taps send it.
    Refused: a code not on the ticket (wrong_item), a unit beyond the line's quantity (extra_item), a unit
    already graded (unit_already_graded), a ticket not expecting a parcel (return_not_expected), a worn or
    broken unit at a site without a quarantine warehouse (quarantine_missing). A ticket still awaiting its
    return is received first (the parcel is here).
    """
    scan = _clean_scan(scan)
    if grade not in Grade.values:
        grades = "、".join(str(label) for label in Grade.labels)
        raise ValidationFailed(_("Choose a grade: %(grades)s.") % {"grades": grades}, code="grade_invalid",
                               data={"grade": [_("Not valid.")]})
    site = return_site(warehouse_id=warehouse_id)
    destination = return_destination(site=site, grade=grade)
    with transaction.atomic():
        try:
            ticket = lock_one(Ticket, ticket_id)
        except Ticket.DoesNotExist:
            raise NotFoundError(_("Ticket %(id)s does not exist.") % {"id": ticket_id},
                                code="return_not_found") from None
        if ticket.status not in RECEIVABLE:
            raise ConflictError(_("Return %(number)s is %(status)s: its units cannot be graded.") % {
                "number": ticket.number, "status": ticket.get_status_display()}, code="return_not_expected",
                data={"status": ticket.status})
        if ticket.status == TicketStatus.AWAITING_RETURN:
            ticket = ticket_transition(ticket_id=ticket.pk, name="receive", actor=actor, actor_label=actor_label,
                                       reason=_("Return parcel scanned at %(code)s") % {"code": site.code})
        lines = list(TicketLine.objects.filter(ticket=ticket).select_related("order_line__sku")
                     .annotate(last=Max("units__unit_no"), graded=Count("units")).order_by("order_line__line_no", "pk"))
        matching = [line for line in lines if _scan_names(line, scan)]
        if ticket_line_id is not None:
            matching = [line for line in matching if line.pk == ticket_line_id]
        if not matching:
            raise ValidationFailed(_("Wrong item: %(scan)s is not on return %(number)s.") % {
                "scan": scan, "number": ticket.number}, code="wrong_item", data={"scan": scan})
        if (unit_no is None) != (ticket_line_id is None):
            raise ValidationFailed(_("Scan the item again: the station is out of step."), code="unit_out_of_step")
        if unit_no is None:  # the next unit of the first line of that SKU with units left
            line = next((line for line in matching if line.graded < line.quantity), None)
        else:  # the unit the station showed when the item was scanned
            line = matching[0]
            if unit_no <= (line.last or 0):
                raise ConflictError(_("Unit %(unit)s of %(sku)s is already graded: scan the next item.") % {
                    "unit": unit_no, "sku": line.order_line.sku.code}, code="unit_already_graded",
                    data={"unit_no": unit_no})
            if unit_no != (line.last or 0) + 1:
                raise ValidationFailed(_("Scan the item again: the station is out of step."),
                                       code="unit_out_of_step", data={"unit_no": unit_no})
            if line.graded >= line.quantity:
                line = None
        if line is None:
            quantity = sum(candidate.quantity for candidate in matching)
            raise ConflictError(_("Extra item: all %(quantity)s of %(sku)s on return %(number)s are already "
                                  "graded.") % {"quantity": quantity, "sku": matching[0].order_line.sku.code,
                                                "number": ticket.number}, code="extra_item", data={"scan": scan})
        number = (line.last or 0) + 1
        sku = line.order_line.sku
        try:
            with transaction.atomic():
                unit = ReturnUnit.objects.create(ticket=ticket, ticket_line=line, unit_no=number, sku=sku, grade=grade,
                                                 warehouse=destination, graded_by=_person(actor))
        except IntegrityError:  # the row lock serialises graders; the constraint is the last word
            raise ConflictError(_("Unit %(unit)s of %(sku)s is already graded: scan the next item.") % {
                "unit": number, "sku": sku.code}, code="unit_already_graded", data={"unit_no": number}) from None
        ticket_event_record(ticket, type=TicketEventType.UNIT_GRADED, actor=actor, actor_label=actor_label,
                            reason=_("%(sku)s unit %(unit)s: %(grade)s") % {
                                "sku": sku.code, "unit": number, "grade": Grade(grade).label},
                            data={"ticket_line": line.pk, "unit_no": number, "sku": sku.code, "grade": grade,
                                  "warehouse": destination.code, "site": site.code})
        complete = all(other.graded + (1 if other.pk == line.pk else 0) >= other.quantity for other in lines)
    return GradedUnit(unit=unit, ticket=ticket, line=line, sku_code=sku.code, graded=line.graded + 1,
                      quantity=line.quantity, complete=complete, site=site, destination=destination)


def _person(actor):
    return actor if actor is not None and getattr(actor, "is_authenticated", False) else None


def return_item_match(*, ticket_id: int, scan: str) -> LineProgress:
    """Which line and unit a scanned item is, before it is graded (nothing is written).

    Refused like grading refuses: a code not on the ticket (wrong_item), every unit of it graded (extra_item).
    The grade itself re-checks under the row lock.
    """
    scan = _clean_scan(scan)
    ticket = Ticket.objects.get(pk=ticket_id)
    rows = ticket_return_progress(ticket_id=ticket_id)
    matching = [row for row in rows if _scan_names(row.line, scan)]
    if not matching:
        raise ValidationFailed(_("Wrong item: %(scan)s is not on return %(number)s.") % {
            "scan": scan, "number": ticket.number}, code="wrong_item", data={"scan": scan})
    row = next((row for row in matching if not row.done), None)
    if row is None:
        raise ConflictError(_("Extra item: all %(quantity)s of %(sku)s on return %(number)s are already graded.") % {
            "quantity": sum(row.quantity for row in matching), "sku": matching[0].sku_code, "number": ticket.number},
            code="extra_item", data={"scan": scan})
    return row
