"""The Pinduoduo connector: polls order.number.list.increment.get in 30-minute windows, pages backwards."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import ClassVar

from connectors.base import Connector, PermanentError, RawOrder, WebhookDelivery, split_windows
from connectors.pdd.client import PddClient, parse_pdd_time
from connectors.pdd.mapping import map_pdd_order

PAGE_SIZE = 100  # the API's maximum

# The hub's carrier codes → PDD logistics company ids (pdd.logistics.companies.get). These are the
# ids the PDD sandbox uses; the real platform's ids are NOT CONFIRMED — check them against
# logistics.companies.get before a live store ships. A numeric carrier_code is taken as a PDD id.
CARRIER_IDS = {"SF": 44, "ZTO": 115, "YTO": 85, "STO": 1, "YUNDA": 121, "EMS": 118}

_ORDER_SN = re.compile(r"^\d{6}-\d+$")  # yyMMdd-digits, e.g. 240318-422796379670125


class PddConnector(Connector):
    platform: ClassVar[str] = "pdd"
    max_window: ClassVar[timedelta] = timedelta(minutes=30)  # increment.get refuses a longer span
    # PDD advises keeping end_updated_at at least 3 minutes behind its clock: later updates may
    # not be queryable yet. The poller ends its windows this far before now.
    lag: ClassVar[timedelta] = timedelta(minutes=3)

    def make_client(self) -> PddClient:
        return PddClient.from_credentials(self.credentials, timeout=self.timeout)

    map_order = staticmethod(map_pdd_order)

    # --- Polling -----------------------------------------------------------------------------------

    def poll(self, *, start: datetime, end: datetime) -> Iterator[RawOrder]:
        """Every order updated in [start, end), each once, as the full ORDER object the list returns."""
        seen: set[str] = set()
        for window_start, window_end in split_windows(start, end, self.max_window):
            for order in self._window_orders(window_start, window_end):
                raw = _raw_order(order)
                # Adjacent windows share their boundary second, and an order updated while we page
                # can show up on two pages: one copy per order per poll is enough.
                if raw.platform_order_id in seen:
                    continue
                seen.add(raw.platform_order_id)
                yield raw

    def _window_orders(self, start: datetime, end: datetime) -> Iterator[dict]:
        def page(number: int) -> dict:
            return self.client.order_number_list_increment_get(start_updated_at=start, end_updated_at=end,
                                                               page=number, page_size=PAGE_SIZE)

        first = page(1)
        pages = math.ceil(int(first.get("total_count") or 0) / PAGE_SIZE)
        if pages <= 1:
            yield from first["order_sn_list"]
            return
        # Results are sorted by updated_at descending: an order updated while we page leaves this
        # window and shifts later pages forward, so reading from the last page back to the first
        # (PDD's own advice) never skips one; page 1 is read again for the same reason.
        for number in range(pages, 0, -1):
            yield from page(number)["order_sn_list"]

    def fetch_order(self, platform_order_id: str) -> RawOrder:
        order_sn = str(platform_order_id).strip()
        if not _ORDER_SN.match(order_sn):
            raise PermanentError(f"PDD order_sn looks like 240318-422796379670125, got {platform_order_id!r}",
                                 code="invalid_order_sn")
        return _raw_order(self.client.order_information_get(order_sn))

    # --- Push --------------------------------------------------------------------------------------

    def parse_webhook(self, *, headers: Mapping[str, str], body: bytes) -> list[WebhookDelivery]:
        raise PermanentError("Pinduoduo pushes come over a WebSocket message service; orders arrive by polling",
                             code="push_unsupported")

    # --- Push-back (used by shipments and the stock push) ------------------------------------------

    def ship(self, *, platform_order_id: str, tracking_number: str, carrier_code: str,
             line_ids: Sequence[str] | None = None) -> dict:
        """Tell PDD the order left with ``carrier_code``; PDD ships whole orders only."""
        logistics_id = carrier_id(carrier_code)
        if line_ids:
            # logistics.online.send has no per-line form; a shipment of every line is still a whole one.
            lines = {line.platform_line_id for line in map_pdd_order(self.fetch_order(platform_order_id).payload).lines}
            if not lines <= set(line_ids):
                raise PermanentError(f"PDD order {platform_order_id}: Pinduoduo ships whole orders only; "
                                     f"lines {sorted(lines - set(line_ids))} are not in this shipment",
                                     code="split_unsupported")
        return self.client.logistics_online_send(order_sn=platform_order_id, logistics_id=logistics_id,
                                                 tracking_number=tracking_number)

    # After-sales already agreed (4, 5 refunding; 10 refunded) and those waiting for the seller (2, 3).
    REFUND_AGREED = {4, 5, 10}
    REFUND_AGREEABLE = {2, 3}

    def refund(self, *, platform_order_id: str, platform_after_sale_id: str, amount, currency: str, key: str,
               line_ids: Sequence[str] | None = None) -> dict:
        """Agree to the buyer's after-sale ``platform_after_sale_id`` on PDD (pdd.refund.agree).

        PDD refunds what the after-sale asks for (the call takes no amount) and has no idempotency key: the
        after-sale's status is read first, and one already agreed (our earlier call whose answer was lost) is not
        agreed again.
        """
        after_sales_id = str(platform_after_sale_id or "").strip()
        if not after_sales_id:
            raise PermanentError("PDD refunds only a buyer's after-sale: the ticket has no PDD after-sale id",
                                 code="no_after_sale")
        current = self.client.refund_information_get(after_sales_id=after_sales_id, order_sn=platform_order_id)
        status = int(current.get("after_sales_status") or 0)
        if status in self.REFUND_AGREED:
            return {"platform_refund_id": after_sales_id, "already": True, "after_sale": current}
        if status not in self.REFUND_AGREEABLE:
            raise PermanentError(f"PDD after-sale {after_sales_id} is in status {status}: it cannot be agreed",
                                 code="after_sale_state")
        result = self.client.refund_agree(after_sales_id=after_sales_id, order_sn=platform_order_id,
                                          operate_desc=f"OMS {key}")
        return {"platform_refund_id": after_sales_id, **result}

    def set_stock(self, *, platform_product_id: str, quantity: int, platform_sku_id: str | None = None,
                  sku: str | None = None) -> dict:
        """Overwrite the sellable quantity of one SKU of a goods (sku_id wins over the merchant code)."""
        return self.client.goods_quantity_update(goods_id=platform_product_id, quantity=quantity,
                                                 sku_id=platform_sku_id or None,
                                                 outer_id=None if platform_sku_id else sku, update_type=1)


def carrier_id(carrier_code: str) -> int:
    """PDD's logistics_id for one of the hub's carrier codes (or a PDD id given as digits)."""
    code = str(carrier_code).strip().upper()
    if code.isdigit():
        return int(code)
    try:
        return CARRIER_IDS[code]
    except KeyError:
        raise PermanentError(f"no PDD logistics_id for carrier {carrier_code!r}; known: "
                             f"{', '.join(sorted(CARRIER_IDS))} (or give PDD's numeric id)",
                             code="unknown_carrier") from None


def _raw_order(order: dict) -> RawOrder:
    if not isinstance(order, dict) or not str(order.get("order_sn") or "").strip():
        raise PermanentError(f"PDD answered an order without order_sn: {str(order)[:200]}", code="invalid_payload")
    order_sn = str(order["order_sn"]).strip()
    try:
        updated_at = parse_pdd_time(str(order["updated_at"])).astimezone(UTC)
    except (KeyError, ValueError):
        raise PermanentError(f"PDD order {order_sn}: updated_at {order.get('updated_at')!r} is not "
                             "yyyy-MM-dd HH:mm:ss", code="invalid_payload") from None
    return RawOrder(platform_order_id=order_sn, updated_at=updated_at, payload=order)
