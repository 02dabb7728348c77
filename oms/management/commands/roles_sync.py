"""Create or update the role groups (warehouse, customer_service, finance, manager, admin)."""

from django.core.management.base import BaseCommand

from oms.roles import roles_sync


class Command(BaseCommand):
    help = "Create or update the role groups and their permissions."

    def handle(self, *args, **options):
        groups = roles_sync()
        for name, group in groups.items():
            self.stdout.write(f"{name}: {group.permissions.count()} permissions")
