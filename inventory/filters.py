"""Stock level filters: one for the web list (search, category, a low-stock checkbox), one for the API."""

import django_filters
from django import forms
from django.utils.translation import gettext_lazy as _
from django_filters import rest_framework as api_filters

from inventory.models import StockLevel, Warehouse
from inventory.selectors import sku_categories, stock_level_low, stock_level_search


def _low_only(queryset, name, value):
    return stock_level_low(queryset) if value else queryset


class StockLevelFilter(django_filters.FilterSet):
    """The web list. ``low`` is a checkbox: absent means "all rows", so it only ever narrows."""

    warehouse = django_filters.ModelChoiceFilter(queryset=Warehouse.objects.order_by("priority", "code"),
                                                 field_name="warehouse", to_field_name="code", label=_("Warehouse"),
                                                 empty_label=_("All warehouses"))
    q = django_filters.CharFilter(label=_("SKU code / name / barcode"), method="filter_search")
    category = django_filters.ChoiceFilter(field_name="sku__category", choices=sku_categories, label=_("Category"),
                                           empty_label=_("All categories"))
    low = django_filters.BooleanFilter(label=_("Low stock only"), method=_low_only, widget=forms.CheckboxInput)

    class Meta:
        model = StockLevel
        fields = ["warehouse", "q", "category", "low"]

    def filter_search(self, queryset, name, value):
        return stock_level_search(queryset, value)


class StockLevelAPIFilter(api_filters.FilterSet):
    """The API list: exact warehouse and SKU codes; ``low=true`` keeps the rows below safety stock."""

    warehouse = api_filters.CharFilter(field_name="warehouse__code", label=_("Warehouse code"))
    sku = api_filters.CharFilter(field_name="sku__code", label=_("SKU code"))
    # A choice rather than a BooleanFilter: that one silently ignores a value it cannot read (low=yes),
    # which would answer every row to a client that asked for the low ones.
    low = api_filters.ChoiceFilter(choices=[("true", "true"), ("false", "false"), ("1", "1"), ("0", "0")],
                                   method="filter_low", label=_("Only rows whose available stock is below zero"))

    class Meta:
        model = StockLevel
        fields = ["warehouse", "sku", "low"]

    def filter_low(self, queryset, name, value):
        return _low_only(queryset, name, value in ("true", "1"))
