"""The customer API's own rows: failed order proofs counted per order number and day (the daily lock)."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class ProofFailure(models.Model):
    """How many times one order number (as typed) was tried with a wrong phone on one day (Asia/Shanghai).

    The row, not the cache, is the source of truth for the daily lock: a Redis flush must not unlock an order
    number a guesser has been working on. Unknown numbers are counted too, so a lock tells nothing about
    whether the order exists."""

    key = models.CharField(_("order number tried"), max_length=64)
    day = models.DateField(_("day"))
    count = models.PositiveIntegerField(_("failed tries"), default=0)
    updated_at = models.DateTimeField(_("last try"), auto_now=True)

    class Meta:
        verbose_name = _("failed order proof")
        verbose_name_plural = _("failed order proofs")
        constraints = [models.UniqueConstraint(fields=["key", "day"], name="prooffailure_unique_key_day")]

    def __str__(self) -> str:
        return f"{self.key} {self.day}: {self.count}"
