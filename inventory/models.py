"""Warehouses and SKUs (the master data the order core validates lines against)."""

from decimal import Decimal

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from oms.models import TimeStampedModel


class Warehouse(TimeStampedModel):
    code = models.SlugField(_("code"), max_length=32, unique=True)
    name = models.CharField(_("name"), max_length=200)
    country = models.CharField(_("country"), max_length=2, default="CN")
    # Provinces (or, abroad, regions/states) this warehouse serves first; empty means anywhere.
    provinces = models.JSONField(_("provinces served"), default=list, blank=True)
    priority = models.PositiveSmallIntegerField(_("priority"), default=100, help_text=_("Lower is tried first."))
    active = models.BooleanField(_("active"), default=True)
    address = models.CharField(_("address"), max_length=255, blank=True, default="")
    contact_phone = models.CharField(_("contact phone"), max_length=32, blank=True, default="")

    class Meta:
        verbose_name = _("warehouse")
        verbose_name_plural = _("warehouses")
        ordering = ["priority", "code"]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


class SKU(TimeStampedModel):
    code = models.CharField(_("merchant SKU code"), max_length=64, unique=True)
    name = models.CharField(_("name"), max_length=255)
    barcode = models.CharField(_("barcode"), max_length=64, blank=True, default="", db_index=True)
    weight_grams = models.PositiveIntegerField(_("weight (g)"), default=0)
    category = models.CharField(_("category"), max_length=64, blank=True, default="")
    is_gift = models.BooleanField(_("gift"), default=False)
    safety_stock = models.PositiveIntegerField(_("safety stock"), default=0)
    list_price = models.DecimalField(_("list price"), max_digits=14, decimal_places=2, default=Decimal("0"))
    active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("SKU")
        verbose_name_plural = _("SKUs")
        ordering = ["code"]
        constraints = [models.CheckConstraint(condition=Q(list_price__gte=0), name="sku_price_not_negative")]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"
