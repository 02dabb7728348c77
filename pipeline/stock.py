"""Stock flows that reach beyond inventory: after a stock change commits, orders awaiting the SKUs that
gained stock try again and the channel stock flush is asked for sooner than the next beat tick.

The inventory services change the counters and mark the channel stock to push in one transaction; the
wrappers here call them and schedule the follow-up work after commit. Views, the API, the admin and
the Excel import call these wrappers, not inventory.services directly, whenever stock can go up.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.core.cache import cache
from django.db import transaction

from connectors import stock_push
from inventory import excel
from inventory import selectors as stock_selectors
from inventory import services as stock
from inventory.models import StockLevel
from oms.effects import task_after_commit

RETRY_TASK = "inventory.tasks.retry_awaiting_stock_task"
FLUSH_TASK = "connectors.tasks.flush_channel_stock_task"
FLUSH_GATE = "channel-stock-flush"
FLUSH_DELAY_SECONDS = 1.0


# --- Follow-up work after commit -------------------------------------------------------------------

def awaiting_stock_retry_after_commit(*, sku_ids: Iterable[int]) -> None:
    """Once the transaction commits, orders waiting for these SKUs (or bundles made of them) try again."""
    ids = sorted(set(sku_ids))
    if ids:
        task_after_commit(RETRY_TASK, sku_ids=ids)


def channel_stock_flush_soon() -> None:
    """Once the transaction commits, ask for a channel stock flush within a second. The marks are
    already committed with the change, so this only shortens the wait for the beat's next flush."""
    transaction.on_commit(_flush_soon)


def _flush_soon() -> None:
    # One flush a second at most however many changes ask (cache.add is atomic on Redis).
    if cache.add(FLUSH_GATE, 1, timeout=FLUSH_DELAY_SECONDS):
        task_after_commit(FLUSH_TASK, countdown=FLUSH_DELAY_SECONDS)


def channel_stock_flush() -> dict[str, int]:
    """One flush (the flush task's body); when changes arrived meanwhile another is asked for."""
    counts = stock_push.channel_stock_flush()
    if not counts.get("busy") and stock_push.channel_stock_flush_wanted():
        if counts.get("calls", 0) >= stock_push.BACKLOG_PUSHES:
            # A burst across many SKUs is still arriving: the next flush starts now rather than behind the
            # one-second gate (a flush already running turns it away and asks again: never two at once).
            task_after_commit(FLUSH_TASK)
        else:
            # A few SKUs changing again and again (a hot SKU in a sale): at most one push a second each.
            _flush_soon()
    return counts


def _stock_gained(sku_ids: Iterable[int]) -> None:
    awaiting_stock_retry_after_commit(sku_ids=sku_ids)
    channel_stock_flush_soon()


# --- Stock changes ------------------------------------------------------------------------------------

def stock_receive(*, warehouse_id: int, sku_id: int, quantity: int, reference: str = "", note: str = "",
                  actor=None) -> StockLevel:
    """Goods arrived (inventory.services.stock_receive); orders awaiting the SKU are retried after commit."""
    row = stock.stock_receive(warehouse_id=warehouse_id, sku_id=sku_id, quantity=quantity, reference=reference,
                              note=note, actor=actor)
    _stock_gained({sku_id})
    return row


def stock_adjust(*, warehouse_id: int, sku_id: int, delta: int, reason: str, reference: str = "",
                 actor=None) -> StockLevel:
    """Correct on hand (inventory.services.stock_adjust); a rise retries the orders awaiting the SKU."""
    row = stock.stock_adjust(warehouse_id=warehouse_id, sku_id=sku_id, delta=delta, reason=reason,
                             reference=reference, actor=actor)
    if delta > 0:
        awaiting_stock_retry_after_commit(sku_ids={sku_id})
    channel_stock_flush_soon()
    return row


def stock_take(*, warehouse_id: int, sku_id: int, counted: int, reference: str = "", actor=None) -> StockLevel:
    """Set on hand to the count (inventory.services.stock_take); a rise retries the orders awaiting the SKU.

    Whether it rose is read around the service's own lock: a change slipping in between can only cause
    one retry too many or too few, and the periodic retry sweep catches the latter.
    """
    before = stock_selectors.stock_on_hand(warehouse_id=warehouse_id, sku_id=sku_id)
    row = stock.stock_take(warehouse_id=warehouse_id, sku_id=sku_id, counted=counted, reference=reference,
                           actor=actor)
    if row.on_hand > before:
        awaiting_stock_retry_after_commit(sku_ids={sku_id})
    channel_stock_flush_soon()
    return row


def stock_take_many(*, counts: list[stock.Count], reference: str = "", actor=None) -> int:
    """Apply a count sheet (inventory.services.stock_take_many); returns the rows applied."""
    raised = stock.stock_take_many(counts=counts, reference=reference, actor=actor)
    awaiting_stock_retry_after_commit(sku_ids=raised)
    channel_stock_flush_soon()
    return len(counts)


def count_sheet_import(*, file, reference: str = "", actor=None) -> excel.CountSheetReport:
    """Read, check and apply an uploaded count sheet (inventory.excel); SKUs counted up retry their
    waiting orders after commit."""
    report = excel.count_sheet_import(file=file, reference=reference, actor=actor)
    if report.applied:
        awaiting_stock_retry_after_commit(sku_ids=report.raised_sku_ids)
        channel_stock_flush_soon()
    return report


def sku_set_safety_stock(*, sku_id: int, safety_stock: int) -> bool:
    """Change a SKU's safety stock (inventory.services); lowering it retries the orders awaiting the SKU."""
    freed = stock.sku_set_safety_stock(sku_id=sku_id, safety_stock=safety_stock)
    if freed:
        awaiting_stock_retry_after_commit(sku_ids={sku_id})
    channel_stock_flush_soon()
    return freed


def stock_release_for_order(*, order_id: int, reference: str = "") -> int:
    """Give the order's reserved stock back (inventory.services.stock_release_for_order); orders waiting
    for those SKUs are retried after commit. Call it with the order locked, as the order flows do."""
    sku_ids = stock_selectors.reserved_sku_ids(order_id=order_id)
    units = stock.stock_release_for_order(order_id=order_id, reference=reference)
    if units:
        _stock_gained(sku_ids)
    return units


def stock_return_restock(*, warehouse_id: int, sku_id: int, quantity: int, reference: str = "", note: str = "",
                         actor=None) -> StockLevel:
    """A resalable return back into sellable stock (inventory.services.stock_return_restock); as after a
    receipt, orders awaiting the SKU are retried and the channel stock flushed after commit."""
    row = stock.stock_return_restock(warehouse_id=warehouse_id, sku_id=sku_id, quantity=quantity,
                                     reference=reference, note=note, actor=actor)
    _stock_gained({sku_id})
    return row
