"""Read helpers of the inventory pool."""

from django.db.models import F, Q, QuerySet

from inventory.models import SKU, StockLevel, StockMovement, Warehouse


def sku_codes_missing(codes: list[str]) -> list[str]:
    """The codes among ``codes`` that are not active SKUs, in the order given."""
    known = set(SKU.objects.filter(code__in=set(codes), active=True).values_list("code", flat=True))
    return [code for code in codes if code not in known]


def sku_ids_and_titles(codes: list[str]) -> dict[str, tuple[int, str]]:
    """code → (SKU id, name) for the active SKUs among ``codes``."""
    return {code: (pk, name) for pk, code, name in
            SKU.objects.filter(code__in=set(codes), active=True).values_list("pk", "code", "name")}


# --- Stock pages and API ------------------------------------------------------------------------

def stock_level_queryset() -> QuerySet[StockLevel]:
    """Every stock row with its warehouse and SKU joined in (one query per page, no N+1).

    ``free`` is the annotated available quantity (on hand − reserved − safety stock) so lists can
    filter and sort on it in SQL; the model's ``available`` property gives the same number.
    """
    return (StockLevel.objects.select_related("warehouse", "sku")
            .annotate(free=F("on_hand") - F("reserved") - F("safety_stock"))
            .order_by("warehouse__priority", "warehouse__code", "sku__code", "pk"))


def stock_level_low(queryset: QuerySet[StockLevel]) -> QuerySet[StockLevel]:
    """Low stock: the free stock (on hand − reserved) is under the safety stock, i.e. available < 0.

    One rule everywhere (list highlight, low page, API ``low=true``). A row with no safety stock is
    never "low" by this rule even at zero: without a safety stock nobody has said what low means.
    """
    return queryset.filter(on_hand__lt=F("reserved") + F("safety_stock"))


def stock_level_low_count() -> int:
    return stock_level_low(StockLevel.objects.all()).count()


def stock_level_search(queryset: QuerySet[StockLevel], text: str) -> QuerySet[StockLevel]:
    """SKU code or name contains the text, or the barcode equals it (a scanned barcode)."""
    text = text.strip()
    if not text:
        return queryset
    return queryset.filter(Q(sku__code__icontains=text) | Q(sku__name__icontains=text) | Q(sku__barcode=text))


def sku_categories() -> list[tuple[str, str]]:
    """The SKU categories in use, as form choices."""
    categories = SKU.objects.exclude(category="").values_list("category", flat=True).distinct().order_by("category")
    return [(category, category) for category in categories]


def warehouses_active() -> QuerySet[Warehouse]:
    return Warehouse.objects.filter(active=True).order_by("priority", "code")


def sku_stock_levels(*, sku_id: int) -> list[StockLevel]:
    """The SKU's stock in each warehouse that has a row for it."""
    return list(stock_level_queryset().filter(sku_id=sku_id))


def sku_movements(*, sku_id: int) -> QuerySet[StockMovement]:
    """The SKU's ledger, newest first, with what each row shows joined in."""
    return (StockMovement.objects.filter(sku_id=sku_id)
            .select_related("warehouse", "order", "actor")
            .order_by("-created_at", "-id"))
