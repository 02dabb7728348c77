"""Filters of the parcel list (django-filter)."""

from __future__ import annotations

import django_filters
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from fulfillment.carriers.formatting import normalize_tracking_number
from fulfillment.models import Carrier, Shipment, ShipmentLine, ShipmentStatus
from inventory.models import Warehouse


class ShipmentFilter(django_filters.FilterSet):
    warehouse = django_filters.ModelChoiceFilter(
        queryset=Warehouse.objects.order_by("priority", "code"),
        to_field_name="code",
        label=_("Warehouse"),
        empty_label=_("All warehouses"),
    )
    status = django_filters.MultipleChoiceFilter(choices=ShipmentStatus.choices, label=_("Status"))
    carrier = django_filters.ModelChoiceFilter(
        queryset=Carrier.objects.order_by("code"),
        to_field_name="code",
        label=_("Carrier"),
        empty_label=_("Any carrier"),
    )
    order = django_filters.CharFilter(label=_("Order no. / platform id"), method="filter_order")
    tracking = django_filters.CharFilter(label=_("Tracking / parcel no."), method="filter_tracking")

    class Meta:
        model = Shipment
        fields = ["warehouse", "status", "carrier", "order", "tracking"]

    def filter_order(self, queryset, name, value):
        value = value.strip()
        if not value:
            return queryset
        lines = ShipmentLine.objects.filter(
            Q(order__number__iexact=value) | Q(order__platform_order_id=value)
        )
        return queryset.filter(Q(pk__in=lines.values("shipment_id")) | Q(order_numbers__icontains=value))

    def filter_tracking(self, queryset, name, value):
        value = value.strip()
        if not value:
            return queryset
        return queryset.filter(Q(tracking_number=normalize_tracking_number(value)) | Q(number__iexact=value))
