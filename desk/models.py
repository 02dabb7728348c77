"""Customer notes: what customer service wrote down about one buyer, kept across their orders."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

NOTE_MAX_LENGTH = 1000


class CustomerNote(models.Model):
    """A note about a buyer: (store, platform buyer id) and/or a full phone number, never a masked one."""

    # A platform buyer id means something only inside its store; a full phone is the same person everywhere.
    store = models.ForeignKey("orders.Store", null=True, blank=True, on_delete=models.PROTECT, related_name="+",
                              verbose_name=_("store"))
    buyer_id = models.CharField(_("buyer id"), max_length=128, blank=True, default="")
    phone = models.CharField(_("phone"), max_length=32, blank=True, default="")
    text = models.TextField(_("text"), max_length=NOTE_MAX_LENGTH)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+",
                               verbose_name=_("author"))
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("customer note")
        verbose_name_plural = _("customer notes")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(store__isnull=False) & ~Q(buyer_id="")) | ~Q(phone=""),
                name="customernote_identifies_a_buyer"),
        ]
        # The customer view reads a buyer's notes by either key, newest first.
        indexes = [
            models.Index(fields=["store", "buyer_id", "created_at"], name="customernote_buyer_idx"),
            models.Index(fields=["phone", "created_at"], name="customernote_phone_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.text[:40]}"
