"""App config of the benchmarks (the top layer, beside demo): `manage.py bench <name>` and the bare webhook view."""

from django.apps import AppConfig


class BenchConfig(AppConfig):
    name = "bench"
    verbose_name = "Benchmarks"
