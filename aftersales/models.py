"""After-sales tickets (RMA): what the buyer asks for, on which order lines, how far it got, and its history."""

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from django_fsm import FSMField, FSMModelMixin, transition

from oms.models import Event, TimeStampedModel


class TicketType(models.TextChoices):
    RETURN_REFUND = "return_refund", _("Return and refund")
    REFUND_ONLY = "refund_only", _("Refund only")
    EXCHANGE = "exchange", _("Exchange")
    RESEND = "resend", _("Resend")
    COMPENSATION = "compensation", _("Compensation")


class TicketReason(models.TextChoices):
    WRONG_ITEM = "wrong_item", _("Wrong item sent")
    DAMAGED = "damaged", _("Arrived damaged")
    QUALITY = "quality", _("Quality problem")
    SIZE = "size", _("Size does not fit")
    NOT_AS_DESCRIBED = "not_as_described", _("Not as described")
    CHANGED_MIND = "changed_mind", _("Changed mind")
    LOST_IN_TRANSIT = "lost_in_transit", _("Lost in transit")
    OTHER = "other", _("Other reason")


class TicketSource(models.TextChoices):
    DESK = "desk", _("Customer service")
    PLATFORM = "platform", _("Platform")
    CUSTOMER_API = "customer_api", _("Customer (mini-program)")


class TicketStatus(models.TextChoices):
    REQUESTED = "requested", _("Requested")
    APPROVED = "approved", _("Approved")
    REJECTED = "rejected", _("Rejected")
    AWAITING_RETURN = "awaiting_return", _("Awaiting the return")
    RECEIVED = "received", _("Return received")
    GRADED = "graded", _("Return graded")
    REFUNDING = "refunding", _("Refunding")
    REFUNDED = "refunded", _("Refunded")
    REPLACEMENT_SHIPPED = "replacement_shipped", _("Replacement shipped")
    CLOSED = "closed", _("Closed")


S = TicketStatus
# A ticket in one of these still needs someone; the rest are finished.
OPEN_STATUSES = [S.REQUESTED, S.APPROVED, S.AWAITING_RETURN, S.RECEIVED, S.GRADED, S.REFUNDING]


def _goods_come_back(ticket) -> bool:
    """Only a return or an exchange waits for a parcel from the buyer."""
    return ticket.type in (TicketType.RETURN_REFUND, TicketType.EXCHANGE)


class Ticket(FSMModelMixin, TimeStampedModel):
    """One after-sales request on one order. Status changes only through aftersales.services."""

    number = models.CharField(_("RMA number"), max_length=20, unique=True)
    order = models.ForeignKey("orders.Order", on_delete=models.PROTECT, related_name="tickets",
                              verbose_name=_("order"))
    # The order's store, kept on the ticket so a platform's after-sale id is unique per store.
    store = models.ForeignKey("orders.Store", on_delete=models.PROTECT, related_name="tickets",
                              verbose_name=_("store"))
    type = models.CharField(_("type"), max_length=20, choices=TicketType.choices)
    reason = models.CharField(_("reason"), max_length=20, choices=TicketReason.choices)
    reason_text = models.CharField(_("reason in words"), max_length=500, blank=True, default="")
    status = FSMField(_("status"), max_length=24, choices=TicketStatus.choices, default=S.REQUESTED,
                      protected=True, db_index=True)
    source = models.CharField(_("source"), max_length=20, choices=TicketSource.choices, default=TicketSource.DESK)
    platform_after_sale_id = models.CharField(_("platform after-sale id"), max_length=64, blank=True, default="")
    requested_amount = models.DecimalField(_("requested amount"), max_digits=14, decimal_places=2,
                                           default=Decimal("0"))
    requested_shipping = models.DecimalField(_("requested shipping refund"), max_digits=14, decimal_places=2,
                                             default=Decimal("0"))
    approved_amount = models.DecimalField(_("approved amount"), max_digits=14, decimal_places=2, null=True,
                                          blank=True)
    currency = models.CharField(_("currency"), max_length=3, default="CNY")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="+", verbose_name=_("owner"))
    due_at = models.DateTimeField(_("first response due"), null=True, blank=True)
    first_response_at = models.DateTimeField(_("first response at"), null=True, blank=True)
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)
    # The automatic checks at creation: [{"check": name, "ok": bool, "message": text}, ...]
    checks = models.JSONField(_("automatic checks"), default=list, blank=True)
    # The tracking number of the buyer's return parcel: the receiving page finds the ticket by it too.
    return_tracking_number = models.CharField(_("return tracking number"), max_length=64, blank=True, default="",
                                              db_index=True)
    # Exchange and resend: the replacement order shipped to the buyer.
    replacement_order = models.ForeignKey("orders.Order", null=True, blank=True, on_delete=models.PROTECT,
                                          related_name="replacement_tickets", verbose_name=_("replacement order"))
    # The platform's own state of the after-sale and when the platform last changed it: a delivery older
    # than what was applied is skipped, so out-of-order deliveries end in the latest state.
    platform_status = models.CharField(_("platform after-sale status"), max_length=40, blank=True, default="")
    platform_updated_at = models.DateTimeField(_("platform updated at"), null=True, blank=True)
    # SLA: every event moves last_activity_at; 48 h without one escalates the ticket to a manager.
    last_activity_at = models.DateTimeField(_("last activity"), null=True, blank=True, db_index=True)
    escalated_at = models.DateTimeField(_("escalated at"), null=True, blank=True)

    class Meta:
        verbose_name = _("after-sales ticket")
        verbose_name_plural = _("after-sales tickets")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["store", "platform_after_sale_id"], condition=~Q(platform_after_sale_id=""),
                                    name="ticket_unique_platform_after_sale"),
            models.CheckConstraint(condition=Q(requested_amount__gte=0) & Q(requested_shipping__gte=0),
                                   name="ticket_amounts_not_negative"),
        ]
        indexes = [models.Index(fields=["status", "due_at"], name="ticket_queue_idx")]
        permissions = [("work_ticket", _("Work on after-sales tickets")),
                       ("receive_return", _("Receive and grade returns"))]

    def __str__(self) -> str:
        return self.number

    # --- Transitions (only aftersales.services calls these) ------------------------------------------

    @transition(field=status, source=S.REQUESTED, target=S.APPROVED, custom={"label": _("Approve")})
    def approve(self):
        pass

    @transition(field=status, source=S.REQUESTED, target=S.REJECTED, custom={"label": _("Reject")})
    def reject(self):
        pass

    @transition(field=status, source=S.APPROVED, target=S.AWAITING_RETURN, conditions=[_goods_come_back],
                custom={"label": _("Wait for the return")})
    def await_return(self):
        pass

    @transition(field=status, source=S.AWAITING_RETURN, target=S.RECEIVED, custom={"label": _("Receive the return")})
    def receive(self):
        pass

    @transition(field=status, source=S.RECEIVED, target=S.GRADED, custom={"label": _("Grade the return")})
    def grade(self):
        pass

    @transition(field=status, source=[S.APPROVED, S.GRADED], target=S.REFUNDING, custom={"label": _("Refund")})
    def start_refund(self):
        pass

    @transition(field=status, source=S.REFUNDING, target=S.REFUNDED, custom={"label": _("Refund confirmed")})
    def confirm_refund(self):
        pass

    @transition(field=status, source=[S.APPROVED, S.GRADED], target=S.REPLACEMENT_SHIPPED,
                custom={"label": _("Replacement shipped")})
    def ship_replacement(self):
        pass

    @transition(field=status, source=[S.REQUESTED, S.APPROVED, S.AWAITING_RETURN, S.REJECTED, S.REFUNDED,
                                      S.REPLACEMENT_SHIPPED], target=S.CLOSED, custom={"label": _("Close")})
    def close(self):
        pass


class TicketLine(models.Model):
    """An order line under the ticket: how many units, and the amounts asked and approved for them."""

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="lines", verbose_name=_("ticket"))
    order_line = models.ForeignKey("orders.OrderLine", on_delete=models.PROTECT, related_name="ticket_lines",
                                   verbose_name=_("order line"))
    quantity = models.PositiveIntegerField(_("quantity"))
    requested_amount = models.DecimalField(_("requested amount"), max_digits=14, decimal_places=2,
                                           default=Decimal("0"))
    approved_amount = models.DecimalField(_("approved amount"), max_digits=14, decimal_places=2, null=True,
                                          blank=True)
    # Exchange only: what the replacement sends instead of the line's own SKU (another size or colour).
    replacement_sku = models.ForeignKey("inventory.SKU", null=True, blank=True, on_delete=models.PROTECT,
                                        related_name="+", verbose_name=_("replacement SKU"))

    class Meta:
        verbose_name = _("ticket line")
        verbose_name_plural = _("ticket lines")
        constraints = [
            models.UniqueConstraint(fields=["ticket", "order_line"], name="ticket_line_once"),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="ticket_line_quantity_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.ticket_id}:{self.order_line_id}×{self.quantity}"


class TicketEventType(models.TextChoices):
    CREATED = "created", _("Created")
    STATUS_CHANGED = "status_changed", _("Status changed")
    NOTE_ADDED = "note_added", _("Note added")
    AUTO_APPROVED = "auto_approved", _("Approved by a rule")
    UNIT_GRADED = "unit_graded", _("Unit graded")
    REFUND_RECORDED = "refund_recorded", _("Refund recorded")
    REFUND_CONFIRMED = "refund_confirmed", _("Refund confirmed")
    REFUND_FAILED = "refund_failed", _("Refund failed")
    REPLACEMENT_CREATED = "replacement_created", _("Replacement order created")
    PLATFORM_UPDATED = "platform_updated", _("Updated by the platform")
    ASSIGNED = "assigned", _("Owner changed")
    ESCALATED = "escalated", _("Escalated to a manager")


class TicketEvent(Event):
    """One line of a ticket's history: who did what, when, from which state to which, and why."""

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="events", verbose_name=_("ticket"))
    type = models.CharField(_("type"), max_length=32, choices=TicketEventType.choices)

    class Meta(Event.Meta):
        verbose_name = _("ticket event")
        verbose_name_plural = _("ticket events")
        indexes = [models.Index(fields=["ticket", "created_at"], name="ticket_event_timeline_idx")]


class Grade(models.TextChoices):
    RESALABLE = "resalable", _("Resalable")
    MINOR_WEAR = "minor_wear", _("Minor wear")
    NOT_RESALABLE = "not_resalable", _("Not resalable")


class ReturnUnit(models.Model):
    """One returned unit as the warehouse graded it, and the warehouse its stock went to.

    (ticket line, unit number) is unique: a unit is graded once, a second scan of the same unit is refused.
    """

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="units", verbose_name=_("ticket"))
    ticket_line = models.ForeignKey(TicketLine, on_delete=models.CASCADE, related_name="units",
                                    verbose_name=_("ticket line"))
    unit_no = models.PositiveIntegerField(_("unit number"))
    sku = models.ForeignKey("inventory.SKU", on_delete=models.PROTECT, related_name="+", verbose_name=_("SKU"))
    grade = models.CharField(_("grade"), max_length=16, choices=Grade.choices)
    warehouse = models.ForeignKey("inventory.Warehouse", on_delete=models.PROTECT, related_name="+",
                                  verbose_name=_("warehouse"))
    graded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                  related_name="+", verbose_name=_("graded by"))
    graded_at = models.DateTimeField(_("graded at"), auto_now_add=True)

    class Meta:
        verbose_name = _("returned unit")
        verbose_name_plural = _("returned units")
        constraints = [models.UniqueConstraint(fields=["ticket_line", "unit_no"], name="return_unit_once")]

    def __str__(self) -> str:
        return f"{self.ticket_id}:{self.ticket_line_id}#{self.unit_no} {self.grade}"


class RefundMethod(models.TextChoices):
    PLATFORM = "platform", _("Through the platform")
    ORIGINAL = "original", _("To the original payment")
    BANK_TRANSFER = "bank_transfer", _("Bank transfer")
    CASH = "cash", _("Cash")


class RefundStatus(models.TextChoices):
    PENDING = "pending", _("Waiting for the platform")
    CONFIRMED = "confirmed", _("Paid out")
    FAILED = "failed", _("Failed (needs a person)")


class Refund(TimeStampedModel):
    """One payout to the buyer on an order. The sum of an order's refunds that are not failed never
    exceeds what was paid: aftersales.services checks it under the order's row lock."""

    order = models.ForeignKey("orders.Order", on_delete=models.PROTECT, related_name="refunds",
                              verbose_name=_("order"))
    ticket = models.ForeignKey(Ticket, null=True, blank=True, on_delete=models.PROTECT, related_name="refunds",
                               verbose_name=_("ticket"))
    amount = models.DecimalField(_("amount"), max_digits=14, decimal_places=2)
    # The part of ``amount`` that refunds shipping.
    shipping_amount = models.DecimalField(_("shipping refunded"), max_digits=14, decimal_places=2,
                                          default=Decimal("0"))
    currency = models.CharField(_("currency"), max_length=3, default="CNY")
    method = models.CharField(_("method"), max_length=16, choices=RefundMethod.choices)
    status = models.CharField(_("status"), max_length=10, choices=RefundStatus.choices, default=RefundStatus.PENDING,
                              db_index=True)
    platform_refund_id = models.CharField(_("platform refund id"), max_length=64, blank=True, default="")
    confirmed_at = models.DateTimeField(_("paid out at"), null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+", verbose_name=_("created by"))

    class Meta:
        verbose_name = _("refund")
        verbose_name_plural = _("refunds")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0) & Q(shipping_amount__gte=0)
                                   & Q(shipping_amount__lte=models.F("amount")), name="refund_amount_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.order_id} refund {self.amount} {self.status}"


class RefundLine(models.Model):
    """The part of a refund that falls on one order line (the order's discount and shipping split pro rata)."""

    refund = models.ForeignKey(Refund, on_delete=models.CASCADE, related_name="lines", verbose_name=_("refund"))
    order_line = models.ForeignKey("orders.OrderLine", on_delete=models.PROTECT, related_name="refund_lines",
                                   verbose_name=_("order line"))
    amount = models.DecimalField(_("amount"), max_digits=14, decimal_places=2)

    class Meta:
        verbose_name = _("refund line")
        verbose_name_plural = _("refund lines")
        constraints = [models.UniqueConstraint(fields=["refund", "order_line"], name="refund_line_once")]

    def __str__(self) -> str:
        return f"{self.refund_id}:{self.order_line_id} {self.amount}"


class AftersalesPolicy(models.Model):
    """A store's after-sales service levels: how fast a first answer is due (counted in working hours)
    and after how long without an update a ticket goes to a manager. A store without one uses the defaults."""

    store = models.OneToOneField("orders.Store", on_delete=models.CASCADE, related_name="aftersales_policy",
                                 verbose_name=_("store"))
    first_response_minutes = models.PositiveIntegerField(_("first response within (working minutes)"), default=30)
    work_starts = models.TimeField(_("working day starts"), default="09:00")
    work_ends = models.TimeField(_("working day ends"), default="18:00")
    escalate_after_hours = models.PositiveIntegerField(_("escalate after (hours without an update)"), default=48)

    class Meta:
        verbose_name = _("after-sales policy")
        verbose_name_plural = _("after-sales policies")

    def __str__(self) -> str:
        return f"policy {self.store_id}"


class AutoApprovalRule(models.Model):
    """Approve a new ticket of this type on this store at once when it asks for no more than ``max_amount``
    and every automatic check passed. Anything else waits for a person."""

    store = models.ForeignKey("orders.Store", on_delete=models.CASCADE, related_name="auto_approval_rules",
                              verbose_name=_("store"))
    type = models.CharField(_("type"), max_length=20, choices=TicketType.choices)
    max_amount = models.DecimalField(_("up to amount"), max_digits=14, decimal_places=2)
    enabled = models.BooleanField(_("enabled"), default=True)

    class Meta:
        verbose_name = _("auto-approval rule")
        verbose_name_plural = _("auto-approval rules")
        constraints = [models.UniqueConstraint(fields=["store", "type"], name="auto_approval_rule_once"),
                       models.CheckConstraint(condition=Q(max_amount__gte=0), name="auto_approval_amount_positive")]

    def __str__(self) -> str:
        return f"{self.store_id} {self.type} <= {self.max_amount}"
