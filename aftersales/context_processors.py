"""The managers' notice on every page: how many open tickets were escalated to them (``escalated_tickets_count``)."""

from aftersales.selectors import tickets_escalated_count
from oms.roles import MANAGER

# Of the roles that work tickets, only managers (and admins, who hold every permission) set the after-sales
# policy: checking it first, from the permission cache the page's own checks loaded, keeps the group lookup
# and the COUNT off the pages of customer service, the warehouse and finance.
_MANAGER_PERMISSIONS = {"aftersales.work_ticket", "aftersales.change_aftersalespolicy"}


def escalated_tickets(request) -> dict:
    """``escalated_tickets_count`` for managers (the MANAGER group) who work tickets; nothing, and no query, for
    anonymous users and users without those permissions."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or not user.has_perms(_MANAGER_PERMISSIONS):
        return {}
    if not user.groups.filter(name=MANAGER).exists():
        return {}
    return {"escalated_tickets_count": tickets_escalated_count()}
