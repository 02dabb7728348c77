"""Demo users: one per role, each with a known password and an API token, and the warehouse clerk's scope."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token

from inventory.models import StaffScope, Warehouse
from oms import roles

DEMO_USERS = [
    ("warehouse", roles.WAREHOUSE),
    ("cs", roles.CUSTOMER_SERVICE),
    ("finance", roles.FINANCE),
    ("manager", roles.MANAGER),
    ("admin", roles.ADMIN),
]
# Warehouse codes each demo user is limited to (inventory.StaffScope); a user not named here sees every
# warehouse. The warehouse clerk works in Shanghai only, to show the scope; the manager oversees all.
DEMO_SCOPES = {"warehouse": ["SH"]}


def demo_password(username: str) -> str:
    return f"demo-{username}-2026"


def users_load() -> tuple[list[tuple[str, str, str | None]], int]:
    groups = roles.roles_sync()
    user_model = get_user_model()
    logins, created_count = [], 0
    for username, role in DEMO_USERS:
        password = demo_password(username)
        is_admin = role == roles.ADMIN
        user, created = user_model.objects.get_or_create(
            username=username,
            defaults={"is_staff": is_admin, "is_superuser": is_admin, "email": f"{username}@example.com"},
        )
        if created:
            user.set_password(password)
            user.save(update_fields=["password"])
            created_count += 1
        elif not user.check_password(password):
            # The account was there before (or its password was changed): never print a password that fails.
            password = None
        user.groups.add(groups[role])
        Token.objects.get_or_create(user=user)
        logins.append((username, role, password))
    return logins, created_count


def scopes_load() -> int:
    """Give the demo users their warehouse scopes once; a scope someone changed since is left as it is."""
    created_count = 0
    for username, codes in DEMO_SCOPES.items():
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            continue
        scope, created = StaffScope.objects.get_or_create(user=user)
        if created:
            scope.warehouses.set(Warehouse.objects.filter(code__in=codes))
            created_count += 1
    return created_count
