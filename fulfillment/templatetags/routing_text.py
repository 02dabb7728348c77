"""Routing rules, services and customer tiers in words: 次晨达 and VIP on screen, never next_morning or 2."""

from django import template
from django.utils.translation import pgettext

from fulfillment.models import ServiceLevel
from orders.models import Priority

register = template.Library()


def _join(words: list[str]) -> str:
    # Chinese lists read 次晨达、特快; English keeps "next morning, express".
    return pgettext("list separator", ", ").join(words)


@register.filter
def service_label(code: str) -> str:
    """One service level's name (an unknown code is shown as it is, so nothing is hidden)."""
    if not code:
        return ""
    try:
        return str(ServiceLevel(code).label)
    except ValueError:
        return code


@register.filter
def service_labels(codes) -> str:
    return _join([service_label(code) for code in codes or []])


@register.filter
def tier_labels(values) -> str:
    """Customer tiers (order priorities) by name: 0 → 普通, 1 → 高, 2 → VIP."""
    words = []
    for value in values or []:
        try:
            words.append(str(Priority(int(value)).label))
        except (TypeError, ValueError):
            words.append(str(value))
    return _join(words)


@register.filter
def word_list(values) -> str:
    """Codes a person typed (countries, provinces, categories, warehouse codes), joined the way the language reads."""
    return _join([str(value) for value in values or []])
