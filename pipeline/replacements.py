"""Replacement orders for exchanges and resends: a linked zero-amount order that ships like any other."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from aftersales.models import Ticket, TicketEventType, TicketStatus, TicketType
from aftersales.services import ticket_event_record
from inventory.selectors import sku_ids_and_titles
from oms.exceptions import ConflictError, NotFoundError, ValidationFailed
from oms.locks import lock_one
from orders import events as order_events
from orders import services as order_services
from orders.models import LINE_MAX_QUANTITY, Order, OrderStatus, Priority
from orders.services import BuyerInput, LineInput, OrderInput, ReceiverInput
from pipeline.orders import order_approve, orders_process

ACTOR_LABEL = "aftersales"
# The ticket types that send goods to the buyer again.
REPLACED = {TicketType.EXCHANGE, TicketType.RESEND}
# A replacement is made while the ticket can still end in "replacement shipped" (the sources of that
# transition): a resend once approved, an exchange once its return is graded.
REPLACEABLE = {TicketStatus.APPROVED, TicketStatus.GRADED}
# Never the platform's own id (numbers, or PDD's dated ids): the unique (store, platform id) pair
# also makes a second replacement for the same ticket impossible.
PLATFORM_ID_PREFIX = "REPL-"
NUMBER_MAX_LENGTH = Order._meta.get_field("number").max_length


@dataclass
class ReplacementLineInput:
    """What the replacement sends instead of the ticket's own lines (an exchange for another size)."""

    sku_code: str
    quantity: int


def _ticket_or_404(ticket_id: int) -> Ticket:
    ticket = Ticket.objects.filter(pk=ticket_id).only("pk", "order_id", "replacement_order_id").first()
    if ticket is None:
        raise NotFoundError(_("Ticket %(id)s does not exist.") % {"id": ticket_id}, code="ticket_not_found")
    return ticket


def _wanted_lines(ticket: Ticket, lines: list[ReplacementLineInput] | None) -> list[tuple[str, int, str]]:
    """(SKU code, quantity, title) to send: the ticket's lines, or the override checked against them."""
    # An exchange line that names another SKU (another size or colour) sends that one, under its own name.
    own = [(line.replacement_sku.code, line.quantity, "") if line.replacement_sku_id else
           (line.order_line.sku_code, line.quantity, line.order_line.title)
           for line in ticket.lines.select_related("order_line", "replacement_sku").order_by("order_line__line_no")]
    if lines is None:
        wanted = own
    else:
        errors: dict[str, list[str]] = {}
        if not lines:
            errors.setdefault("lines", []).append(_("A replacement needs at least one line."))
        for index, line in enumerate(lines):
            if not isinstance(line.quantity, int) or not 0 < line.quantity <= LINE_MAX_QUANTITY:
                errors.setdefault(f"lines[{index}].quantity", []).append(
                    _("Between 1 and %(limit)s.") % {"limit": LINE_MAX_QUANTITY})
        covered = sum(quantity for _code, quantity, _title in own)
        if not errors and sum(line.quantity for line in lines) > covered:
            # A replacement sends what the ticket took back or lost, not more: extra goods are a new order.
            errors.setdefault("lines", []).append(
                _("At most %(units)s units: what the ticket covers.") % {"units": covered})
        if errors:
            raise ValidationFailed(_("The replacement is not valid."), code="replacement_invalid", data=errors)
        wanted = [((line.sku_code or "").strip(), line.quantity, "") for line in lines]
    return wanted


def _order_input(*, original: Order, ticket: Ticket, wanted: list[tuple[str, int, str]], number: str) -> OrderInput:
    """The replacement's input: the original's buyer and receiver (masked copies and ciphertext as stored,
    the hub never decrypts), its own lines at no charge."""
    return OrderInput(
        platform_order_id=f"{PLATFORM_ID_PREFIX}{ticket.number}", number=number, replaces_id=original.pk,
        lines=[LineInput(sku_code=code, quantity=quantity, unit_price=Decimal("0"), title=title)
               for code, quantity, title in wanted],
        receiver=ReceiverInput(name=original.receiver_name, phone=original.receiver_phone,
                               address=original.receiver_address, country=original.receiver_country,
                               province=original.receiver_province, city=original.receiver_city,
                               district=original.receiver_district, zip=original.receiver_zip),
        buyer=BuyerInput(id=original.buyer_id, name=original.buyer_name, email=original.buyer_email,
                         phone=original.buyer_phone),
        receiver_ciphertext=dict(original.receiver_ciphertext or {}),
        currency=original.currency,
        # The buyer has waited once already: the replacement goes ahead of ordinary orders.
        priority=max(original.priority, Priority.HIGH),
        raw_payload_ref=f"ticket:{ticket.number}")


def ticket_replacement_create(*, ticket_id: int, actor=None,
                              lines: list[ReplacementLineInput] | None = None) -> Order:
    """Create the replacement order of an exchange or resend ticket, or return the one it already has.

    The order replaces the ticket's order (Order.replaces), costs nothing, goes to the same buyer and
    receiver, and sends the ticket's lines (an exchange line's replacement SKU when it names one), or ``lines``
    (e.g. another size; each SKU must exist and be
    active, and no more units than the ticket covers). It is created, paid and processed through the order
    services like any order, so it is reserved, routed and gets its parcel on the warehouse's kanban; it
    takes no payment snapshot (nothing was paid). Its number is the original's with "-R1", "-R2"...
    """
    existing = _ticket_or_404(ticket_id)
    if existing.replacement_order_id:
        return Order.objects.get(pk=existing.replacement_order_id)
    with transaction.atomic():
        # Orders before tickets, as when a ticket is opened; the original's lock also serializes the
        # numbering of its replacements.
        original = order_services.order_lock(existing.order_id)
        ticket = lock_one(Ticket, ticket_id)
        if ticket.replacement_order_id:
            return Order.objects.get(pk=ticket.replacement_order_id)
        if ticket.type not in REPLACED:
            raise ConflictError(_("Ticket %(number)s is a “%(type)s”: only an exchange or a resend gets a "
                                  "replacement order.") % {"number": ticket.number,
                                                          "type": ticket.get_type_display()},
                                code="replacement_not_allowed", data={"type": ticket.type})
        if ticket.status not in REPLACEABLE:
            raise ConflictError(_("Ticket %(number)s cannot get a replacement order while it is %(status)s.") % {
                "number": ticket.number, "status": ticket.get_status_display()},
                code="replacement_not_allowed", data={"status": ticket.status})
        wanted = _wanted_lines(ticket, lines)
        skus = sku_ids_and_titles([code for code, _quantity, _title in wanted])
        unknown = {f"lines[{index}].sku_code": [_("No active SKU %(code)s.") % {"code": code}]
                   for index, (code, _quantity, _title) in enumerate(wanted) if code not in skus}
        if unknown:
            raise ValidationFailed(_("The replacement is not valid."), code="replacement_invalid", data=unknown)
        number = f"{original.number}-R{original.replacements.count() + 1}"
        data = _order_input(original=original, ticket=ticket, wanted=wanted,
                            number=number if len(number) <= NUMBER_MAX_LENGTH else "")
        order = order_services.order_insert(store=original.store, data=data, skus=skus, actor=actor,
                                            actor_label=ACTOR_LABEL)
        # Paid at once with nothing to pay; no payment snapshot, so finance never counts it as a sale.
        order_services.order_mark_paid(order_id=order.pk, actor=actor, actor_label=ACTOR_LABEL,
                                       paid_at=timezone.now(), paid_amount=Decimal("0"),
                                       reason=_("Replacement for %(ticket)s: nothing to pay.") % {
                                           "ticket": ticket.number})
        order = orders_process([order.pk])[0]
        if order.status == OrderStatus.PAID and not order.hold_reasons:
            # Reserved, but the store approves its orders by hand: the ticket's approval already stands for it.
            order = order_approve(order_id=order.pk, actor=actor, actor_label=ACTOR_LABEL,
                                  reason=_("Approved with after-sales ticket %(ticket)s.") % {
                                      "ticket": ticket.number})
        ticket.replacement_order = order
        ticket.save(update_fields=["replacement_order", "updated_at"])
        ticket_event_record(ticket, type=TicketEventType.REPLACEMENT_CREATED, actor=actor, actor_label=ACTOR_LABEL,
                            to_status=ticket.status, from_status=ticket.status,
                            reason=_("Replacement order %(number)s") % {"number": order.number},
                            data={"order_id": order.pk, "order": order.number,
                                  "lines": [{"sku": code, "quantity": quantity} for code, quantity, _t in wanted]})
        for side, reason in ((original, _("Replacement order %(number)s created for %(ticket)s.") % {
                                 "number": order.number, "ticket": ticket.number}),
                             (order, _("Replaces order %(number)s (%(ticket)s).") % {
                                 "number": original.number, "ticket": ticket.number})):
            order_events.event_order_replacement_linked(order=side, replaces=original, replacement=order,
                                                        reason=reason, actor=actor, actor_label=ACTOR_LABEL,
                                                        data={"ticket": ticket.number})
    return order


def ticket_replacement_try(*, ticket_id: int, actor=None) -> Order | None:
    """The flow's own attempt at the replacement (a resend approved, an exchange graded): a refusal (a SKU no
    longer sold, a line without a SKU…) leaves the ticket where it is with the reason on its timeline, for a
    person to fix and press "create the replacement order" (pipeline.tickets). None when it was refused."""
    try:
        return ticket_replacement_create(ticket_id=ticket_id, actor=actor)
    except (ValidationFailed, ConflictError) as exc:
        problems = [str(message) for messages in (exc.data or {}).values() if isinstance(messages, list)
                    for message in messages]
        with transaction.atomic():
            ticket = lock_one(Ticket, ticket_id)
            ticket_event_record(ticket, type=TicketEventType.NOTE_ADDED, actor_label=ACTOR_LABEL,
                                reason=_("The replacement order was not created: %(why)s") % {
                                    "why": " ".join([exc.message, *problems])[:450]},
                                data={"replacement_held": exc.code, "errors": exc.data or {}})
        return None
