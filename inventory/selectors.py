"""Read helpers of the inventory pool."""

from inventory.models import SKU


def sku_codes_missing(codes: list[str]) -> list[str]:
    """The codes among ``codes`` that are not active SKUs, in the order given."""
    known = set(SKU.objects.filter(code__in=set(codes), active=True).values_list("code", flat=True))
    return [code for code in codes if code not in known]


def sku_titles(codes: list[str]) -> dict[str, str]:
    return dict(SKU.objects.filter(code__in=set(codes)).values_list("code", "name"))
