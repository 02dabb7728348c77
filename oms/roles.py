"""The five roles as Django groups and the permissions each holds; `roles_sync` makes the database match."""

from django.contrib.auth.models import Group, Permission
from django.db import transaction

WAREHOUSE = "warehouse"
CUSTOMER_SERVICE = "customer_service"
FINANCE = "finance"
MANAGER = "manager"
ADMIN = "admin"
ROLES = [WAREHOUSE, CUSTOMER_SERVICE, FINANCE, MANAGER, ADMIN]

_VIEW_ORDERS = ["orders.view_order", "orders.view_orderline", "orders.view_orderevent", "orders.view_store"]
_VIEW_STOCK = ["inventory.view_warehouse", "inventory.view_sku"]
# Warehouse staff and managers see the whole stock picture and may receive, count and adjust
# (add_stockmovement: every such change writes a ledger row).
_MOVE_STOCK = ["inventory.view_stocklevel", "inventory.view_stockmovement", "inventory.view_reservation",
               "inventory.add_stockmovement", "inventory.view_bundlecomponent", "inventory.view_platformskumapping"]

# Later issues add their apps' permissions here (tickets, print jobs...).
_VIEW_SHIPMENTS = ["fulfillment.view_shipment", "fulfillment.view_wave", "fulfillment.view_carrier",
                   "fulfillment.view_warehouserule", "fulfillment.view_carrierrule",
                   "fulfillment.view_routingdecision"]
# Move parcels on the kanban, scan-pack, run waves; routing overrides, merge and split.
_WORK_SHIPMENTS = ["fulfillment.move_shipment", "fulfillment.add_wave", "fulfillment.route_shipment"]
_VIEW_CHANNELS = ["connectors.view_channelsyncstate", "connectors.view_inboxmessage"]
# Sync now, replay/discard dead letters, set up stores and their credentials.
_RUN_CHANNELS = ["connectors.change_channelsyncstate", "connectors.change_inboxmessage", "orders.change_store",
                 "orders.add_store"]
# Print labels, pick lists and test pages; retry, reprint and cancel jobs; see printers and bridges.
_PRINT = ["printing.print", "printing.view_printjob", "printing.view_printer", "printing.view_printbridge"]
# Set up printers and LAN print bridges (a bridge's token is shown once, at creation).
_SET_UP_PRINTING = ["printing.add_printer", "printing.change_printer", "printing.add_printbridge",
                    "printing.change_printbridge"]

# One permission per order transition (orders.services.USER_TRANSITION_PERMISSIONS), owned by the role whose
# work it is. The warehouse only moves goods: start fulfilment, ship (in part), deliver; these are
# also the steps its parcels drive. Money and the end of an order's life are not the warehouse's:
# marking paid (manual stores only; platforms report payment) belongs to finance and customer
# service, approving, completing, cancelling and closing to customer service and managers.
_WAREHOUSE_STEPS = ["orders.start_fulfilment_order", "orders.ship_partially_order", "orders.ship_order",
                    "orders.deliver_order"]
_PAY = ["orders.pay_order"]
_SERVICE_STEPS = [*_PAY, "orders.approve_order", *_WAREHOUSE_STEPS, "orders.complete_order",
                  "orders.cancel_order", "orders.close_order"]

# After-sales: customer service opens and works tickets and records refunds; the warehouse receives and grades
# returns; finance sees tickets and refunds.
_VIEW_TICKETS = ["aftersales.view_ticket", "aftersales.view_ticketline", "aftersales.view_ticketevent",
                 "aftersales.view_returnunit", "aftersales.view_refund"]
_WORK_TICKETS = [*_VIEW_TICKETS, "aftersales.add_ticket", "aftersales.work_ticket", "aftersales.add_refund"]
_RECEIVE_RETURNS = [*_VIEW_TICKETS, "aftersales.receive_return"]

# Reconciliation: import settlement files and bank statements, work the differences, close and reopen months.
_RECONCILE = ["finance.view_paymentsnapshot", "finance.view_settlementfile", "finance.add_settlementfile",
              "finance.view_settlementrow", "finance.view_difference", "finance.change_difference",
              "finance.view_financeperiod", "finance.change_financeperiod", "finance.view_bankmapping",
              "finance.add_bankmapping", "finance.change_bankmapping"]

ROLE_PERMISSIONS: dict[str, list[str]] = {
    WAREHOUSE: [*_VIEW_ORDERS, *_VIEW_STOCK, *_MOVE_STOCK, *_WAREHOUSE_STEPS, *_VIEW_SHIPMENTS,
                *_WORK_SHIPMENTS, *_PRINT, *_RECEIVE_RETURNS],
    CUSTOMER_SERVICE: [*_WORK_TICKETS, *_VIEW_ORDERS, *_VIEW_STOCK, "inventory.view_stocklevel", "orders.view_pii",
                       "orders.add_order", "orders.hold_order", *_SERVICE_STEPS,
                       *_VIEW_CHANNELS, *_VIEW_SHIPMENTS],
    FINANCE: [*_VIEW_ORDERS, *_RECONCILE, *_PAY, *_VIEW_TICKETS],
    MANAGER: [*_VIEW_ORDERS, *_VIEW_STOCK, *_MOVE_STOCK, "orders.view_pii", "orders.add_order", "orders.hold_order",
              *_SERVICE_STEPS, *_RECONCILE, *_VIEW_CHANNELS,
              *_RUN_CHANNELS, *_VIEW_SHIPMENTS, *_WORK_SHIPMENTS, "fulfillment.edit_routing_rules",
              "fulfillment.change_carrier", "fulfillment.add_carrier", *_PRINT, *_SET_UP_PRINTING, *_WORK_TICKETS,
              "aftersales.receive_return", "aftersales.change_aftersalespolicy", "aftersales.view_aftersalespolicy",
              "aftersales.change_autoapprovalrule", "aftersales.add_autoapprovalrule",
              "aftersales.view_autoapprovalrule"],
    ADMIN: ["*"],  # every permission; admins are also staff and use the Django admin
}


def _permissions(codes: list[str]) -> list[Permission]:
    if codes == ["*"]:
        return list(Permission.objects.all())
    found = []
    for code in codes:
        app_label, codename = code.split(".", 1)
        found.append(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    return found


@transaction.atomic
def roles_sync() -> dict[str, Group]:
    """Create or update the role groups so each holds exactly its permissions. Safe to run again."""
    groups = {}
    for role in ROLES:
        group, _created = Group.objects.get_or_create(name=role)
        group.permissions.set(_permissions(ROLE_PERMISSIONS[role]))
        groups[role] = group
    return groups


def user_roles(user) -> list[str]:
    return list(user.groups.filter(name__in=ROLES).values_list("name", flat=True))
