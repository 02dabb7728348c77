"""The customer API's own rows: failed order proofs (the daily lock) and WeChat users bound to buyers."""

from django.db import models
from django.db.models import Q
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


class WeChatBinding(models.Model):
    """A WeChat user of the mini-program tied to the buyer of an order they proved, so they need not prove again.

    The openid is kept only as a keyed digest (HMAC with the site's secret key): nothing in the hub can show it, and
    a copied table names nobody. Unbinding keeps the row with ``unbound_at`` set, so support can see it happened;
    at most one live binding per (app, openid)."""

    app_id = models.CharField(_("mini-program app id"), max_length=32)
    openid_digest = models.CharField(_("openid digest"), max_length=64)
    order = models.ForeignKey("orders.Order", on_delete=models.CASCADE, related_name="+",
                              verbose_name=_("proven order"))
    # The phone the buyer typed in that proof (a keyed digest, as in their token): still shown to them unmasked.
    phone_digest = models.CharField(_("typed phone digest"), max_length=64, blank=True)
    created_at = models.DateTimeField(_("bound at"), auto_now_add=True)
    last_login_at = models.DateTimeField(_("last login"), null=True, blank=True)
    unbound_at = models.DateTimeField(_("unbound at"), null=True, blank=True)

    class Meta:
        verbose_name = _("WeChat binding")
        verbose_name_plural = _("WeChat bindings")
        constraints = [models.UniqueConstraint(fields=["app_id", "openid_digest"], condition=Q(unbound_at__isnull=True),
                                               name="wechatbinding_one_live_per_openid")]

    def __str__(self) -> str:
        return f"WeChat binding {self.pk} → order {self.order_id}"
