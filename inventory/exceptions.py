"""Domain errors raised by the inventory services."""

from oms.exceptions import ConflictError, NotFoundError, ValidationFailed


class StockInvalid(ValidationFailed):
    code = "stock_invalid"


class SKUNotFound(NotFoundError):
    code = "sku_not_found"


class WarehouseNotFound(NotFoundError):
    code = "warehouse_not_found"


class WarehouseInactive(ValidationFailed):
    code = "warehouse_inactive"


class StockConflict(ConflictError):
    """The change would break a stock rule (below reserved, below zero)."""

    code = "stock_conflict"
