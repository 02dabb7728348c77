"""Immutable payment snapshots, one per payment event (paid, authorized, captured) of an order."""

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class PaymentEvent(models.TextChoices):
    PAYMENT = "payment", _("Paid")
    # The buyer's payment is reserved, not yet taken (Shopify manual capture); a capture follows.
    AUTHORIZATION = "authorization", _("Payment authorized")
    CAPTURE = "capture", _("Payment captured")


class PaymentSnapshot(models.Model):
    """What the order looked like at one payment event: amounts, discounts, lines. Never updated."""

    order = models.ForeignKey("orders.Order", on_delete=models.PROTECT, related_name="payment_snapshots",
                              verbose_name=_("order"))
    taken_at = models.DateTimeField(_("taken at"), auto_now_add=True, db_index=True)
    currency = models.CharField(_("currency"), max_length=3)
    paid_amount = models.DecimalField(_("paid amount"), max_digits=14, decimal_places=2)
    data = models.JSONField(_("snapshot"))
    event = models.CharField(_("payment event"), max_length=16, choices=PaymentEvent.choices,
                             default=PaymentEvent.PAYMENT)
    # The platform's transaction id(s) behind the event, when it names them.
    reference = models.CharField(_("platform reference"), max_length=200, blank=True, default="")

    class Meta:
        verbose_name = _("payment snapshot")
        verbose_name_plural = _("payment snapshots")
        ordering = ["-taken_at", "-id"]
        # An authorization and its capture are each recorded once, whoever reports the capture first
        # (the hub's own capture call or the platform's order update after a capture in its admin).
        constraints = [models.UniqueConstraint(fields=["order", "event"], condition=~Q(event="payment"),
                                               name="payment_snapshot_one_per_event")]

    def __str__(self) -> str:
        return f"{self.order_id} {self.paid_amount} {self.currency}"

    def save(self, *args, **kwargs):
        # Snapshots are evidence for reconciliation: once written they never change.
        if self.pk is not None:
            raise ValueError("Payment snapshots are immutable")
        super().save(*args, **kwargs)
