"""Immutable payment snapshots taken at the moment an order is paid."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class PaymentSnapshot(models.Model):
    """What the order looked like when it was paid: amounts, discounts, lines. Never updated."""

    order = models.ForeignKey("orders.Order", on_delete=models.PROTECT, related_name="payment_snapshots",
                              verbose_name=_("order"))
    taken_at = models.DateTimeField(_("taken at"), auto_now_add=True, db_index=True)
    currency = models.CharField(_("currency"), max_length=3)
    paid_amount = models.DecimalField(_("paid amount"), max_digits=14, decimal_places=2)
    data = models.JSONField(_("snapshot"))

    class Meta:
        verbose_name = _("payment snapshot")
        verbose_name_plural = _("payment snapshots")
        ordering = ["-taken_at", "-id"]

    def __str__(self) -> str:
        return f"{self.order_id} {self.paid_amount} {self.currency}"

    def save(self, *args, **kwargs):
        # Snapshots are evidence for reconciliation: once written they never change.
        if self.pk is not None:
            raise ValueError("Payment snapshots are immutable")
        super().save(*args, **kwargs)
