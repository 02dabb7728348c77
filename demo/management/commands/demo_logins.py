"""Print the URL of the running hub and the demo logins (run by `make run` just before it starts)."""

import os

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from demo.users import DEMO_USERS, demo_password
from inventory.models import Warehouse
from inventory.selectors import warehouse_ids_for_user


class Command(BaseCommand):
    help = "Print the site URL and the demo users with their passwords."

    def add_arguments(self, parser):
        parser.add_argument("--url", default=os.environ.get("OMS_URL", "http://127.0.0.1:8000/"))

    def handle(self, *args, **options):
        users = {user.username: user for user in get_user_model().objects.filter(username__in=[u for u, _ in DEMO_USERS])}
        bar = "=" * 64
        self.stdout.write(bar)
        self.stdout.write(self.style.SUCCESS(f"  Order hub (订单中枢) starting at {options['url']}"))
        self.stdout.write(f"  API docs: {options['url']}api/docs/   admin: {options['url']}admin/")
        self.stdout.write("")
        self.stdout.write(f"  {'username':<10} {'role':<17} {'password':<24} warehouses")
        for username, role in DEMO_USERS:
            user = users.get(username)
            password = demo_password(username)
            if user is None:
                shown = "(missing: run `python manage.py demo_data`)"
            elif not user.check_password(password):
                shown = "(changed by you)"
            else:
                shown = password
            self.stdout.write(f"  {username:<10} {role:<17} {shown:<24} {self._warehouses(user)}")
        self.stdout.write("")
        self.stdout.write("  Staff scopes (which warehouses a user works in) are set on the user's admin page.")
        self.stdout.write("  Stop with Ctrl+C. Web, Celery worker and beat logs follow.")
        self.stdout.write(bar)

    @staticmethod
    def _warehouses(user) -> str:
        """The warehouses the user works in: the scope shown beside the login, so the demo explains itself."""
        if user is None:
            return ""
        warehouse_ids = warehouse_ids_for_user(user)
        if warehouse_ids is None:
            return "all"
        return ", ".join(Warehouse.objects.filter(pk__in=warehouse_ids).order_by("code").values_list("code", flat=True))
