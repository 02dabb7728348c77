"""The demo data's entry point: demo_load runs every area's loader in order and reports what it made."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from aftersales.models import Ticket
from demo.aftersales import STORE as AFTERSALES_STORE
from demo.aftersales import TOUR_TRACKING, aftersales_setup_load, tickets_load
from demo.catalog import SKUS, WAREHOUSES, skus_load, stock_load, warehouses_load
from demo.desk import desk_buyers_load, desk_buyers_summary
from demo.finance import finance_load
from demo.fulfillment import CARRIERS, fulfilment_load
from demo.orders import SCARCE_SKU, STATUS_MIX, orders_load, scarcity_load
from demo.printers import VPRINTER_PORTS, printing_load
from demo.stores import channel_stock_mark, sku_mappings_load, stores_load
from demo.users import DEMO_SCOPES, scopes_load, users_load
from orders.models import Order


def demo_load(*, orders: int = 300, seed: int = 2026,
              log: Callable[[str], None] | None = None) -> list[tuple[str, str, str | None]]:
    """Load the demo data; safe to run again (nothing is duplicated, changed passwords are kept).

    Returns one ``(username, role, password)`` per demo user. ``password`` is None when the account
    existed before with another password, since a rerun never resets it.
    """
    say = log or (lambda _message: None)
    logins, users_created = users_load()
    say(f"Roles synced; demo users: {len(logins)} ({users_created} new), each with an API token.")
    stores, stores_created = stores_load()
    say(f"Stores: {len(stores)} ({stores_created} new).")
    say(f"Warehouses: {len(WAREHOUSES)} ({warehouses_load()} new).")
    say(f"Staff scopes: {scopes_load()} new (the warehouse user works in {', '.join(DEMO_SCOPES['warehouse'])}).")
    say(f"SKUs: {len(SKUS)} ({skus_load()} new).")
    say(f"Opening stock: {stock_load()} receipts.")
    say(f"Carriers: {len(CARRIERS)} ({fulfilment_load()} new), with routing rules and bin locations.")
    say(f"Label printers: {len(VPRINTER_PORTS)} ({printing_load()} new), one per shipping warehouse (virtual).")
    created, skipped = orders_load(count=orders, seed=seed, stores=stores)
    say(f"Orders: {created} created, {skipped} already there.")
    say(f"Orders awaiting stock of {SCARCE_SKU}: {scarcity_load(stores)} new.")
    say(f"Platform SKU mappings: {sku_mappings_load(stores)} new; "
        f"{channel_stock_mark()} SKUs queued for a stock push to the sandboxes.")
    rules = aftersales_setup_load(stores[AFTERSALES_STORE])
    tickets = tickets_load(stores)
    by_status = Counter(Ticket.objects.filter(store__in=stores.values()).values_list("status", flat=True))
    say(f"After-sales tickets: {tickets} new ({', '.join(f'{s} {n}' for s, n in sorted(by_status.items()))}), "
        f"{rules} new SLA policy/auto-approval rows on {AFTERSALES_STORE}; the return parcel {TOUR_TRACKING} "
        "waits to be scanned at /aftersales/receiving/.")
    say(desk_buyers_summary(created=desk_buyers_load(stores)))
    say(finance_load(stores))
    statuses = Counter(Order.objects.filter(store__in=stores.values()).values_list("status", flat=True))
    say("Demo orders by status: " + ", ".join(f"{status} {statuses[status]}" for status, _w in STATUS_MIX
                                              if statuses[status]))
    return logins
