"""The Taobao/Tmall connector: polls trades.sold.increment.get window by window, pages backwards."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import ClassVar

from connectors.base import (
    Connector,
    PermanentError,
    RawOrder,
    StockPush,
    WebhookDelivery,
    split_windows,
)
from connectors.taobao.client import LIST_FIELDS, TopClient, parse_top_time
from connectors.taobao.mapping import map_taobao_trade

PAGE_SIZE = 100  # the API's maximum


class TaobaoConnector(Connector):
    platform = "taobao"
    max_window = timedelta(days=1)  # trades.sold.increment.get refuses a longer span

    def make_client(self) -> TopClient:
        return TopClient.from_credentials(self.credentials, timeout=self.timeout)

    map_order = staticmethod(map_taobao_trade)

    # --- Polling -----------------------------------------------------------------------------------

    def poll(self, *, start: datetime, end: datetime) -> Iterator[RawOrder]:
        """Every trade modified in [start, end), each once, with its full details."""
        seen: set[str] = set()
        for window_start, window_end in split_windows(start, end, self.max_window):
            for summary in self._window_trades(window_start, window_end):
                tid = _tid(summary)
                # Adjacent windows share their boundary second, and a trade modified while we page
                # can show up on two pages: one full fetch per trade per poll is enough.
                if tid in seen:
                    continue
                seen.add(tid)
                yield self.fetch_order(tid)

    def _window_trades(self, start: datetime, end: datetime) -> Iterator[dict]:
        first = self.client.trades_sold_increment_get(start_modified=start, end_modified=end, page_no=1,
                                                      page_size=PAGE_SIZE, fields=LIST_FIELDS, use_has_next=False)
        pages = math.ceil(int(first.get("total_results") or 0) / PAGE_SIZE)
        if pages <= 1:
            yield from first["trades"]
            return
        # Results are sorted by modified descending: a trade modified while we page jumps out of
        # this window and shifts later pages forward, so reading from the last page back to the
        # first (TOP's own advice) never skips one; page 1 is read again for the same reason.
        for page_no in range(pages, 0, -1):
            page = self.client.trades_sold_increment_get(start_modified=start, end_modified=end, page_no=page_no,
                                                         page_size=PAGE_SIZE, fields=LIST_FIELDS,
                                                         use_has_next=False)
            yield from page["trades"]

    def fetch_order(self, platform_order_id: str) -> RawOrder:
        tid = str(platform_order_id).strip()
        if not tid.isdigit():
            raise PermanentError(f"Taobao tid must be digits, got {platform_order_id!r}", code="invalid_tid")
        trade = self.client.trade_fullinfo_get(tid)
        return RawOrder(platform_order_id=_tid(trade), updated_at=_modified(trade), payload=trade)

    # --- Push --------------------------------------------------------------------------------------

    def parse_webhook(self, *, headers: Mapping[str, str], body: bytes) -> list[WebhookDelivery]:
        raise PermanentError("Taobao pushes (TMC) are not supported; orders arrive by polling",
                             code="push_unsupported")

    # --- Push-back (used by shipments and the stock push) ------------------------------------------

    def ship(self, *, platform_order_id: str, tracking_number: str, carrier_code: str,
             line_ids: Sequence[str] | None = None) -> dict:
        """Tell Taobao the trade (or only the sub-orders ``line_ids``) left with ``carrier_code``."""
        return self.client.logistics_offline_send(tid=platform_order_id, out_sid=tracking_number,
                                                  company_code=carrier_code, is_split=bool(line_ids),
                                                  sub_tid=list(line_ids) if line_ids else None)

    def refund(self, *, platform_order_id: str, platform_after_sale_id: str, amount: Decimal, currency: str,
               key: str, line_ids: Sequence[str] | None = None) -> dict:
        """Agree to the buyer's refund request ``platform_after_sale_id`` (Taobao's refund_id) for ``amount``.

        Taobao refunds only what a buyer asked for, so a ticket without a refund_id cannot be refunded here. The
        refund's status is read first: one already SUCCESS (our earlier agree whose answer was lost) is not
        agreed again, which is what keeps a retry from refunding twice; Taobao has no idempotency key.
        """
        refund_id = str(platform_after_sale_id or "").strip()
        if not refund_id.isdigit():
            raise PermanentError("Taobao refunds only a buyer's refund request: the ticket has no Taobao refund_id",
                                 code="no_after_sale")
        current = self.client.refund_get(refund_id)
        if current.get("status") == "SUCCESS":
            return {"platform_refund_id": refund_id, "already": True, "refund": current}
        fen = int((Decimal(amount) * 100).to_integral_value())
        result = self.client.rp_refunds_agree(refund_id=refund_id, amount_fen=fen,
                                              version=current.get("refund_version") or "",
                                              phase=current.get("refund_phase") or "")
        return {"platform_refund_id": refund_id, **result}

    def set_stock(self, *, platform_product_id: str, quantity: int, platform_sku_id: str | None = None,
                  sku: str | None = None) -> dict:
        """Overwrite the sellable quantity of an item (num_iid), or of one of its SKUs."""
        return self.client.item_quantity_update(num_iid=platform_product_id, quantity=quantity,
                                                sku_id=platform_sku_id, outer_id=sku, type=1)

    # Several SKUs of one item go in one taobao.skus.quantity.update; SKUs of different items need a call each
    # (the flusher puts SKUs of one item next to each other). How many SKUs one call may carry is NOT CONFIRMED
    # (API_FACTS.md §2.7): 20 keeps a call small.
    stock_batch_size: ClassVar[int] = 20

    def set_stock_many(self, pushes: list[StockPush]) -> None:
        """One call per item: taobao.skus.quantity.update for two or more SKUs of an item (addressed by sku_id),
        taobao.item.quantity.update for a lone one. A refused call fails all its SKUs (the call is all or nothing
        as far as the facts go)."""
        self.set_stock_per_product(pushes, lambda num_iid, quantities: self.client.skus_quantity_update(
            num_iid=num_iid, quantities=quantities))


def _tid(trade: dict) -> str:
    tid = str(trade.get("tid_str") or trade.get("tid") or "")
    if not tid:
        raise PermanentError(f"Taobao answered a trade without tid: {str(trade)[:200]}", code="invalid_payload")
    return tid


def _modified(trade: dict) -> datetime:
    try:
        return parse_top_time(str(trade["modified"])).astimezone(UTC)
    except (KeyError, ValueError):
        raise PermanentError(f"Taobao trade {_tid(trade)}: modified {trade.get('modified')!r} is not "
                             "yyyy-MM-dd HH:mm:ss", code="invalid_payload") from None
