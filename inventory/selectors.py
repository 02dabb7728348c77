"""Read helpers of the inventory pool."""

from collections import defaultdict
from collections.abc import Iterable

from django.core.exceptions import PermissionDenied
from django.db.models import F, Q, QuerySet

from inventory.models import (
    SKU,
    BundleComponent,
    ChannelStockDirty,
    Reservation,
    ReservationStatus,
    StaffScope,
    StockLevel,
    StockMovement,
    Warehouse,
)
from oms import roles


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


# --- Staff scopes: which warehouses and stores a user works for ----------------------------------

# Cached on the user object: one request asks many times (the page, its pickers, each action).
_SCOPE_CACHE = "_oms_staff_scope"


def _scope_of(user) -> tuple[frozenset[int] | None, frozenset[int] | None]:
    """(warehouse ids, store ids) the user is limited to; None means all."""
    cached = getattr(user, _SCOPE_CACHE, None)
    if cached is not None:
        return cached
    scope: tuple[frozenset[int] | None, frozenset[int] | None] = (None, None)
    # Managers and admins oversee every warehouse whatever a stale scope row says.
    if (user.is_authenticated and not user.is_superuser
            and not user.groups.filter(name__in=[roles.MANAGER, roles.ADMIN]).exists()):
        row = StaffScope.objects.filter(user_id=user.pk).prefetch_related("warehouses", "stores").first()
        if row is not None:
            # Nothing ticked keeps the old behaviour (everything), so existing installs are unchanged.
            warehouses = frozenset(w.pk for w in row.warehouses.all()) or None
            stores = frozenset(s.pk for s in row.stores.all()) or None
            scope = (warehouses, stores)
    setattr(user, _SCOPE_CACHE, scope)
    return scope


def warehouse_ids_for_user(user) -> frozenset[int] | None:
    """The ids of the warehouses the user works for, or None for all of them."""
    return _scope_of(user)[0]


def store_ids_for_user(user) -> frozenset[int] | None:
    """The ids of the stores whose parcels the user sees, or None for all of them."""
    return _scope_of(user)[1]


def user_sees_warehouse(*, user, warehouse_id: int) -> bool:
    warehouse_ids = warehouse_ids_for_user(user)
    return warehouse_ids is None or warehouse_id in warehouse_ids


def scope_filter(queryset: QuerySet, *, user, warehouse: str = "warehouse", store: str | None = None) -> QuerySet:
    """The rows of ``queryset`` within the user's scope; ``warehouse``/``store`` name the lookups to the
    warehouse and (for parcels) the store. An object outside it then simply is not found: a 404 by id
    that says nothing about whether it exists."""
    warehouse_ids, store_ids = _scope_of(user)
    if warehouse_ids is not None:
        queryset = queryset.filter(**{f"{warehouse}__in": warehouse_ids})
    if store is not None and store_ids is not None:
        queryset = queryset.filter(**{f"{store}__in": store_ids})
    return queryset


def warehouses_for_user(*, user) -> QuerySet[Warehouse]:
    """The active shipping warehouses the user works for: what the kanban, wave and printer pickers offer them.
    A quarantine warehouse ships nothing, so it is left out (its stock is on the stock pages)."""
    return scope_filter(warehouses_active().filter(is_quarantine=False), user=user, warehouse="pk")


def warehouse_check_access(*, user, warehouse: Warehouse) -> None:
    """Refuse a page of an explicit warehouse (by its code) outside the user's scope with a 403.

    Pages of one object by id (parcel, wave, print job, printer) answer 404 instead through
    ``scope_filter``, so ids cannot be probed; a warehouse code is no secret, and a clear "not yours" helps.
    """
    if not user_sees_warehouse(user=user, warehouse_id=warehouse.pk):
        raise PermissionDenied


def reservations_for_order(*, order_id: int) -> list:
    """The stock held (or once held) for an order, line by line and warehouse by warehouse."""
    return list(Reservation.objects.filter(order_id=order_id).select_related("warehouse", "sku", "order_line")
                .order_by("order_line__line_no", "pk"))


# --- Channel stock: what the platforms may sell, and what waits to be pushed ----------------------

def available_by_sku(sku_ids: Iterable[int]) -> dict[int, int]:
    """Sellable units per SKU over active warehouses (a bundle: how many whole kits its components make)."""
    sku_ids = set(sku_ids)
    components = defaultdict(list)
    for bundle_id, component_id, quantity in BundleComponent.objects.filter(bundle_id__in=sku_ids).values_list(
            "bundle_id", "component_id", "quantity"):
        components[bundle_id].append((component_id, quantity))
    needed = sku_ids | {c for parts in components.values() for c, _q in parts}
    free: dict[int, int] = defaultdict(int)
    # Quarantine warehouses hold returns that cannot be sold as new: never offered on a channel.
    sellable = StockLevel.objects.filter(sku_id__in=needed, warehouse__active=True, warehouse__is_quarantine=False)
    for sku_id, on_hand, reserved, safety in sellable.values_list("sku_id", "on_hand", "reserved", "safety_stock"):
        free[sku_id] += max(on_hand - reserved - safety, 0)
    result = {}
    for sku_id in sku_ids:
        if sku_id in components:
            result[sku_id] = min((free[c] // q for c, q in components[sku_id]), default=0)
        else:
            result[sku_id] = free[sku_id]
    return result


def channel_stock_marks() -> QuerySet[ChannelStockDirty]:
    """The (store, SKU) pairs whose channel quantity waits to be pushed, oldest mark first."""
    return ChannelStockDirty.objects.order_by("marked_at", "store_id", "sku_id")


def stock_on_hand(*, warehouse_id: int, sku_id: int) -> int:
    """On hand of one stock row (0 when it has none yet)."""
    return StockLevel.objects.filter(warehouse_id=warehouse_id, sku_id=sku_id).values_list(
        "on_hand", flat=True).first() or 0


def reserved_sku_ids(*, order_id: int) -> set[int]:
    """The SKUs the order holds stock of now (components for a bundle line)."""
    return set(Reservation.objects.filter(order_id=order_id, status=ReservationStatus.ACTIVE)
               .values_list("sku_id", flat=True))
