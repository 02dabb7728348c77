"""The order list filters: one for the web list page, and the API's variant of it."""

import django_filters
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from orders.models import Order, OrderStatus, Platform, Priority, Store


class OrderFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(label=_("Order no. / platform id"), method="filter_search")
    store = django_filters.ModelChoiceFilter(queryset=Store.objects.all(), field_name="store", to_field_name="code",
                                             label=_("Store"), empty_label=_("All stores"))
    platform = django_filters.ChoiceFilter(field_name="store__platform", choices=Platform.choices, label=_("Channel"),
                                           empty_label=_("All channels"))
    status = django_filters.MultipleChoiceFilter(choices=OrderStatus.choices, label=_("Status"))
    priority = django_filters.ChoiceFilter(choices=Priority.choices, label=_("Priority"),
                                                empty_label=_("Any priority"))
    placed_from = django_filters.DateFilter(field_name="placed_at", lookup_expr="date__gte", label=_("Placed from"))
    placed_to = django_filters.DateFilter(field_name="placed_at", lookup_expr="date__lte", label=_("Placed to"))

    class Meta:
        model = Order
        fields = ["q", "store", "platform", "status", "priority", "placed_from", "placed_to"]

    def filter_search(self, queryset, name, value):
        value = value.strip()
        if not value:
            return queryset
        return queryset.filter(Q(number__iexact=value) | Q(platform_order_id=value) | Q(number__endswith=value))


class OrderAPIFilter(OrderFilter):
    """The API list: the store by its exact code, like the stock API's warehouse and SKU filters.

    An unknown code lists nothing (200) instead of refusing the request: a code is a plain string to
    a caller, and the schema cannot list the stores that exist.
    """

    store = django_filters.CharFilter(field_name="store__code", label=_("Store code"))
