"""Fulfilment operations: build parcels from reservations, move them, pack by scan, ship, merge, split, waves.

These are the parcels' side of each flow; a move that reaches the orders, the platforms, the buyer or the
printers (pick, pack, ship, deliver, the kanban move, an order's cancel, a wave's start) is called through
pipeline.shipping, which runs the parcel's step here and the rest in the same transaction.

One module per area (building, moves, packing, merge_split, overrides, waves, rules; common holds the
lock and transition helpers); everything callers use is re-exported here, so `services.<name>` works.

Lock order everywhere: the orders of a shipment (ascending pk), then the shipment. The order flows
that reach into fulfilment (cancel, close) already hold their order's lock and then lock shipments,
which keeps the same order. Carrier calls (network) never happen inside a transaction.
"""

from fulfillment.services.building import (
    receiver_key,
    routing_record_warehouse,
    routing_record_warehouses,
    shipment_number_next,
    shipments_create_for_order,
    shipments_create_for_orders,
)
from fulfillment.services.merge_split import shipment_split, shipment_unmerge, shipments_merge
from fulfillment.services.moves import (
    EXCEPTION_REASON_MAX,
    OrderShipped,
    ParcelMoved,
    ParcelsCancelled,
    ParcelShipped,
    shipment_check_shippable,
    shipment_mark_delivered,
    shipment_mark_picking,
    shipment_mark_shipped,
    shipment_needs_waybill,
    shipment_raise_exception,
    shipment_resolve,
    shipment_set_tracking_number,
    shipment_unpick,
    shipments_cancel_of_order,
)
from fulfillment.services.overrides import shipment_override_carrier, shipment_override_warehouse
from fulfillment.services.packing import (
    WEIGHT_TOLERANCE_GRAMS,
    WEIGHT_TOLERANCE_RATIO,
    ScanResult,
    missing_items,
    shipment_find_for_scan,
    shipment_mark_packed,
    shipment_scan_item,
    shipment_scan_reset,
)
from fulfillment.services.rules import (
    RULE_POSITION_STEP,
    routing_rule_delete,
    routing_rule_move,
    routing_rule_save,
    routing_rule_toggle,
)
from fulfillment.services.waves import (
    WaveStarted,
    wave_cancel,
    wave_create,
    wave_create_by_rule,
    wave_mark_started,
    wave_number_next,
    wave_remove_shipment,
)

__all__ = [
    "EXCEPTION_REASON_MAX", "RULE_POSITION_STEP", "WEIGHT_TOLERANCE_GRAMS", "WEIGHT_TOLERANCE_RATIO", "OrderShipped",
    "ParcelMoved", "ParcelShipped", "ParcelsCancelled", "ScanResult", "WaveStarted", "missing_items",
    "receiver_key", "routing_record_warehouse", "routing_record_warehouses", "routing_rule_delete", "routing_rule_move", "routing_rule_save",
    "routing_rule_toggle",
    "shipment_check_shippable", "shipment_find_for_scan", "shipment_mark_delivered", "shipment_mark_packed",
    "shipment_mark_picking", "shipment_mark_shipped", "shipment_needs_waybill", "shipment_number_next",
    "shipment_override_carrier", "shipment_override_warehouse", "shipment_raise_exception",
    "shipment_resolve", "shipment_scan_item", "shipment_scan_reset", "shipment_set_tracking_number",
    "shipment_split", "shipment_unmerge", "shipment_unpick",
    "shipments_cancel_of_order", "shipments_create_for_order", "shipments_create_for_orders", "shipments_merge", "wave_cancel", "wave_create",
    "wave_create_by_rule", "wave_mark_started", "wave_number_next", "wave_remove_shipment",
]
