"""Read helpers of the inventory pool."""

from inventory.models import SKU


def sku_codes_missing(codes: list[str]) -> list[str]:
    """The codes among ``codes`` that are not active SKUs, in the order given."""
    known = set(SKU.objects.filter(code__in=set(codes), active=True).values_list("code", flat=True))
    return [code for code in codes if code not in known]


def sku_ids_and_titles(codes: list[str]) -> dict[str, tuple[int, str]]:
    """code → (SKU id, name) for the active SKUs among ``codes``."""
    return {code: (pk, name) for pk, code, name in
            SKU.objects.filter(code__in=set(codes), active=True).values_list("pk", "code", "name")}
