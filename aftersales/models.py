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

    def __str__(self) -> str:
        return self.number

    # --- Transitions (only aftersales.services calls these) ------------------------------------------

    @transition(field=status, source=S.REQUESTED, target=S.APPROVED, custom={"label": _("Approve")})
    def approve(self):
        pass

    @transition(field=status, source=S.REQUESTED, target=S.REJECTED, custom={"label": _("Reject")})
    def reject(self):
        pass

    @transition(field=status, source=S.APPROVED, target=S.AWAITING_RETURN, custom={"label": _("Wait for the return")})
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


class TicketEvent(Event):
    """One line of a ticket's history: who did what, when, from which state to which, and why."""

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="events", verbose_name=_("ticket"))
    type = models.CharField(_("type"), max_length=32, choices=TicketEventType.choices)

    class Meta(Event.Meta):
        verbose_name = _("ticket event")
        verbose_name_plural = _("ticket events")
        indexes = [models.Index(fields=["ticket", "created_at"], name="ticket_event_timeline_idx")]
