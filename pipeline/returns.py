"""Receiving returns across apps: the parcel scanned in, each unit graded with its stock moved, then what follows.

The receiving page calls these. A graded unit, its stock ledger rows and (for the last unit) the ticket's
"graded" transition commit in one transaction under the ticket's row lock; what grading sets off (refund,
replacement order) runs after it, in transactions of its own that lock the order.
"""

from __future__ import annotations

from django.db import transaction

from aftersales import returns
from aftersales.models import Grade, Ticket, TicketStatus
from aftersales.returns import GradedUnit
from aftersales.services import ticket_transition
from inventory import services as stock
from inventory.models import BundleComponent
from oms.exceptions import ConflictError
from pipeline import stock as stock_flows
from pipeline.tickets import ticket_follow_up


def return_open(*, scan: str, actor=None, actor_label: str = "system") -> Ticket:
    """A returned parcel scanned at the station: find its ticket (RMA or tracking number) and receive it.

    A ticket already received (a second station, a rescan) stays as it is.
    """
    ticket = returns.ticket_find_for_return(scan=scan)
    if ticket.status == TicketStatus.AWAITING_RETURN:
        try:
            ticket = ticket_transition(ticket_id=ticket.pk, name="receive", actor=actor, actor_label=actor_label)
        except ConflictError:  # another station received it a moment ago
            ticket = Ticket.objects.get(pk=ticket.pk)
            if ticket.status != TicketStatus.RECEIVED:
                raise
    return ticket


def _parts(sku_id: int, quantity: int) -> list[tuple[int, int]]:
    """The stock a returned unit of the SKU is: itself, or a bundle's components (bundles hold no stock)."""
    components = list(BundleComponent.objects.filter(bundle_id=sku_id).order_by("component_id")
                      .values_list("component_id", "quantity"))
    return [(component, quantity * per) for component, per in components] or [(sku_id, quantity)]


def return_unit_receive(*, ticket_id: int, scan: str, grade: str, warehouse_id, unit_no: int | None = None,
                        ticket_line_id: int | None = None, actor=None, actor_label: str = "system") -> GradedUnit:
    """Grade one scanned unit (aftersales.returns.return_unit_grade) and move its stock in the same transaction:

    - resalable: back into the receiving site's stock (RETURN_RESTOCK); orders awaiting the SKU move on after
      commit and the channel stock is pushed, as after a receipt;
    - minor wear: into the site's quarantine warehouse (RETURN_IN);
    - not resalable: into quarantine (RETURN_IN) and out again (WRITE_OFF), so the ledger shows both.

    The last unit of the ticket grades the ticket; then its refund or replacement follows (pipeline.tickets).
    """
    with transaction.atomic():
        graded = returns.return_unit_grade(ticket_id=ticket_id, scan=scan, grade=grade, warehouse_id=warehouse_id,
                                           unit_no=unit_no, ticket_line_id=ticket_line_id, actor=actor,
                                           actor_label=actor_label)
        unit, number = graded.unit, graded.ticket.number
        reference, note = f"return:{number}", f"{number} #{graded.line.pk}-{unit.unit_no} {grade}"
        for sku_id, quantity in _parts(unit.sku_id, 1):
            arguments = {"warehouse_id": graded.destination.pk, "sku_id": sku_id, "quantity": quantity,
                         "reference": reference, "note": note, "actor": actor}
            if grade == Grade.RESALABLE:
                stock_flows.stock_return_restock(**arguments)
            else:
                stock.stock_return_in(**arguments)
                if grade == Grade.NOT_RESALABLE:
                    stock.stock_write_off(**arguments)
        if graded.complete:
            ticket_transition(ticket_id=ticket_id, name="grade", actor=actor, actor_label=actor_label)
    if graded.complete:
        ticket_follow_up(ticket=Ticket.objects.get(pk=ticket_id), actor=actor)
    return graded
