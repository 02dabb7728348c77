"""App config of the demo data (the top layer: it may import any app, and no app imports it)."""

from django.apps import AppConfig


class DemoConfig(AppConfig):
    name = "demo"
    verbose_name = "Demo data"
