"""A buyer's requests on an order, checked and put in the terms of the flows in pipeline/ that carry them out."""

# Not in customer.services: these read customer.selectors, which imports customer.services (BuyerScope). The
# flows themselves (pipeline.expedite, pipeline.tickets) sit a layer above and are called by the API.

from __future__ import annotations

from django.utils.translation import gettext as _

from aftersales.services import TicketLineInput
from customer.selectors import buyer_is_vip
from customer.services import BuyerScope
from oms.exceptions import DomainError, ValidationFailed
from orders.models import Order


class ExpediteNotAllowed(DomainError):
    code = "expedite_not_allowed"
    http_status = 403


def buyer_expedite_check(*, scope: BuyerScope) -> None:
    """Refuse (403 expedite_not_allowed) a buyer who may not ask for an order to be hurried: VIP buyers only."""
    if not buyer_is_vip(scope=scope):
        raise ExpediteNotAllowed(_("Hurrying an order is for VIP customers."))


def buyer_ticket_lines(*, order: Order, lines: list[dict]) -> list[TicketLineInput]:
    """The after-sales request's lines (each a line_no, a quantity and maybe a replacement SKU) as lines of
    ``order`` a ticket takes; 400 ticket_invalid naming each line_no (lines[i].line_no) that is not the order's."""
    line_ids = dict(order.lines.values_list("line_no", "pk"))
    errors, found = {}, []
    for index, item in enumerate(lines):
        if item["line_no"] not in line_ids:
            errors[f"lines[{index}].line_no"] = [_("Not a line of order %(number)s.") % {"number": order.number}]
            continue
        found.append(TicketLineInput(order_line_id=line_ids[item["line_no"]], quantity=item["quantity"],
                                     replacement_sku=item.get("replacement_sku", "")))
    if errors:
        raise ValidationFailed(_("The after-sales request is not valid."), code="ticket_invalid", data=errors)
    return found
